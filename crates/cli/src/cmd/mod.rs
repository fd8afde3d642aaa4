//! One file per command.

pub mod apply;
pub mod plan;
pub mod sim;
pub mod validate;
