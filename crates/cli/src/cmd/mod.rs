//! One file per command.

pub mod apply;
pub mod assign;
pub mod demo;
pub mod drift;
pub mod history;
pub mod plan;
pub mod sim;
pub mod validate;
