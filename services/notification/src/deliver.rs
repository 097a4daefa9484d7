//! The delivery worker. Every replica may run one: it claims due messages with
//! `FOR UPDATE SKIP LOCKED` and a lease (store::messages::claim_due), so no two replicas
//! send the same message at once, and a replica that dies mid-send loses its lease.
//!
//! At send time, per message: expired → SUPPRESSED (EXPIRED); a guest message outside
//! quiet hours only unless URGENT/EMERGENCY (else DEFERRED to the end of quiet hours in the
//! property's time zone); the recipient resolved (guests: guest-profile's
//! GetContactPermission per channel in preference order, first allowed wins; staff: the
//! staff directory in configuration); the template rendered in the recipient's language
//! with fallback (templates.rs; a template that does not render, e.g. a variable it prints
//! was not given, is DEAD_LETTERED `template_render_failed`, never sent with a blank); the
//! provider's rate limit; the send; then SENT, FAILED (retried with
//! exponential backoff and jitter) or DEAD_LETTERED after the attempt budget or at once on
//! a permanent error.
//!
//! Channel windows (window.rs): a WeChat message of a free-form capable kind goes as a
//! free-form (customer-service) message when the guest's last WeChat interaction is within
//! `channels.wechat_window`, else as the template message (the provider gets the
//! template's provider_template_id) with fallback_used = true; with no template provider
//! either, WeChat is skipped. A channel that fails consent or address falls back to the next
//! channel in the preference order (fallback_used = true).

use crate::domain::{backoff, quiet_until, within};
use crate::ops;
use crate::providers::{Envelope, Outcome, Provider, Providers};
use crate::settings::WechatMode;
use crate::state::State;
use crate::store::interactions;
use crate::store::messages::{self, MessageRow};
use crate::templates::{normalise_language, parse_channel};
use chrono::{DateTime, Utc};
use guestloop_client::GuestProfileClient;
use guestloop_proto::common::v1::{ContactChannel, Urgency};
use guestloop_proto::guestprofile::v1 as gp;
use guestloop_proto::notification::v1::{
    self as pb, AttemptOutcome, DeliveryStatus, MessageKind, StaffRole, SuppressionReason,
    recipient,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Worker {
    state: Arc<State>,
    providers: Providers,
    guests: Option<GuestProfileClient>,
    owner: String,
}

/// Who and where, once resolved.
struct Resolved<'p> {
    channel: ContactChannel,
    address: String,
    name: String,
    language: String,
    fallback_used: bool,
    provider: &'p Provider,
}

/// Why WeChat was or was not usable for one message.
enum WechatPick<'p> {
    /// The provider (its `wechat_mode` says how it sends) and whether it is a fallback.
    Use(&'p Provider, bool),
    /// Window closed and no template provider.
    Closed,
}

/// What happens instead of a send.
enum Instead {
    Suppress(SuppressionReason),
    /// Try again later without spending an attempt (e.g. guest-profile unavailable).
    Later(&'static str),
    DeadLetter(&'static str),
}

fn chrono_of(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::hours(1))
}

impl Worker {
    pub fn new(
        state: Arc<State>,
        providers: Providers,
        guests: Option<GuestProfileClient>,
    ) -> Self {
        if guests.is_none() {
            tracing::warn!("peers.guest_profile is not set: guest messages cannot be sent");
        }
        register_metrics(&providers);
        Self {
            state,
            providers,
            guests,
            owner: format!("worker-{}", uuid::Uuid::now_v7()),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let poll = self.state.delivery.poll_interval.as_duration();
        loop {
            if *stop.borrow() {
                break;
            }
            let full = match self.tick().await {
                Ok(n) => n as i64 >= self.state.delivery.batch_size,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery worker: claiming failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Claims and processes one batch, concurrently; returns how many were claimed. A
    /// message whose lease could run out before its send would finish is released unsent,
    /// so another replica never takes over a message this one is still sending.
    pub async fn tick(&self) -> Result<usize, sqlx::Error> {
        let d = &self.state.delivery;
        let claimed_at = Instant::now();
        let rows = messages::claim_due(
            &self.state.pool,
            &self.owner,
            d.lease.as_duration().as_secs_f64(),
            d.batch_size,
        )
        .await?;
        let n = rows.len();
        let safe = d
            .lease
            .as_duration()
            .saturating_sub(d.send_timeout.as_duration() * 2);
        futures::future::join_all(rows.into_iter().map(|row| async move {
            let id = row.id;
            let result = if claimed_at.elapsed() > safe {
                messages::release(&self.state.pool, id, &self.owner, Utc::now()).await
            } else {
                self.process(row).await
            };
            if let Err(e) = result {
                tracing::warn!(message_id = %id, error = %e, "delivery worker: processing failed");
            }
        }))
        .await;
        Ok(n)
    }

    async fn process(&self, mut row: MessageRow) -> Result<(), sqlx::Error> {
        let now = Utc::now();
        if let Some(due) = row.next_attempt_time {
            // Queue lag: how late after it was due the worker picked the message up.
            metrics::histogram!("notification_delivery_lag_seconds")
                .record((now - due).as_seconds_f64().max(0.0));
        }
        let previous = row.status();
        let spec = row.spec();
        let state = &self.state;
        let Some(property) = state.chain.property(&row.property_id) else {
            return self
                .finish_instead(row, previous, Instead::DeadLetter("unknown_property"))
                .await;
        };
        if let Some(exp) = spec
            .expire_time
            .as_ref()
            .and_then(|t| crate::domain::timestamp(t).ok())
            && exp <= now
        {
            return self
                .finish_instead(row, previous, Instead::Suppress(SuppressionReason::Expired))
                .await;
        }
        let urgent = matches!(
            Urgency::try_from(i32::from(row.urgency)),
            Ok(Urgency::Urgent | Urgency::Emergency)
        );
        let is_guest = matches!(
            spec.recipient.as_ref().and_then(|r| r.kind.as_ref()),
            Some(recipient::Kind::Guest(_))
        );
        if is_guest
            && !urgent
            && let Some(until) = quiet_until(now, &property.time_zone, &property.quiet_hours)
        {
            row.status = DeliveryStatus::Deferred as i16;
            row.next_attempt_time = Some(until);
            let mut tx = state.pool.begin().await?;
            ops::save(&mut tx, &mut row, previous, Some(&self.owner)).await?;
            return tx.commit().await;
        }
        let resolved = match spec.recipient.as_ref().and_then(|r| r.kind.as_ref()) {
            Some(recipient::Kind::Guest(g)) => self.resolve_guest(&spec, &g.guest_id).await,
            Some(recipient::Kind::Staff(s)) => self.resolve_staff(s, now),
            None => Err(Instead::DeadLetter("no_recipient")),
        };
        let r = match resolved {
            Ok(r) => r,
            Err(instead) => return self.finish_instead(row, previous, instead).await,
        };
        let kind = MessageKind::try_from(i32::from(row.kind)).unwrap_or(MessageKind::Unspecified);
        let wanted = [
            spec.language.as_str(),
            r.language.as_str(),
            property.default_language.as_str(),
        ];
        let wanted: Vec<String> = wanted
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| normalise_language(l))
            .collect();
        let wanted_refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let Some(template) = state.templates.pick(kind, r.channel, &wanted_refs) else {
            return self
                .finish_instead(row, previous, Instead::DeadLetter("no_template"))
                .await;
        };
        let mut values: BTreeMap<String, String> = spec.variables.clone().into_iter().collect();
        values.insert("recipient_name".into(), r.name.clone());
        values.insert("property_name".into(), property.name.clone());
        let rendered = match state.templates.render(template, &values) {
            Ok(r) => r,
            Err(e) => {
                // A variable the template prints was not given (or a filter failed): a
                // retry renders the same, and a blank is never sent.
                tracing::warn!(message_id = %row.id, error = %e, "the template does not render");
                return self
                    .finish_instead(row, previous, Instead::DeadLetter("template_render_failed"))
                    .await;
            }
        };
        if let Err(wait) = r.provider.bucket.take() {
            // Our own rate limit: try again when a token is there, no attempt spent.
            messages::release(&state.pool, row.id, &self.owner, now + chrono_of(wait)).await?;
            return Ok(());
        }
        let envelope = Envelope {
            message_id: row.id.to_string(),
            to: r.address.clone(),
            subject: rendered.subject,
            body: rendered.body,
            html: rendered.html,
            template_id: template.provider_template_id.clone(),
            wechat_mode: if r.channel == ContactChannel::Wechat {
                r.provider.wechat_mode.as_str()
            } else {
                ""
            },
        };
        let started = Instant::now();
        let outcome = r.provider.send(&envelope).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let (attempt_outcome, error) = match &outcome {
            Outcome::Accepted { .. } => (AttemptOutcome::Accepted, String::new()),
            Outcome::Temporary(e) => (AttemptOutcome::TemporaryError, e.clone()),
            Outcome::Permanent(e) => (AttemptOutcome::PermanentError, e.clone()),
            Outcome::Timeout(e) => (AttemptOutcome::Timeout, e.clone()),
            Outcome::RateLimited(e) => (AttemptOutcome::RateLimited, e.clone()),
        };
        let done = Utc::now();
        metrics::counter!(
            "notification_delivery_attempts_total",
            "provider" => r.provider.name.clone(),
            "channel" => r.channel.as_str_name(),
            "outcome" => attempt_outcome.as_str_name()
        )
        .increment(1);
        metrics::histogram!("notification_provider_latency_seconds", "provider" => r.provider.name.clone())
            .record(started.elapsed().as_secs_f64());
        let mut tx = state.pool.begin().await?;
        let attempt = row.attempt_count + 1;
        messages::insert_attempt(
            &mut tx,
            row.id,
            attempt,
            r.channel as i16,
            &r.provider.name,
            now,
            attempt_outcome as i16,
            &error,
            latency_ms,
        )
        .await?;
        row.attempt_count = attempt;
        row.channel = r.channel as i16;
        row.fallback_used = r.fallback_used;
        row.provider = r.provider.name.clone();
        row.language = template.language.clone();
        row.template_version = template.version;
        row.last_error = error.clone();
        let d = &state.delivery;
        match outcome {
            Outcome::Accepted {
                provider_message_id,
            } => {
                row.status = DeliveryStatus::Sent as i16;
                row.provider_message_id = provider_message_id;
                row.send_time = Some(done);
                row.next_attempt_time = None;
            }
            Outcome::Permanent(_) => {
                row.status = DeliveryStatus::DeadLettered as i16;
                row.next_attempt_time = None;
            }
            Outcome::RateLimited(_) => {
                row.status = DeliveryStatus::Failed as i16;
                let wait = backoff(1, d.backoff_base.as_duration(), d.backoff_max.as_duration());
                row.next_attempt_time = Some(done + chrono_of(wait));
            }
            Outcome::Temporary(_) | Outcome::Timeout(_) => {
                let used = messages::budget_used(&mut *tx, row.id, row.budget_start).await?;
                if used >= i64::from(d.max_attempts) {
                    row.status = DeliveryStatus::DeadLettered as i16;
                    row.next_attempt_time = None;
                } else {
                    row.status = DeliveryStatus::Failed as i16;
                    let wait = backoff(
                        used as i32,
                        d.backoff_base.as_duration(),
                        d.backoff_max.as_duration(),
                    );
                    row.next_attempt_time = Some(done + chrono_of(wait));
                }
            }
        }
        if ops::save(&mut tx, &mut row, previous, Some(&self.owner)).await? {
            tx.commit().await
        } else {
            tracing::warn!(message_id = %row.id, "delivery worker: lease lost during the send");
            tx.rollback().await
        }
    }

    async fn finish_instead(
        &self,
        mut row: MessageRow,
        previous: DeliveryStatus,
        instead: Instead,
    ) -> Result<(), sqlx::Error> {
        match instead {
            Instead::Suppress(reason) => {
                row.status = DeliveryStatus::Suppressed as i16;
                row.suppression_reason = reason as i16;
                row.next_attempt_time = None;
            }
            Instead::DeadLetter(code) => {
                row.status = DeliveryStatus::DeadLettered as i16;
                row.last_error = code.to_string();
                row.next_attempt_time = None;
            }
            Instead::Later(code) => {
                let d = &self.state.delivery;
                row.status = DeliveryStatus::Failed as i16;
                row.last_error = code.to_string();
                let wait = backoff(
                    row.attempt_count + 1,
                    d.backoff_base.as_duration(),
                    d.backoff_max.as_duration(),
                );
                row.next_attempt_time = Some(Utc::now() + chrono_of(wait));
            }
        }
        let mut tx = self.state.pool.begin().await?;
        ops::save(&mut tx, &mut row, previous, Some(&self.owner)).await?;
        tx.commit().await
    }

    /// The first channel, in preference order, with a provider, a template, consent and an
    /// address.
    async fn resolve_guest(
        &self,
        spec: &pb::MessageSpec,
        guest_id: &str,
    ) -> Result<Resolved<'_>, Instead> {
        let kind = MessageKind::try_from(spec.kind).unwrap_or(MessageKind::Unspecified);
        let preference: Vec<ContactChannel> = if spec.channel_preference.is_empty() {
            self.state
                .delivery
                .guest_channels
                .iter()
                .filter_map(|c| parse_channel(c))
                .collect()
        } else {
            spec.channel_preference
                .iter()
                .filter_map(|c| ContactChannel::try_from(*c).ok())
                .collect()
        };
        let first = preference.first().copied();
        let free_form = self
            .providers
            .wechat_free_form()
            .filter(|_| self.state.wechat.free_form_kind(kind));
        let candidates: Vec<ContactChannel> = preference
            .iter()
            .copied()
            .filter(|c| self.state.templates.has_channel(kind, *c))
            .filter(|c| {
                self.providers.for_channel(*c).is_some()
                    || (*c == ContactChannel::Wechat && free_form.is_some())
            })
            .collect();
        if candidates.is_empty() {
            return Err(Instead::DeadLetter("no_provider_for_channels"));
        }
        let Some(client) = &self.guests else {
            return Err(Instead::Later("guest_profile_not_configured"));
        };
        let mut no_consent = false;
        let mut asked = false;
        for channel in candidates {
            let (provider, window_fallback) = if channel == ContactChannel::Wechat {
                match self.pick_wechat(free_form, guest_id).await? {
                    WechatPick::Use(p, fallback) => (p, fallback),
                    WechatPick::Closed => continue,
                }
            } else {
                match self.providers.for_channel(channel) {
                    Some(p) => (p, false),
                    None => continue,
                }
            };
            asked = true;
            let answer = client
                .clone()
                .get_contact_permission(gp::GetContactPermissionRequest {
                    guest_id: guest_id.to_string(),
                    channel: channel as i32,
                    purpose: spec.purpose,
                })
                .await;
            match answer {
                Ok(a) => {
                    let a = a.into_inner();
                    if a.allowed && !a.address.is_empty() {
                        let name = [a.given_name.as_str(), a.family_name.as_str()]
                            .iter()
                            .filter(|s| !s.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join(" ");
                        return Ok(Resolved {
                            channel,
                            address: a.address,
                            name,
                            language: a.language,
                            fallback_used: Some(channel) != first || window_fallback,
                            provider,
                        });
                    }
                    match a.denial_reason.as_str() {
                        "erased" => return Err(Instead::Suppress(SuppressionReason::GuestErased)),
                        "no_consent" => no_consent = true,
                        _ => {}
                    }
                }
                Err(s) if s.code() == tonic::Code::NotFound => {
                    return Err(Instead::Suppress(SuppressionReason::NoAddress));
                }
                Err(s) => {
                    tracing::warn!(code = ?s.code(), "guest-profile did not answer");
                    return Err(Instead::Later("guest_profile_unavailable"));
                }
            }
        }
        if !asked {
            // Only WeChat was possible, its window is closed and no template provider is
            // configured: nothing can go until configuration changes.
            return Err(Instead::DeadLetter("wechat_window_closed"));
        }
        Err(Instead::Suppress(if no_consent {
            SuppressionReason::NoConsent
        } else {
            SuppressionReason::NoAddress
        }))
    }

    /// WeChat's provider and mode for this guest now: free-form inside the window when the
    /// kind allows it (`free_form` is then the provider), else the template provider.
    async fn pick_wechat<'p>(
        &'p self,
        free_form: Option<&'p Provider>,
        guest_id: &str,
    ) -> Result<WechatPick<'p>, Instead> {
        let open = match free_form {
            Some(_) => {
                let last = interactions::last(&self.state.pool, guest_id)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "reading the last WeChat interaction failed");
                        Instead::Later("database_unavailable")
                    })?;
                self.state.wechat.open(last, Utc::now())
            }
            None => false,
        };
        let template = self.providers.for_channel(ContactChannel::Wechat);
        let choice = crate::window::choose(free_form.is_some(), open, free_form, template);
        let decision = match &choice {
            Some((_, WechatMode::FreeForm, _)) => "free_form",
            Some((_, WechatMode::Template, true)) => "template_fallback",
            Some((_, WechatMode::Template, false)) => "template",
            None => "window_closed",
        };
        metrics::counter!("notification_wechat_window_decisions_total", "decision" => decision)
            .increment(1);
        tracing::debug!(decision, "WeChat window decision");
        Ok(match choice {
            Some((p, _, fallback)) => WechatPick::Use(p, fallback),
            None => WechatPick::Closed,
        })
    }

    /// Staff alerts go by email to the staff directory's address for the member or role.
    fn resolve_staff(
        &self,
        s: &pb::StaffRecipient,
        now: DateTime<Utc>,
    ) -> Result<Resolved<'_>, Instead> {
        let state = &self.state;
        let mut role = StaffRole::try_from(s.role).unwrap_or(StaffRole::Unspecified);
        if s.on_duty_fallback
            && let Some(p) = state.chain.property(&s.property_id)
            && !within(now, &p.time_zone, &p.working_hours)
        {
            role = StaffRole::DutyManager;
        }
        let role_name = role
            .as_str_name()
            .trim_start_matches("STAFF_ROLE_")
            .to_ascii_lowercase();
        let member = state.staff.iter().find(|m| {
            if !s.staff_id.is_empty() && role != StaffRole::DutyManager {
                return m.staff_id == s.staff_id;
            }
            let at = if role == StaffRole::RegionalManager && !s.region_id.is_empty() {
                state
                    .chain
                    .property(&m.property_id)
                    .is_some_and(|p| p.region == s.region_id)
            } else {
                m.property_id == s.property_id
            };
            at && m.roles.iter().any(|r| r == &role_name)
        });
        let Some(member) = member else {
            return Err(Instead::Suppress(SuppressionReason::NoStaffForRole));
        };
        let provider = self
            .providers
            .for_channel(ContactChannel::Email)
            .ok_or(Instead::DeadLetter("no_provider_for_channels"))?;
        Ok(Resolved {
            channel: ContactChannel::Email,
            address: member.email.clone(),
            name: member.name.clone(),
            language: member.language.clone(),
            fallback_used: false,
            provider,
        })
    }
}

/// HELP lines for the delivery series, and the series its alerts watch at zero from the
/// start, per configured provider and its channel: a series born at its first increment
/// loses that increment to `rate()`/`increase()` — the first dead letter would not count.
fn register_metrics(providers: &Providers) {
    use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
    describe_counter!(
        "notification_delivery_attempts_total",
        "Provider send attempts, by provider, channel and outcome"
    );
    describe_counter!(
        "notification_status_changes_total",
        "Messages moved to a delivery status (DEAD_LETTERED: no more retries until RetryDeadLetter), by status and channel"
    );
    describe_counter!(
        "notification_wechat_window_decisions_total",
        "How WeChat messages were sent with respect to the 48 h customer-service window"
    );
    describe_histogram!(
        "notification_delivery_lag_seconds",
        Unit::Seconds,
        "How long after it was due (queued, retry or end of quiet hours) the worker picked a message up"
    );
    describe_histogram!(
        "notification_provider_latency_seconds",
        Unit::Seconds,
        "How long a provider took to answer a send, by provider"
    );
    let outcomes = [
        AttemptOutcome::Accepted,
        AttemptOutcome::TemporaryError,
        AttemptOutcome::PermanentError,
        AttemptOutcome::Timeout,
        AttemptOutcome::RateLimited,
    ];
    let statuses = [
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::DeadLettered,
    ];
    let mut channels = std::collections::BTreeSet::new();
    for p in providers.all() {
        let channel = p.channel.as_str_name();
        channels.insert(channel);
        for outcome in outcomes {
            counter!(
                "notification_delivery_attempts_total",
                "provider" => p.name.clone(),
                "channel" => channel,
                "outcome" => outcome.as_str_name()
            )
            .increment(0);
        }
        let _ = histogram!("notification_provider_latency_seconds", "provider" => p.name.clone());
    }
    for channel in channels {
        for status in statuses {
            counter!(
                "notification_status_changes_total",
                "status" => status.as_str_name(),
                "channel" => channel
            )
            .increment(0);
        }
    }
    let _ = histogram!("notification_delivery_lag_seconds");
}
