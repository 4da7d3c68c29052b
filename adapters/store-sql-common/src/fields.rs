//! A deployment's extra user fields ([`UserFields`]) as columns of the
//! `user` table: their SQL types, the DDL that adds one, the check of a
//! column that exists already, the one expression that reads them all as a
//! JSON object, and the conversions between that object and
//! [`FieldValues`].
//!
//! Names are [`UserFields`]' validated identifiers (lowercase ASCII letters,
//! digits, `_`); they are still always quoted (`"name"`), and values are
//! always bound, never spliced into SQL — except a field's default in the
//! `ADD COLUMN` DDL, which takes no parameters and gets a quoted literal
//! ([`default_literal`]).

use portcullis_domain::{
    FieldSpec, FieldType, FieldValue, FieldValues, InvalidUserField, UserFields, UserId,
};

use crate::CorruptRow;

/// The SQL flavour a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (booleans are the integers 0 and 1).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The alias of the extra column a lookup reads the fields' JSON object in.
pub const FIELDS_COLUMN: &str = "portcullis_fields";

/// Most fields one JSON-building call takes (two arguments each): both
/// PostgreSQL's and SQLite's default limits on a function's arguments (100,
/// 127) allow it; more fields are merged from several calls.
const FIELDS_PER_CALL: usize = 50;

/// `name` quoted as an SQL identifier: `"name"`.
///
/// ```
/// assert_eq!(portcullis_store_sql_common::fields::quote("first_name"), "\"first_name\"");
/// ```
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal: `'it''s'`.
fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The column type of a field: `VARCHAR(n)` (or `TEXT` without a maximum),
/// `INTEGER`, `BOOLEAN`, as SQLAlchemy's `String(n)`, `Integer` and
/// `Boolean` make them.
pub fn sql_type(ty: FieldType) -> String {
    match ty {
        FieldType::String {
            max_length: Some(n),
        } => format!("VARCHAR({n})"),
        FieldType::String { max_length: None } => "TEXT".into(),
        FieldType::Integer => "INTEGER".into(),
        FieldType::Boolean => "BOOLEAN".into(),
    }
}

/// `value` as an SQL literal of `dialect` (for DDL, which binds no
/// parameters): `NULL`, `'text'` (quotes doubled), `42`, and `0`/`1` on
/// SQLite or `false`/`true` on PostgreSQL.
pub fn default_literal(value: &FieldValue, dialect: Dialect) -> String {
    match (value, dialect) {
        (FieldValue::Null, _) => "NULL".into(),
        (FieldValue::String(s), _) => string_literal(s),
        (FieldValue::Integer(i), _) => i.to_string(),
        (FieldValue::Boolean(b), Dialect::Sqlite) => u8::from(*b).to_string(),
        (FieldValue::Boolean(b), Dialect::Postgres) => b.to_string(),
    }
}

/// The statement that adds `spec`'s column to the `user` table; the rows
/// already there get the default.
///
/// ```
/// use portcullis_domain::{FieldSpec, FieldType, FieldValue, FieldWriter};
/// use portcullis_store_sql_common::fields::{Dialect, add_column_sql};
///
/// let spec = FieldSpec {
///     name: "newsletter".into(),
///     ty: FieldType::Boolean,
///     nullable: false,
///     default: FieldValue::Boolean(false),
///     writable_by: FieldWriter::User,
/// };
/// assert_eq!(
///     add_column_sql(&spec, Dialect::Postgres),
///     r#"ALTER TABLE "user" ADD COLUMN "newsletter" BOOLEAN NOT NULL DEFAULT false"#
/// );
/// ```
pub fn add_column_sql(spec: &FieldSpec, dialect: Dialect) -> String {
    let mut sql = format!(
        r#"ALTER TABLE "user" ADD COLUMN {} {}"#,
        quote(&spec.name),
        sql_type(spec.ty)
    );
    if !spec.nullable {
        sql.push_str(" NOT NULL");
    }
    if spec.default != FieldValue::Null {
        sql.push_str(" DEFAULT ");
        sql.push_str(&default_literal(&spec.default, dialect));
    }
    sql
}

/// A column of the `user` table as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingColumn {
    /// Its declared type: SQLite's `PRAGMA table_info` type (`VARCHAR(50)`,
    /// `INTEGER`, …) or PostgreSQL's `information_schema.columns.data_type`
    /// (`character varying`, `integer`, …); compared case-insensitively,
    /// without its `(n)`.
    pub data_type: String,
    /// Whether it accepts `NULL`.
    pub nullable: bool,
    /// The most characters it holds, when the database enforces one
    /// (PostgreSQL's `character_maximum_length`; `None` on SQLite, which
    /// does not).
    pub max_length: Option<u32>,
}

/// Whether the column `column` can hold field `spec` (a column FastAPI
/// Users made, adopted as it is): a type of the same kind (string: `text`,
/// `varchar`, `character varying`, `char`, `character`; integer: `integer`,
/// `int`, `int4`, `bigint`, `int8` (not `smallint`: it cannot hold every
/// value an integer field accepts); boolean: `boolean`,
/// `bool`), not `NOT NULL` for a nullable field, and no shorter than the
/// field's longest value. The refusal names the field, the column's type and
/// the declared one.
///
/// ```
/// use portcullis_domain::{FieldSpec, FieldType, FieldValue, FieldWriter};
/// use portcullis_store_sql_common::fields::{ExistingColumn, check_existing_column};
///
/// let spec = FieldSpec {
///     name: "organisation_id".into(),
///     ty: FieldType::Integer,
///     nullable: false,
///     default: FieldValue::Integer(0),
///     writable_by: FieldWriter::Admin,
/// };
/// let column = |t: &str| ExistingColumn { data_type: t.into(), nullable: true, max_length: None };
/// assert!(check_existing_column(&spec, &column("BIGINT")).is_ok());
/// let err = check_existing_column(&spec, &column("VARCHAR(20)")).unwrap_err();
/// assert!(err.to_string().contains("\"organisation_id\""), "{err}");
/// assert!(err.to_string().contains("VARCHAR(20)"), "{err}");
/// ```
pub fn check_existing_column(
    spec: &FieldSpec,
    column: &ExistingColumn,
) -> Result<(), InvalidUserField> {
    let refuse = |reason: String| {
        Err(InvalidUserField {
            field: spec.name.clone(),
            reason,
        })
    };
    let declared = describe(spec);
    let base = column
        .data_type
        .split('(')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind_fits = match spec.ty {
        FieldType::String { .. } => matches!(
            base.as_str(),
            "text" | "varchar" | "character varying" | "char" | "character"
        ),
        FieldType::Integer => matches!(
            base.as_str(),
            "integer" | "int" | "int4" | "bigint" | "int8"
        ),
        FieldType::Boolean => matches!(base.as_str(), "boolean" | "bool"),
    };
    if !kind_fits {
        return refuse(format!(
            "the existing column \"{}\" has type {:?}, which cannot hold the declared {declared}; \
             declare the field with the column's type, or use another name",
            spec.name, column.data_type
        ));
    }
    if spec.nullable && !column.nullable {
        return refuse(format!(
            "the existing column \"{}\" ({}) is NOT NULL, but the field is declared nullable \
             ({declared}); declare it not nullable with a default, or drop the constraint",
            spec.name, column.data_type
        ));
    }
    if let (FieldType::String { max_length }, Some(column_max)) = (spec.ty, column.max_length)
        && max_length.is_none_or(|max| max > column_max)
    {
        return refuse(format!(
            "the existing column \"{}\" holds at most {column_max} characters ({}), fewer than \
             the declared {declared} allows",
            spec.name, column.data_type
        ));
    }
    Ok(())
}

/// `string max 50 nullable`, `integer not null`: how a field was declared,
/// for messages.
fn describe(spec: &FieldSpec) -> String {
    let ty = match spec.ty {
        FieldType::String {
            max_length: Some(n),
        } => format!("string (max {n})"),
        other => other.name().to_owned(),
    };
    let null = if spec.nullable {
        "nullable"
    } else {
        "not null"
    };
    format!("{ty} {null}")
}

/// The SQL expression (to be selected, or returned, `AS` [`FIELDS_COLUMN`])
/// whose value is the JSON object text of every field of `fields` of a row
/// of `user`: `{"first_name": "Ann", "organisation_id": 7, …}` (SQLite
/// gives a boolean column as 0/1). `'{}'` when there is no field.
///
/// ```
/// use portcullis_domain::{FieldSpec, FieldType, FieldValue, FieldWriter, UserFields};
/// use portcullis_store_sql_common::fields::{Dialect, fields_json_sql};
///
/// let fields = UserFields::new(vec![FieldSpec {
///     name: "organisation_id".into(),
///     ty: FieldType::Integer,
///     nullable: true,
///     default: FieldValue::Null,
///     writable_by: FieldWriter::Admin,
/// }])
/// .unwrap();
/// assert_eq!(
///     fields_json_sql(&fields, Dialect::Sqlite),
///     r#"json_object('organisation_id', "organisation_id")"#
/// );
/// assert_eq!(
///     fields_json_sql(&fields, Dialect::Postgres),
///     r#"jsonb_build_object('organisation_id', "organisation_id")::text"#
/// );
/// assert_eq!(fields_json_sql(&UserFields::none(), Dialect::Postgres), "'{}'");
/// ```
pub fn fields_json_sql(fields: &UserFields, dialect: Dialect) -> String {
    let specs: Vec<&FieldSpec> = fields.iter().collect();
    if specs.is_empty() {
        return "'{}'".into();
    }
    let pairs = |chunk: &[&FieldSpec]| {
        chunk
            .iter()
            .map(|s| format!("{}, {}", string_literal(&s.name), quote(&s.name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chunks = specs.chunks(FIELDS_PER_CALL);
    match dialect {
        Dialect::Sqlite => {
            // json_set (unlike json_patch) keeps a key whose value is NULL.
            let first = chunks.next().map(pairs).unwrap_or_default();
            chunks.fold(format!("json_object({first})"), |object, chunk| {
                let more = chunk
                    .iter()
                    .map(|s| format!("'$.{}', {}", s.name, quote(&s.name)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("json_set({object}, {more})")
            })
        }
        Dialect::Postgres => {
            let objects: Vec<String> = chunks
                .map(|chunk| format!("jsonb_build_object({})", pairs(chunk)))
                .collect();
            if objects.len() == 1 {
                format!("{}::text", objects[0])
            } else {
                format!("({})::text", objects.join(" || "))
            }
        }
    }
}

/// The values of user `id`'s fields from the JSON object text
/// [`fields_json_sql`] selected: one per configured field. A value of the
/// wrong kind (another program wrote the column) is a [`CorruptRow`].
pub fn values_from_json(
    fields: &UserFields,
    id: UserId,
    json: &str,
) -> Result<FieldValues, CorruptRow> {
    if fields.is_empty() {
        return Ok(FieldValues::new());
    }
    let corrupt = |field: &str, stored: String| CorruptRow::Field {
        id,
        field: field.to_owned(),
        stored,
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| corrupt("*", format!("{json:?} ({e})")))?;
    fields
        .iter()
        .map(|spec| {
            use serde_json::Value as J;
            let stored = object.get(&spec.name).unwrap_or(&J::Null);
            let value = match (spec.ty, stored) {
                (_, J::Null) if spec.nullable => Some(FieldValue::Null),
                // An adopted nullable column under a field declared not
                // nullable: a NULL left in it reads as the default, so a
                // user is always rendered as the document says.
                (_, J::Null) => Some(spec.default.clone()),
                (FieldType::String { .. }, J::String(s)) => Some(FieldValue::String(s.clone())),
                (FieldType::Integer, J::Number(n)) => n.as_i64().map(FieldValue::Integer),
                (FieldType::Boolean, J::Bool(b)) => Some(FieldValue::Boolean(*b)),
                // SQLite stores a boolean as 0 or 1.
                (FieldType::Boolean, J::Number(n)) => match n.as_i64() {
                    Some(0) => Some(FieldValue::Boolean(false)),
                    Some(1) => Some(FieldValue::Boolean(true)),
                    _ => None,
                },
                _ => None,
            };
            value
                .map(|v| (spec.name.clone(), v))
                .ok_or_else(|| corrupt(&spec.name, stored.to_string()))
        })
        .collect()
}

/// A value a store was asked to write that does not fit its field (wrong
/// kind, too long, out of range, `null` for a field that is not nullable):
/// the application checks values first, so this is a bug, refused before
/// anything is written (the store answers
/// [`StoreError::Unavailable`](portcullis_domain::StoreError::Unavailable)
/// with it as the cause).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value {value} does not fit user field {field:?}")]
pub struct UnfitValue {
    /// The field.
    pub field: String,
    /// The value refused.
    pub value: FieldValue,
}

impl From<UnfitValue> for portcullis_domain::StoreError {
    fn from(error: UnfitValue) -> Self {
        Self::unavailable(error)
    }
}

fn fitting(spec: &FieldSpec, value: &FieldValue) -> Result<FieldValue, UnfitValue> {
    if value.fits(spec.ty, spec.nullable) {
        Ok(value.clone())
    } else {
        Err(UnfitValue {
            field: spec.name.clone(),
            value: value.clone(),
        })
    }
}

/// What `create` writes: every configured field's value from `given`, or
/// its default when absent; names that are not configured are dropped.
pub fn values_to_create(
    fields: &UserFields,
    given: &FieldValues,
) -> Result<FieldValues, UnfitValue> {
    fields
        .iter()
        .map(|spec| {
            let value = given.get(&spec.name).unwrap_or(&spec.default);
            Ok((spec.name.clone(), fitting(spec, value)?))
        })
        .collect()
}

/// What `patch` writes: the configured fields `changes` names (in
/// declaration order), each with its new value; names that are not
/// configured are ignored.
pub fn values_to_patch<'f>(
    fields: &'f UserFields,
    changes: &FieldValues,
) -> Result<Vec<(&'f FieldSpec, FieldValue)>, UnfitValue> {
    fields
        .iter()
        .filter_map(|spec| changes.get(&spec.name).map(|value| (spec, value)))
        .map(|(spec, value)| Ok((spec, fitting(spec, value)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use portcullis_domain::FieldWriter;

    use super::*;

    fn spec(name: &str, ty: FieldType, nullable: bool, default: FieldValue) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            ty,
            nullable,
            default,
            writable_by: FieldWriter::User,
        }
    }

    fn three() -> UserFields {
        UserFields::new(vec![
            spec(
                "first_name",
                FieldType::String {
                    max_length: Some(50),
                },
                true,
                FieldValue::Null,
            ),
            spec(
                "organisation_id",
                FieldType::Integer,
                false,
                FieldValue::Integer(0),
            ),
            spec(
                "newsletter",
                FieldType::Boolean,
                false,
                FieldValue::Boolean(false),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn ddl_of_each_type() {
        let fields = three();
        let ddl: Vec<String> = fields
            .iter()
            .map(|s| add_column_sql(s, Dialect::Sqlite))
            .collect();
        assert_eq!(
            ddl,
            [
                r#"ALTER TABLE "user" ADD COLUMN "first_name" VARCHAR(50)"#,
                r#"ALTER TABLE "user" ADD COLUMN "organisation_id" INTEGER NOT NULL DEFAULT 0"#,
                r#"ALTER TABLE "user" ADD COLUMN "newsletter" BOOLEAN NOT NULL DEFAULT 0"#,
            ]
        );
        let quoted = spec(
            "motto",
            FieldType::String { max_length: None },
            false,
            FieldValue::String("it's".into()),
        );
        assert_eq!(
            add_column_sql(&quoted, Dialect::Postgres),
            r#"ALTER TABLE "user" ADD COLUMN "motto" TEXT NOT NULL DEFAULT 'it''s'"#
        );
    }

    #[test]
    fn json_of_many_fields_is_merged_from_several_calls() {
        let many = UserFields::new(
            (0..120)
                .map(|i| spec(&format!("f{i}"), FieldType::Integer, true, FieldValue::Null))
                .collect(),
        )
        .unwrap();
        let sqlite = fields_json_sql(&many, Dialect::Sqlite);
        assert_eq!(sqlite.matches("json_set(").count(), 2, "{sqlite}");
        assert!(sqlite.contains(r#"'$.f119', "f119""#), "{sqlite}");
        let pg = fields_json_sql(&many, Dialect::Postgres);
        assert_eq!(pg.matches("jsonb_build_object(").count(), 3, "{pg}");
        assert!(pg.ends_with(")::text"), "{pg}");
    }

    #[test]
    fn json_reads_every_type_and_sqlite_booleans() {
        let id = UserId::random();
        let values = values_from_json(
            &three(),
            id,
            r#"{"first_name":"Zoë","organisation_id":-2147483648,"newsletter":1,"other":5}"#,
        )
        .unwrap();
        let expected: FieldValues = [
            ("first_name".to_owned(), FieldValue::String("Zoë".into())),
            (
                "organisation_id".to_owned(),
                FieldValue::Integer(i32::MIN.into()),
            ),
            ("newsletter".to_owned(), FieldValue::Boolean(true)),
        ]
        .into_iter()
        .collect();
        assert_eq!(values, expected);
        let values = values_from_json(
            &three(),
            id,
            r#"{"first_name":null,"organisation_id":0,"newsletter":false}"#,
        )
        .unwrap();
        assert_eq!(values.get("first_name"), Some(&FieldValue::Null));
        assert_eq!(values.get("newsletter"), Some(&FieldValue::Boolean(false)));
    }

    #[test]
    fn a_null_left_in_an_adopted_column_reads_as_a_non_nullable_fields_default() {
        let values = values_from_json(
            &three(),
            UserId::random(),
            r#"{"first_name":null,"organisation_id":null,"newsletter":null}"#,
        )
        .unwrap();
        for spec in three().iter() {
            let expected = if spec.nullable {
                FieldValue::Null
            } else {
                spec.default.clone()
            };
            assert_eq!(values.get(&spec.name), Some(&expected), "{}", spec.name);
        }
    }

    #[test]
    fn a_stored_value_of_the_wrong_kind_is_a_corrupt_row_naming_the_field() {
        let id = UserId::random();
        let err = values_from_json(
            &three(),
            id,
            r#"{"first_name":null,"organisation_id":"seven","newsletter":0}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            CorruptRow::Field {
                id,
                field: "organisation_id".into(),
                stored: "\"seven\"".into()
            }
        );
        assert!(err.to_string().contains("organisation_id"), "{err}");
        let err = values_from_json(
            &three(),
            id,
            r#"{"first_name":null,"organisation_id":1,"newsletter":2}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&err, CorruptRow::Field { field, .. } if field == "newsletter"),
            "{err}"
        );
    }

    #[test]
    fn create_fills_defaults_and_drops_unknown_names_and_patch_ignores_them() {
        let fields = three();
        let mut given = FieldValues::new();
        given.set("first_name", FieldValue::String("Ann".into()));
        given.set("unknown", FieldValue::Integer(1));
        let stored = values_to_create(&fields, &given).unwrap();
        assert_eq!(stored.iter().count(), 3);
        assert_eq!(stored.get("organisation_id"), Some(&FieldValue::Integer(0)));
        assert_eq!(stored.get("unknown"), None);

        let patch = values_to_patch(&fields, &given).unwrap();
        assert_eq!(patch.len(), 1);
        assert_eq!(patch[0].0.name, "first_name");

        let mut unfit = FieldValues::new();
        unfit.set("newsletter", FieldValue::Null);
        let err = values_to_patch(&fields, &unfit).unwrap_err();
        assert_eq!(err.field, "newsletter");
        unfit.set("newsletter", FieldValue::Integer(1));
        assert!(values_to_create(&fields, &unfit).is_err());
    }

    #[test]
    fn existing_columns_of_each_kind_are_adopted_or_refused_by_name() {
        let fields = three();
        let column = |t: &str, nullable: bool, max: Option<u32>| ExistingColumn {
            data_type: t.into(),
            nullable,
            max_length: max,
        };
        let [name, org, news] = [0, 1, 2].map(|i| fields.iter().nth(i).unwrap().clone());
        for ok in ["VARCHAR(50)", "text", "character varying", "CHAR(60)"] {
            assert!(
                check_existing_column(&name, &column(ok, true, None)).is_ok(),
                "{ok}"
            );
        }
        for ok in ["INTEGER", "int", "int4", "bigint", "INT8"] {
            assert!(
                check_existing_column(&org, &column(ok, false, None)).is_ok(),
                "{ok}"
            );
        }
        for ok in ["BOOLEAN", "bool"] {
            assert!(
                check_existing_column(&news, &column(ok, true, None)).is_ok(),
                "{ok}"
            );
        }
        let err = check_existing_column(&org, &column("TEXT", true, None)).unwrap_err();
        assert_eq!(err.field, "organisation_id");
        let shown = err.to_string();
        assert!(
            shown.contains("\"TEXT\"") && shown.contains("integer not null"),
            "{shown}"
        );
        let err = check_existing_column(&name, &column("VARCHAR(50)", false, None)).unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        let err =
            check_existing_column(&name, &column("character varying", true, Some(20))).unwrap_err();
        assert!(err.to_string().contains("at most 20"), "{err}");
        assert!(check_existing_column(&name, &column("character varying", true, Some(50))).is_ok());
        assert!(check_existing_column(&news, &column("integer", true, None)).is_err());
    }
}
