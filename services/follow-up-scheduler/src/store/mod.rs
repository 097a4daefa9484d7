//! All SQL of follow-up-scheduler.

pub mod timers;
