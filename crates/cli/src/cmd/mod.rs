//! One file per command.

pub mod apply;
pub mod assign;
pub mod bench;
pub mod demo;
pub mod drift;
pub mod export;
pub mod history;
pub mod init;
pub mod plan;
pub mod retire;
pub mod sim;
pub mod validate;
pub mod verify;
pub mod why;
