//! What the handlers, the consumer and the background jobs share, and the caller of one
//! request.

use crate::settings::{AlertSettings, DailyReportSettings, ImprovementSettings, KpiSettings};
use guestloop_auth::Principal;
use guestloop_client::{FollowUpClient, NotificationClient};
use guestloop_config::{ChainDirectory, Standards};
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Debug)]
pub struct State {
    pub pool: PgPool,
    pub chain: Arc<ChainDirectory>,
    pub standards: Arc<Standards>,
    pub kpis: KpiSettings,
    pub kpi_alerts: AlertSettings,
    pub daily_report: DailyReportSettings,
    pub improvement: ImprovementSettings,
    /// The scheduler, for improvement items' overdue timers.
    pub follow_up: Option<FollowUpClient>,
    /// Wakes the improvement timer sync after an item changed.
    pub improvement_timers: tokio::sync::Notify,
    pub notification: Option<NotificationClient>,
    /// The chain's and regions' own sums match the configured chain (lib.rs sync_scopes):
    /// GetKpis may read them instead of summing the properties' rows.
    pub scopes_ready: std::sync::atomic::AtomicBool,
}

impl State {
    pub fn judge(&self) -> crate::kpi::Judge {
        crate::kpi::Judge {
            min_sample: self.kpis.min_sample,
            z: self.kpis.z(),
            level: self.kpis.confidence_level,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    pub fn new<T>(request: &tonic::Request<T>) -> Result<Self, tonic::Status> {
        Ok(Self {
            principal: guestloop_auth::principal(request)?,
        })
    }
}
