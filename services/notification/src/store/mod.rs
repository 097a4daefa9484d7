//! notification's tables: the only place that writes SQL.

pub mod messages;
