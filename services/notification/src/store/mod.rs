//! notification's tables: the only place that writes SQL.

pub mod interactions;
pub mod messages;
