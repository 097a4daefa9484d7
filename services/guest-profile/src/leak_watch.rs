//! The unusual-volume detector of contact reads (issue 11: a leak must be reported at
//! once). Every `leak.check_interval` it counts each reader's contact-data reads over the
//! last `leak.window` (service callers excepted: notification reads an address per send)
//! and raises an alert for a reader over `leak.reads_per_window`, once per reader and
//! window. An alert is a row ListContactReads shows, a warning in the log (by alert id and
//! counts; the reader is in the row, not the log) and `guestloop_contact_read_bursts_total`,
//! which fires the chart's GuestloopContactReadBurst alert.

use crate::store::contact_reads as store;
use sqlx::PgPool;

#[derive(Debug)]
pub struct LeakWatch {
    pub pool: PgPool,
    pub settings: crate::settings::LeakSettings,
}

impl LeakWatch {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        metrics::describe_counter!(
            "guestloop_contact_read_bursts_total",
            "Readers who read more guests' contact data in one window than leak.reads_per_window"
        );
        metrics::counter!("guestloop_contact_read_bursts_total").increment(0);
        loop {
            match store::raise_bursts(
                &self.pool,
                self.settings.window.as_duration(),
                self.settings.reads_per_window,
            )
            .await
            {
                Ok(raised) => {
                    for a in &raised {
                        tracing::warn!(alert_id = %a.id, role = %a.accessor_role, reads = a.reads,
                            guests = a.guests, "unusual volume of contact-data reads by one reader");
                    }
                    metrics::counter!("guestloop_contact_read_bursts_total")
                        .increment(raised.len() as u64);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "contact-read check failed; retried next round")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.check_interval.as_duration()) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
