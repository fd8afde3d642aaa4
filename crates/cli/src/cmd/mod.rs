//! One file per command.

pub mod apply;
pub mod demo;
pub mod history;
pub mod plan;
pub mod sim;
pub mod validate;
