//! The metrics schema: rollups, the per-entity state behind them, alerts.

pub mod entities;
pub mod guests;
pub mod mentions;
pub mod report;
pub mod rollups;
pub mod scopes;
