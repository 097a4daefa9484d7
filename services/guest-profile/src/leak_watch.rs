//! The unusual-volume detector of contact reads (issue 11: a leak must be reported at
//! once). Every `leak.check_interval` it counts each reader's contact-data reads over the
//! last `leak.window` (service callers excepted: notification reads an address per send)
//! and raises an alert for a reader over `leak.reads_per_window`, once per reader and
//! window. An alert is a row ListContactReads shows, a warning in the log (by alert id and
//! counts; the reader is in the row, not the log), `guestloop_contact_read_bursts_total`
//! (the chart's GuestloopContactReadBurst alert), and a staff message through notification
//! (STAFF_PRIVACY_ALERT) to the general manager of each of the (at most three) properties
//! whose guests the reader read most; sent again on later rounds until notification
//! accepts it, once per alert and property (the idempotency key).

use crate::store::contact_reads as store;
use guestloop_client::NotificationClient;
use guestloop_proto::notification::v1 as notify;
use sqlx::PgPool;

/// The properties whose managers hear of one alert.
const PROPERTIES_NOTIFIED: i64 = 3;

#[derive(Debug)]
pub struct LeakWatch {
    pub pool: PgPool,
    pub settings: crate::settings::LeakSettings,
    /// `None` without `peers.notification`: alerts are raised and counted, not sent.
    pub notification: Option<NotificationClient>,
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
            if let Err(e) = self.notify().await {
                tracing::warn!(error = %e, "contact-read alerts not sent; retried next round");
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.check_interval.as_duration()) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

impl LeakWatch {
    /// Sends every alert notification has not accepted yet.
    async fn notify(&self) -> Result<(), sqlx::Error> {
        let Some(client) = &self.notification else {
            return Ok(());
        };
        let window = self.settings.window.as_duration();
        for alert in store::unnotified(&self.pool).await? {
            let since = alert.raise_time - chrono::Duration::from_std(window).unwrap_or_default();
            let properties =
                store::properties_read(&self.pool, &alert.accessor, since, PROPERTIES_NOTIFIED)
                    .await?;
            let mut all_sent = true;
            for property in &properties {
                let variables = [
                    ("reader", alert.accessor.clone()),
                    ("reader_role", alert.accessor_role.clone()),
                    ("reads", alert.reads.to_string()),
                    ("guests", alert.guests.to_string()),
                    ("window", humane(window)),
                ];
                let request = notify::SendMessageRequest {
                    idempotency_key: format!("contact-read-alert:{}:{property}", alert.id),
                    message: Some(notify::MessageSpec {
                        recipient: Some(notify::Recipient {
                            kind: Some(notify::recipient::Kind::Staff(notify::StaffRecipient {
                                property_id: property.clone(),
                                role: notify::StaffRole::GeneralManager as i32,
                                on_duty_fallback: true,
                                ..Default::default()
                            })),
                        }),
                        kind: notify::MessageKind::StaffPrivacyAlert as i32,
                        urgency: guestloop_proto::common::v1::Urgency::Urgent as i32,
                        variables: variables
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                        property_id: property.clone(),
                        ..Default::default()
                    }),
                };
                if let Err(status) = client.clone().send_message(request).await {
                    all_sent = false;
                    tracing::warn!(alert_id = %alert.id, code = ?status.code(),
                        "contact-read alert not accepted by notification");
                }
            }
            if all_sent {
                store::mark_notified(&self.pool, alert.id).await?;
            }
        }
        Ok(())
    }
}

/// A window as people say it: "1 h", "30 min".
fn humane(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_read_as_people_say_them() {
        use std::time::Duration;
        let table = [
            (3600, "1 h"),
            (7200, "2 h"),
            (1800, "30 min"),
            (90, "90 s"),
            (0, "0 s"),
        ];
        for (secs, want) in table {
            assert_eq!(super::humane(Duration::from_secs(secs)), want);
        }
    }
}
