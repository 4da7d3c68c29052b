//! Portcullis domain: the user, the rules every user obeys, and the ports
//! (traits) the core needs from the outside world.
//!
//! This crate must never depend on a web framework, a database driver, a JWT
//! library or a mail library: only `std`, `uuid`, `thiserror`, `async-trait`,
//! `unicode-normalization` and `secrecy`. `secrecy` is deliberate: a
//! plain-text password the core carries ([`UserChanges::password`]) is
//! zeroed on drop and never shows in a `Debug`. With the `mocks` feature
//! (for dependents' tests only, never a normal build) `mockall` generates a
//! `Mock…` of every port (`MockUserRepository`, `MockPasswordHasher`, …).
//!
//! Raw input is validated once, at the edge, into the newtypes of this crate
//! ([`EmailAddress`], [`Password`], [`UserId`], [`Role`]), so the inside never
//! re-checks a raw string.
#![warn(missing_docs)]

mod email;
mod password;
pub mod ports;
mod role;
mod user;
mod user_fields;
mod user_id;

pub use email::{EmailAddress, InvalidEmail};
pub use password::{Password, PasswordPolicyViolation};
pub use ports::*;
pub use role::{Role, UnknownRole};
pub use user::{SESSION_STAMP_TIME_FLOOR, User, UserChanges, UserPatch, raised_session_stamp};
pub use user_fields::{
    BUILT_IN_FIELDS, FieldSpec, FieldType, FieldValue, FieldValues, FieldWriter, INTEGER_RANGE,
    InvalidUserField, UserFields,
};
pub use user_id::{InvalidUserId, UserId};
