//! R8: notification's request and event parsers under random input, shared by the property
//! tests below (`cargo test`) and the cargo-fuzz target `notification` (fuzz/, the long
//! run). SendMessage as its handler parses it; delivered events as the consumer reads them
//! (api/events.rs); template text as it is checked and rendered; the quiet hours of any
//! time zone name. None may panic; a rejection must name real fields of the request; what
//! is accepted keeps its invariants.

use crate::domain::{parse_send, quiet_until, within};
use crate::error::NotificationError;
use crate::settings::Settings;
use crate::templates::{TemplateItem, TemplateSettings, Templates, normalise_language};
use chrono::{DateTime, Utc};
use guestloop_proto::arbitrary::{Choices, assert_names_fields, request};
use guestloop_proto::common::v1::{ConsentPurpose, ContactChannel, Urgency};
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::notification::v1 as pb;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The parse steps, by name; [`run`] picks one by index.
pub const SURFACES: [&str; 4] = ["SendMessage", "events", "templates", "quiet hours"];

/// Runs surface `surface` (mod [`SURFACES`]) on input drawn from `data`.
pub fn run(surface: usize, data: &[u8]) {
    let c = &mut Choices::new(data);
    match surface % SURFACES.len() {
        0 => send_message(c),
        1 => event(c),
        2 => template_text(c),
        _ => quiet_hours(c),
    }
}

/// The default settings and templates over the test chain.
fn fixture() -> &'static (Settings, Templates) {
    static FIXTURE: OnceLock<(Settings, Templates)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut layers = crate::default_layers().to_vec();
        layers.push(guestloop_testkit::TEST_CHAIN_TOML);
        let settings: Settings =
            guestloop_config::load_offline(&layers).expect("the default settings load");
        let templates = Templates::load(&settings.templates).expect("the default templates");
        (settings, templates)
    })
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn send_message(c: &mut Choices<'_>) {
    const REQ: &str = "guestloop.notification.v1.SendMessageRequest";
    let valid = pb::SendMessageRequest {
        idempotency_key: "survey/stay-1".into(),
        message: Some(pb::MessageSpec {
            recipient: Some(pb::Recipient {
                kind: Some(pb::recipient::Kind::Guest(pb::GuestRecipient {
                    guest_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
                })),
            }),
            kind: pb::MessageKind::SatisfactionSurvey as i32,
            variables: BTreeMap::from([("survey_link".into(), "https://s.example/1".into())])
                .into_iter()
                .collect(),
            channel_preference: vec![ContactChannel::Email as i32],
            urgency: Urgency::Normal as i32,
            purpose: ConsentPurpose::ServiceFollowUp as i32,
            property_id: "sh-bund".into(),
            stay_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
            language: "zh-Hans-CN".into(),
            not_before_time: ts(1_800_000_000),
            expire_time: ts(1_800_600_000),
            ..Default::default()
        }),
    };
    let Some(req) = request(REQ, &valid, c) else {
        return;
    };
    let (settings, templates) = fixture();
    match parse_send(req, &settings.common.chain, templates) {
        Ok(m) => {
            assert!(!m.idempotency_key.is_empty());
            assert_ne!(m.kind, pb::MessageKind::Unspecified);
            assert_ne!(m.urgency, Urgency::Unspecified);
            assert!(
                settings
                    .common
                    .chain
                    .property(&m.spec.property_id)
                    .is_some()
            );
            assert!(
                m.spec.language.is_empty()
                    || crate::templates::LANGUAGES.contains(&m.spec.language.as_str())
            );
        }
        Err(NotificationError::Invalid(v)) => assert_names_fields(
            REQ,
            v.0.iter()
                .map(|f| (f.field.as_str(), f.description.as_str())),
        ),
        Err(other) => panic!("SendMessage parsing answered {other:?}, not INVALID_ARGUMENT"),
    }
}

fn event(c: &mut Choices<'_>) {
    const ENV: &str = "guestloop.events.v1.EventEnvelope";
    let valid = EventEnvelope {
        event_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
        source: "feedback-intake".into(),
        occur_time: ts(1_800_000_000),
        payload: Some(Payload::FeedbackReceived(ev::FeedbackReceived {
            guest_id: "0195a3c0-0000-7b62-9a4e-6f1b2c3d4e5f".into(),
            channel: guestloop_proto::feedback::v1::FeedbackChannel::Wechat as i32,
            receive_time: ts(1_700_000_000),
            ..Default::default()
        })),
        ..Default::default()
    };
    let Some(env) = request(ENV, &valid, c) else {
        return;
    };
    match crate::api::events::effect(&env) {
        Some(crate::api::events::Effect::Interaction { guest_id, at }) => {
            assert!(!guest_id.is_empty());
            // What PostgreSQL stores: an instant it refuses would fail at every redelivery.
            assert!(at <= Utc::now() && chrono::Datelike::year(&at) >= 1, "{at}");
        }
        Some(crate::api::events::Effect::Erase { guest_id }) => assert!(!guest_id.is_empty()),
        // Only two different UUIDs make a merge (a loop would never end).
        Some(crate::api::events::Effect::Merge(m)) => assert_ne!(m.survivor, m.duplicate),
        None => {}
    }
}

/// Random text as an email or SMS body of a kind declaring `survey_link`: it loads or is
/// refused naming the template; loaded, it renders or errors, never panics; a variable's
/// markup never reaches the HTML part unescaped; text without tags renders as itself.
fn template_text(c: &mut Choices<'_>) {
    const MARKUP: &str = "<x-fuzz a=\"1\">&";
    let text = c.text();
    let channel = ["email", "sms"][c.below(2)];
    let settings = TemplateSettings {
        kinds: BTreeMap::from([("satisfaction_survey".into(), vec!["survey_link".into()])]),
        html_variables: BTreeMap::new(),
        items: vec![TemplateItem {
            kind: "satisfaction_survey".into(),
            language: "en".into(),
            channel: channel.into(),
            subject: "Hello {{ recipient_name }}".into(),
            body: text.clone(),
            version: 1,
            provider_template_id: String::new(),
        }],
    };
    match Templates::load(&settings) {
        Ok(templates) => {
            let t = templates.all().next().expect("one template");
            for v in &t.variables {
                assert!(["survey_link", "recipient_name", "property_name"].contains(&v.as_str()));
            }
            let mut values: BTreeMap<String, String> =
                (0..c.below(3)).map(|_| (c.text(), c.text())).collect();
            for v in &t.variables {
                values.insert(v.clone(), MARKUP.into());
            }
            if let Ok(r) = templates.render(t, &values) {
                if let Some(html) = &r.html
                    && !text.contains("x-fuzz")
                {
                    assert!(!html.contains("<x-fuzz"), "{text:?} → {html}");
                }
                if !text.contains(['{', '}', '%', '#']) {
                    let t = text.strip_suffix('\n').unwrap_or(&text);
                    assert_eq!(r.body, t.strip_suffix('\r').unwrap_or(t));
                }
            }
        }
        Err((key, why)) => {
            assert!(key.starts_with("templates.items[0]"), "{key}");
            assert!(!why.is_empty());
        }
    }
    let l = normalise_language(&text);
    assert_eq!(normalise_language(&l), l);
}

fn quiet_hours(c: &mut Choices<'_>) {
    let (settings, _) = fixture();
    let zone = match c.byte() % 3 {
        0 => c.text(),
        _ => [
            "Asia/Shanghai",
            "Asia/Hong_Kong",
            "America/New_York",
            "UTC",
            "Etc/GMT-14",
        ][c.below(5)]
        .to_string(),
    };
    // The callers pass the wall clock: any instant of a century around now.
    let now = DateTime::<Utc>::from_timestamp(1_000_000_000 + i64::from(c.u32()) * 2, 0)
        .expect("an instant of this century");
    let property =
        &settings.common.chain.properties[c.below(settings.common.chain.properties.len())];
    let _ = within(now, &zone, &property.working_hours);
    if let Some(end) = quiet_until(now, &zone, &property.quiet_hours) {
        assert!(end > now, "quiet hours at {now} in {zone} end at {end}");
    }
    let attempt = c.int() as i32;
    let d = crate::domain::backoff(
        attempt,
        std::time::Duration::from_secs(30),
        std::time::Duration::from_secs(3600),
    );
    assert!(d <= std::time::Duration::from_secs(3600));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by this fuzzing: a language of white space passed the parse unchanged and was
    /// stored as the message's language.
    #[test]
    fn a_language_of_white_space_is_no_language() {
        let (settings, templates) = fixture();
        let req = pb::SendMessageRequest {
            idempotency_key: "k".into(),
            message: Some(pb::MessageSpec {
                recipient: Some(pb::Recipient {
                    kind: Some(pb::recipient::Kind::Guest(pb::GuestRecipient {
                        guest_id: "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f".into(),
                    })),
                }),
                kind: pb::MessageKind::BirthdayGreeting as i32,
                purpose: ConsentPurpose::Marketing as i32,
                property_id: "sh-bund".into(),
                language: " \t".into(),
                ..Default::default()
            }),
        };
        let m = parse_send(req, &settings.common.chain, templates).unwrap();
        assert_eq!(m.spec.language, "");
    }

    /// Found by this fuzzing: a WeChat interaction dated before the year 1 was accepted,
    /// and PostgreSQL would refuse it at every redelivery of the event.
    #[test]
    fn an_interaction_before_the_year_one_is_ignored() {
        let env = EventEnvelope {
            payload: Some(Payload::FeedbackReceived(ev::FeedbackReceived {
                guest_id: "g".into(),
                channel: guestloop_proto::feedback::v1::FeedbackChannel::Wechat as i32,
                receive_time: ts(-8_334_601_228_800),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(crate::api::events::effect(&env).is_none());
    }

    proptest! {
        // About a second in a debug build; the long run is `scripts/fuzz.sh`.
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn no_parse_step_panics_and_every_rejection_names_its_fields(
            data in proptest::collection::vec(any::<u8>(), 0..1024)
        ) {
            for surface in 0..SURFACES.len() {
                run(surface, &data);
            }
        }
    }
}
