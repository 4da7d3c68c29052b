//! The deployment's extra user fields in the use cases: who may write
//! which, and what a new user starts with.

use portcullis_domain::{FieldValues, FieldWriter, UserFields};

use crate::UserService;

/// Whether `writer` may set a field writable by `field_writer`.
fn may_write(field_writer: FieldWriter, writer: FieldWriter) -> bool {
    writer == FieldWriter::Admin || field_writer == FieldWriter::User
}

impl UserService {
    /// The extra user fields of this deployment.
    pub fn user_fields(&self) -> &UserFields {
        &self.fields
    }

    /// The use cases with the deployment's extra user fields: registration
    /// and updates accept them (by who may write each), new users get
    /// their defaults.
    pub fn with_user_fields(mut self, fields: UserFields) -> Self {
        self.fields = fields;
        self
    }

    /// What a new user's fields are: each configured field's value from
    /// `given` when `writer` may set it, else its default. Other names are
    /// dropped.
    pub(crate) fn initial_fields(&self, given: &FieldValues, writer: FieldWriter) -> FieldValues {
        self.fields
            .iter()
            .map(|spec| {
                let value = given
                    .get(&spec.name)
                    .filter(|_| may_write(spec.writable_by, writer))
                    .unwrap_or(&spec.default);
                (spec.name.clone(), value.clone())
            })
            .collect()
    }

    /// The changes of `given` that `writer` may make: configured fields
    /// it may write; other names are dropped (as `role` is for a user).
    pub(crate) fn writable_changes(&self, given: &FieldValues, writer: FieldWriter) -> FieldValues {
        given
            .iter()
            .filter(|(name, _)| {
                self.fields
                    .get(name)
                    .is_some_and(|spec| may_write(spec.writable_by, writer))
            })
            .map(|(name, value)| (name.to_owned(), value.clone()))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use portcullis_domain::{FieldSpec, FieldType, FieldValue};

    use crate::test_support::*;

    use super::*;

    pub(crate) fn two_fields() -> UserFields {
        UserFields::new(vec![
            FieldSpec {
                name: "nickname".into(),
                ty: FieldType::String {
                    max_length: Some(20),
                },
                nullable: true,
                default: FieldValue::Null,
                writable_by: FieldWriter::User,
            },
            FieldSpec {
                name: "credits".into(),
                ty: FieldType::Integer,
                nullable: false,
                default: FieldValue::Integer(10),
                writable_by: FieldWriter::Admin,
            },
        ])
        .unwrap()
    }

    fn given() -> FieldValues {
        let mut given = FieldValues::new();
        given.set("nickname", FieldValue::String("ann".into()));
        given.set("credits", FieldValue::Integer(99));
        given.set("unknown", FieldValue::Boolean(true));
        given
    }

    #[test]
    fn a_user_sets_user_fields_only_and_gets_defaults_for_the_rest() {
        let service = Mocks::new().service().with_user_fields(two_fields());
        let initial = service.initial_fields(&given(), FieldWriter::User);
        assert_eq!(
            initial.get("nickname"),
            Some(&FieldValue::String("ann".into()))
        );
        assert_eq!(initial.get("credits"), Some(&FieldValue::Integer(10)));
        assert_eq!(initial.get("unknown"), None);
        let changes = service.writable_changes(&given(), FieldWriter::User);
        assert_eq!(
            changes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["nickname"]
        );
    }

    #[test]
    fn an_admin_sets_every_configured_field() {
        let service = Mocks::new().service().with_user_fields(two_fields());
        let initial = service.initial_fields(&given(), FieldWriter::Admin);
        assert_eq!(initial.get("credits"), Some(&FieldValue::Integer(99)));
        let changes = service.writable_changes(&given(), FieldWriter::Admin);
        assert_eq!(
            changes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["credits", "nickname"]
        );
        let defaults = service.initial_fields(&FieldValues::new(), FieldWriter::Admin);
        assert_eq!(defaults, two_fields().defaults());
    }
}
