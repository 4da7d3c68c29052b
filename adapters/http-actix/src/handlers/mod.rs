//! One handler per route of the contract.

pub mod auth;
pub mod fallback;
pub mod health;
pub mod users;
