//! One file per command.

pub mod plan;
pub mod sim;
pub mod validate;
