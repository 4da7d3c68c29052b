//! A deployment's own user fields (`first_name`, `organisation_id`, …):
//! what each is ([`FieldSpec`]), the set of them ([`UserFields`]), and a
//! user's values ([`FieldValues`]). They are real columns of the `user`
//! table, as FastAPI Users' custom fields are.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The columns every user has, PostgreSQL's system columns, and
/// `password` (the plain-text field of the request bodies): no extra field
/// may take one of these names.
pub const BUILT_IN_FIELDS: [&str; 16] = [
    // PostgreSQL's system columns: a column cannot take these names.
    "oid",
    "tableoid",
    "xmin",
    "xmax",
    "cmin",
    "cmax",
    "ctid",
    "id",
    "email",
    "hashed_password",
    "is_active",
    "is_superuser",
    "is_verified",
    "role",
    // The SQL stores' session stamp column (`User::session_stamp`).
    "portcullis_session_stamp",
    "password",
];

/// The smallest and largest value of an `integer` field: a 32-bit column
/// (SQLAlchemy's `Integer`, PostgreSQL's `integer`), as FastAPI Users makes.
pub const INTEGER_RANGE: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Text, at most `max_length` characters when given (`VARCHAR(n)`,
    /// else `TEXT`).
    String {
        /// The most characters (not bytes) a value may have.
        max_length: Option<u32>,
    },
    /// A whole number in [`INTEGER_RANGE`].
    Integer,
    /// `true` or `false`.
    Boolean,
}

impl FieldType {
    /// The name `USER_FIELDS` uses: `string`, `integer` or `boolean`.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String { .. } => "string",
            FieldType::Integer => "integer",
            FieldType::Boolean => "boolean",
        }
    }
}

/// Who may set a field through the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldWriter {
    /// The user (register, `PATCH /users/me`) and superusers.
    User,
    /// Superusers only (`PATCH /users/{id}`); elsewhere it is ignored.
    Admin,
}

/// A value of a field, or its absence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// No value (SQL `NULL`); only for nullable fields.
    Null,
    /// A string field's value.
    String(String),
    /// An integer field's value.
    Integer(i64),
    /// A boolean field's value.
    Boolean(bool),
}

impl FieldValue {
    /// Whether `self` fits a field of type `ty` (`nullable` or not).
    pub fn fits(&self, ty: FieldType, nullable: bool) -> bool {
        match (self, ty) {
            (FieldValue::Null, _) => nullable,
            (FieldValue::String(s), FieldType::String { max_length }) => {
                // PostgreSQL text cannot hold NUL; no store takes it.
                !s.contains('\0') && max_length.is_none_or(|max| s.chars().count() <= max as usize)
            }
            (FieldValue::Integer(i), FieldType::Integer) => {
                (INTEGER_RANGE.0..=INTEGER_RANGE.1).contains(i)
            }
            (FieldValue::Boolean(_), FieldType::Boolean) => true,
            _ => false,
        }
    }
}

/// One extra field: its column name, type, nullability, default, and who
/// may write it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The column name, also the JSON key: lowercase ASCII letters, digits
    /// and `_`, starting with a letter or `_`, at most 63 characters.
    pub name: String,
    /// What it holds.
    pub ty: FieldType,
    /// Whether it may be `null`.
    pub nullable: bool,
    /// The value of a user created without one (and of the rows that
    /// exist when the column is added). `Null` only for a nullable field.
    pub default: FieldValue,
    /// Who may set it.
    pub writable_by: FieldWriter,
}

/// Why a set of fields is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user field {field:?}: {reason}")]
pub struct InvalidUserField {
    /// The field at fault.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldSpec {
    fn check(&self) -> Result<(), InvalidUserField> {
        let refuse = |reason: &str| {
            Err(InvalidUserField {
                field: self.name.clone(),
                reason: reason.to_owned(),
            })
        };
        let name = self.name.as_str();
        let well_formed = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return refuse(
                "a field name is lowercase ASCII letters, digits and _, starting with a letter \
                 or _, at most 63 characters",
            );
        }
        if BUILT_IN_FIELDS.contains(&name) {
            return refuse("this name is a built-in field of every user");
        }
        if let FieldType::String {
            max_length: Some(0),
        } = self.ty
        {
            return refuse("max_length must be at least 1");
        }
        if self.default == FieldValue::Null && !self.nullable {
            return refuse("a field that is not nullable needs a default");
        }
        if !self.default.fits(self.ty, self.nullable) {
            return refuse(&format!(
                "the default does not fit a {} field",
                self.ty.name()
            ));
        }
        Ok(())
    }
}

/// A deployment's extra user fields, in declaration order; checked once,
/// cheap to clone. Empty by default.
///
/// ```
/// use portcullis_domain::{FieldSpec, FieldType, FieldValue, FieldWriter, UserFields};
///
/// let fields = UserFields::new(vec![FieldSpec {
///     name: "first_name".into(),
///     ty: FieldType::String { max_length: Some(50) },
///     nullable: true,
///     default: FieldValue::Null,
///     writable_by: FieldWriter::User,
/// }])
/// .unwrap();
/// assert_eq!(fields.get("first_name").map(|f| f.nullable), Some(true));
///
/// let clash = FieldSpec { name: "role".into(), ..fields.get("first_name").unwrap().clone() };
/// assert!(UserFields::new(vec![clash]).unwrap_err().to_string().contains("\"role\""));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields(Arc<[FieldSpec]>);

impl UserFields {
    /// Checks `specs`: names well formed, not built in, not repeated;
    /// defaults that fit.
    pub fn new(specs: Vec<FieldSpec>) -> Result<Self, InvalidUserField> {
        for (i, spec) in specs.iter().enumerate() {
            spec.check()?;
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(InvalidUserField {
                    field: spec.name.clone(),
                    reason: "declared twice".into(),
                });
            }
        }
        Ok(Self(specs.into()))
    }

    /// No extra field.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether there is no extra field.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldSpec> {
        self.0.iter()
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&FieldSpec> {
        self.0.iter().find(|s| s.name == name)
    }

    /// Every field's default.
    pub fn defaults(&self) -> FieldValues {
        FieldValues(
            self.0
                .iter()
                .map(|s| (s.name.clone(), s.default.clone()))
                .collect(),
        )
    }
}

/// Values of extra fields by name: a user's (every field), or the fields a
/// change sets (only those).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldValues(BTreeMap<String, FieldValue>);

impl FieldValues {
    /// No value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no field has a value here.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.get(name)
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: FieldValue) {
        self.0.insert(name.into(), value);
    }

    /// `self` with every value of `changes` written over it.
    pub fn apply(&mut self, changes: &FieldValues) {
        for (name, value) in &changes.0 {
            self.0.insert(name.clone(), value.clone());
        }
    }

    /// The values, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl FromIterator<(String, FieldValue)> for FieldValues {
    fn from_iter<I: IntoIterator<Item = (String, FieldValue)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Null => f.write_str("null"),
            FieldValue::String(s) => write!(f, "{s:?}"),
            FieldValue::Integer(i) => write!(f, "{i}"),
            FieldValue::Boolean(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty: FieldType::Integer,
            nullable: false,
            default: FieldValue::Integer(0),
            writable_by: FieldWriter::Admin,
        }
    }

    #[test]
    fn names_are_sql_identifiers_and_not_built_in() {
        for bad in [
            "", "First", "1st", "a-b", "a b", "é", "email", "password", "role",
        ] {
            assert!(UserFields::new(vec![spec(bad)]).is_err(), "{bad:?}");
        }
        assert!(UserFields::new(vec![spec("org_id2"), spec("_x")]).is_ok());
        let twice = UserFields::new(vec![spec("a"), spec("a")]).unwrap_err();
        assert_eq!(twice.field, "a");
    }

    #[test]
    fn defaults_must_fit_and_a_non_nullable_field_needs_one() {
        let null_default = FieldSpec {
            default: FieldValue::Null,
            ..spec("a")
        };
        assert!(UserFields::new(vec![null_default.clone()]).is_err());
        assert!(
            UserFields::new(vec![FieldSpec {
                nullable: true,
                ..null_default
            }])
            .is_ok()
        );
        let wrong_type = FieldSpec {
            default: FieldValue::Boolean(true),
            ..spec("a")
        };
        assert!(UserFields::new(vec![wrong_type]).is_err());
        let too_long = FieldSpec {
            ty: FieldType::String {
                max_length: Some(2),
            },
            default: FieldValue::String("abc".into()),
            ..spec("a")
        };
        assert!(UserFields::new(vec![too_long]).is_err());
        let too_big = FieldSpec {
            default: FieldValue::Integer(i64::from(i32::MAX) + 1),
            ..spec("a")
        };
        assert!(UserFields::new(vec![too_big]).is_err());
    }

    #[test]
    fn string_lengths_count_characters() {
        let ty = FieldType::String {
            max_length: Some(3),
        };
        assert!(FieldValue::String("éèà".into()).fits(ty, false));
        assert!(!FieldValue::String("abcd".into()).fits(ty, false));
    }

    #[test]
    fn changes_apply_over_values() {
        let mut values = FieldValues::new();
        values.set("a", FieldValue::Integer(1));
        values.set("b", FieldValue::Boolean(true));
        let mut changes = FieldValues::new();
        changes.set("a", FieldValue::Null);
        values.apply(&changes);
        assert_eq!(values.get("a"), Some(&FieldValue::Null));
        assert_eq!(values.get("b"), Some(&FieldValue::Boolean(true)));
    }
}
