//! Templates from configuration: listed, previewed with language fallback, and refused at
//! load when they use a variable their kind does not declare.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use std::collections::HashMap;

#[tokio::test]
async fn lists_and_previews_with_language_fallback() {
    let app = TestApp::spawn().await;
    let mut client = app.staff("sh-bund");
    let all = client
        .list_templates(pb::ListTemplatesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .templates;
    assert!(all.len() > 50, "{}", all.len());
    let surveys = client
        .list_templates(pb::ListTemplatesRequest {
            kind: pb::MessageKind::SatisfactionSurvey as i32,
            language: "zh-TW".into(),
            channel: c::ContactChannel::Email as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .templates;
    assert_eq!(surveys.len(), 1);
    assert_eq!(
        surveys[0].variables,
        ["property_name", "recipient_name", "survey_link"]
    );

    // zh-TW exists: no fallback; the property's name is filled; a missing variable stays
    // visible as {{name}}; an undeclared one is reported.
    let p = client
        .preview_template(pb::PreviewTemplateRequest {
            kind: pb::MessageKind::SatisfactionSurvey as i32,
            language: "zh-Hant-HK".into(),
            channel: c::ContactChannel::Email as i32,
            variables: HashMap::from([
                ("recipient_name".into(), "林美".into()),
                ("colour".into(), "red".into()),
            ]),
            property_id: "sh-bund".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.language, "zh-TW");
    assert!(!p.language_fallback);
    assert_eq!(p.subject, "您在Shanghai Bund的入住體驗如何？");
    assert!(p.body.contains("尊敬的林美"), "{}", p.body);
    assert!(p.body.contains("{{survey_link}}"), "{}", p.body);
    assert_eq!(p.missing_variables, ["survey_link"]);
    assert_eq!(p.unknown_variables, ["colour"]);

    // Staff kinds exist in en only: zh-CN asked, property default zh-CN, falls back to en.
    let p = client
        .preview_template(pb::PreviewTemplateRequest {
            kind: pb::MessageKind::StaffNewCase as i32,
            language: "zh-CN".into(),
            channel: c::ContactChannel::Email as i32,
            variables: HashMap::from([
                ("case_reference".into(), "SH01-2025-000123".into()),
                ("category".into(), "noise".into()),
                ("urgency".into(), "urgent".into()),
                ("recipient_name".into(), "Wang".into()),
            ]),
            property_id: "sh-bund".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.language, "en");
    assert!(p.language_fallback);
    assert_eq!(p.subject, "[Shanghai Bund] New case SH01-2025-000123");
    assert!(p.missing_variables.is_empty());

    let err = client
        .preview_template(pb::PreviewTemplateRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["kind", "channel"]);
    // Another property's name is not for sh-bund's staff.
    let err = client
        .preview_template(pb::PreviewTemplateRequest {
            kind: pb::MessageKind::SatisfactionSurvey as i32,
            channel: c::ContactChannel::Email as i32,
            property_id: "hk-harbour".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

fn load(extra: &str) -> Result<notification::Settings, guestloop_config::ConfigError> {
    let chain = chain_toml(None);
    let base =
        guestloop_testkit::service_layer("postgres://notification_svc@127.0.0.1:5432/guestloop");
    let mut layers: Vec<&str> = notification::default_layers().to_vec();
    layers.push(&chain);
    layers.push(&base);
    layers.push(extra);
    guestloop_config::load_from_env(&layers, None, std::iter::empty())
}

#[test]
fn the_built_in_templates_load() {
    let s = load("").expect("defaults are valid");
    assert!(notification::templates::Templates::load(&s.templates).is_ok());
}

#[test]
fn a_template_with_an_undeclared_variable_fails_at_load() {
    // Overrides the first built-in template (satisfaction_survey / en / email).
    let err = load(
        r#"
[[templates.items]]
kind = "satisfaction_survey"
language = "en"
channel = "email"
subject = "Hi {{recipient_name}}"
body = "Your room number is {{room_number}}"
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("templates.items[0]"), "{err}");
    assert!(err.contains("satisfaction_survey/en/email"), "{err}");
    assert!(err.contains("room_number"), "{err}");

    // Declaring it makes the same template load.
    let ok = load(
        r#"
[templates.kinds]
satisfaction_survey = ["survey_link", "room_number"]
[[templates.items]]
kind = "satisfaction_survey"
language = "en"
channel = "email"
subject = "Hi {{recipient_name}}"
body = "Your room number is {{room_number}}"
"#,
    );
    assert!(ok.is_ok(), "{:?}", ok.err());

    let err = load("[templates.kinds]\nno_such_kind = []\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("templates.kinds.no_such_kind"), "{err}");
}

#[test]
fn a_template_that_would_not_render_safely_fails_at_load() {
    // Each overrides the first built-in template (satisfaction_survey / en / email).
    let item = |subject: &str, body: &str| {
        format!(
            "[[templates.items]]\nkind = \"satisfaction_survey\"\nlanguage = \"en\"\nchannel = \"email\"\nsubject = \"{subject}\"\nbody = \"\"\"{body}\"\"\"\n"
        )
    };
    let cases = [
        (
            item("Hi", "Dear {{ recipient_name"),
            "body does not compile on line 1",
        ),
        (
            item("Hi", "Dear\n{% if survey_link %}\n{{ survey_link }}"),
            "body does not compile on line",
        ),
        (item("Hi {{", "ok"), "subject does not compile on line 1"),
        (item("Hi", "{{ survey_link | safe }}"), "uses `safe`"),
        (
            item("Hi", "{{ survey_link | uper }}"),
            "unknown filter `uper`",
        ),
        (item("Hi", "{{ survey_link.host }}"), "no attributes"),
        (
            format!(
                "[templates.html_variables]\nsatisfaction_survey = [\"report\"]\n{}",
                item("Hi", "ok")
            ),
            "templates.html_variables.satisfaction_survey",
        ),
    ];
    for (extra, wanted) in cases {
        let err = load(&extra).unwrap_err().to_string();
        assert!(err.contains(wanted), "{extra}: {err}");
        if !wanted.starts_with("templates.") {
            assert!(
                err.contains("templates.items[0] (satisfaction_survey/en/email)"),
                "{extra}: {err}"
            );
        }
    }
    // A declared html variable in an email body loads.
    let ok = load(&format!(
        "[templates.kinds]\nsatisfaction_survey = [\"survey_link\", \"report\"]\n[templates.html_variables]\nsatisfaction_survey = [\"report\"]\n{}",
        item("Hi", "<p>{{ survey_link }}</p>{{ report }}")
    ));
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn wechat_window_settings_are_checked_at_load() {
    let s = load("").expect("defaults are valid");
    assert_eq!(s.channels.wechat_window.as_duration().as_secs(), 48 * 3600);
    assert!(
        s.channels
            .wechat_free_form_kinds
            .contains(&"complaint_acknowledgement".to_string())
    );
    let provider = |name: &str, channel: &str, mode: &str| {
        format!(
            "[providers.http.{name}]\nchannel = \"{channel}\"\nwechat_mode = \"{mode}\"\nurl = \"http://127.0.0.1:1/x\"\npayload = \"{{}}\"\n"
        )
    };
    let ok = load(&provider("wechat-cs", "wechat", "free_form")).expect("one free-form provider");
    assert_eq!(
        ok.providers.http["wechat-cs"].wechat_mode,
        notification::WechatMode::FreeForm
    );
    let cases = [
        (
            provider("sms-cs", "sms", "free_form"),
            "providers.http.sms-cs.wechat_mode",
        ),
        (
            format!(
                "{}{}",
                provider("a", "wechat", "free_form"),
                provider("b", "wechat", "free_form")
            ),
            "providers.http.b.wechat_mode",
        ),
        (provider("w", "wechat", "sometimes"), "wechat_mode"),
        (
            "[channels]\nwechat_free_form_kinds = [\"staff_new_case\"]\n".to_string(),
            "channels.wechat_free_form_kinds",
        ),
        (
            "[channels]\nwechat_window = \"0s\"\n".to_string(),
            "channels.wechat_window",
        ),
    ];
    for (extra, key) in cases {
        let err = load(&extra).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
}
