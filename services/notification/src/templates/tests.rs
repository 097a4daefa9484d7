//! The template engine's checks: escaping per channel, conditionals, plural rules,
//! refusals at load, trusted HTML.

use super::*;

const WORDS: &str = "<script>alert(1)</script> & \"quotes\"";

fn item(kind: &str, language: &str, channel: &str, subject: &str, body: &str) -> TemplateItem {
    TemplateItem {
        kind: kind.into(),
        language: language.into(),
        channel: channel.into(),
        subject: subject.into(),
        body: body.into(),
        version: 1,
        provider_template_id: String::new(),
    }
}

fn settings(kinds: &[(&str, &[&str])], items: Vec<TemplateItem>) -> TemplateSettings {
    TemplateSettings {
        kinds: kinds
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect(),
        html_variables: BTreeMap::new(),
        items,
    }
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One template of `complaint_resolved` (case_reference, resolution) on `channel`.
fn resolved(channel: &str, body: &str) -> Templates {
    Templates::load(&settings(
        &[("complaint_resolved", &["case_reference", "resolution"])],
        vec![item(
            "complaint_resolved",
            "en",
            channel,
            "Case {{ case_reference }}",
            body,
        )],
    ))
    .unwrap()
}

fn render_one(t: &Templates, v: &[(&str, &str)]) -> Result<Rendered, String> {
    t.render(t.all().next().unwrap(), &values(v))
}

#[test]
fn a_guests_words_are_escaped_in_html_and_verbatim_in_text() {
    for channel in ["email", "sms", "wechat", "app_push"] {
        let t = resolved(
            channel,
            "Dear {{ recipient_name }}, resolved: {{ resolution }}",
        );
        let r = render_one(
            &t,
            &[
                ("recipient_name", "O'Brien & Sons"),
                ("case_reference", "A&B <1>"),
                ("resolution", WORDS),
            ],
        )
        .unwrap();
        // Plain text everywhere: subject and body as given.
        assert_eq!(r.subject, "Case A&B <1>", "{channel}");
        assert_eq!(
            r.body,
            format!("Dear O'Brien & Sons, resolved: {WORDS}"),
            "{channel}"
        );
        match (channel, r.html) {
            ("email", Some(html)) => {
                assert!(!html.contains("<script>"), "{html}");
                assert!(
                    html.contains(
                        "resolved: &lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;quotes&quot;"
                    ),
                    "{html}"
                );
                assert!(html.contains("Dear O&#x27;Brien &amp; Sons"), "{html}");
                assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
                assert!(html.contains("<html lang=\"en\">"), "{html}");
            }
            ("email", None) => panic!("an email has an HTML part"),
            (_, html) => assert_eq!(html, None, "{channel}"),
        }
    }
}

#[test]
fn an_email_bodys_own_text_is_escaped_in_its_html_part() {
    let cases = [
        ("a & b", "a &amp; b"),
        ("{{ x }} < y > z", "{{ x }} &lt; y &gt; z"),
        (
            "{% if a < b %}<{% endif %}",
            "{% if a < b %}&lt;{% endif %}",
        ),
        ("{{ \"}}<\" }}<", "{{ \"}}<\" }}&lt;"),
        ("{# <c> #}<", "{# <c> #}&lt;"),
        (
            "{% raw %}<{{ x }}>{% endraw %}&",
            "{% raw %}&lt;{{ x }}&gt;{% endraw %}&amp;",
        ),
        ("{{ oops", "{{ oops"),
        ("plain text", "plain text"),
        // Found by the fuzzing (fuzzing.rs): a multi-byte character inside a tag.
        ("{{\u{3000}x }}<", "{{\u{3000}x }}&lt;"),
    ];
    for (source, html) in cases {
        assert_eq!(html_source(source), html, "{source}");
    }
    let t = resolved("email", "Q&A <{{ resolution }}>\nsecond line");
    let r = render_one(&t, &[("case_reference", "C1"), ("resolution", "ok")]).unwrap();
    assert_eq!(r.body, "Q&A <ok>\nsecond line");
    let html = r.html.unwrap();
    assert!(html.contains("Q&amp;A &lt;ok&gt;\nsecond line"), "{html}");
    assert!(html.contains("white-space: pre-wrap"), "{html}");
}

#[test]
fn an_if_makes_a_variable_optional() {
    let t = resolved(
        "sms",
        "Resolved{% if resolution %}: {{ resolution }}{% else %}.{% endif %}",
    );
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("case_reference", "C1"), ("resolution", "new pillows")],
            "Resolved: new pillows",
        ),
        (&[("case_reference", "C1")], "Resolved."),
        (&[("case_reference", "C1"), ("resolution", "")], "Resolved."),
    ];
    for (v, body) in cases {
        assert_eq!(render_one(&t, v).unwrap().body, body, "{v:?}");
    }
}

#[test]
fn the_default_templates_use_if_and_plural() {
    let mut layers = crate::default_layers().to_vec();
    layers.push(guestloop_testkit::TEST_CHAIN_TOML);
    let s: crate::Settings = guestloop_config::load_offline(&layers).unwrap();
    let t = Templates::load(&s.templates).unwrap();
    let render = |kind, language, v: &[(&str, &str)]| {
        let tpl = t.exact(kind, language, ContactChannel::Sms).unwrap();
        t.render(tpl, &values(v)).unwrap().body
    };
    let base = [("recipient_name", "Mei"), ("property_name", "Bund")];
    type Case<'a> = (MessageKind, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 10] = [
        (
            MessageKind::PostStayFollowUp,
            "en",
            &[("stay_dates", "1 – 3 May")],
            "Dear Mei, thank you for your stay (1 – 3 May). We hope to welcome you back soon.",
        ),
        (
            MessageKind::PostStayFollowUp,
            "en",
            &[],
            "Dear Mei, thank you for your stay. We hope to welcome you back soon.",
        ),
        (
            MessageKind::PostStayFollowUp,
            "zh-TW",
            &[],
            "尊敬的Mei，感謝您的入住，期待再次為您服務。",
        ),
        (
            MessageKind::ComplaintResolved,
            "en",
            &[("case_reference", "C1"), ("resolution", "we fixed it")],
            "Dear Mei, your complaint C1 has been resolved: we fixed it",
        ),
        (
            MessageKind::ComplaintResolved,
            "en",
            &[("case_reference", "C1")],
            "Dear Mei, your complaint C1 has been resolved.",
        ),
        (
            MessageKind::ComplaintResolved,
            "zh-CN",
            &[("case_reference", "C1")],
            "尊敬的Mei，您的投诉C1已处理。",
        ),
        (
            MessageKind::AnniversaryGreeting,
            "en",
            &[("years", "1")],
            "Dear Mei, congratulations on 1 year!",
        ),
        (
            MessageKind::AnniversaryGreeting,
            "en",
            &[("years", "2")],
            "Dear Mei, congratulations on 2 years!",
        ),
        (
            MessageKind::AnniversaryGreeting,
            "zh-TW",
            &[("years", "1")],
            "尊敬的Mei，祝賀您的1週年紀念！",
        ),
        (
            MessageKind::AnniversaryGreeting,
            "zh-CN",
            &[("years", "2")],
            "尊敬的Mei，祝贺您的2周年纪念！",
        ),
    ];
    for (kind, language, v, body) in cases {
        let all: Vec<(&str, &str)> = base.iter().chain(v.iter()).copied().collect();
        assert_eq!(
            render(kind, language, &all),
            body,
            "{kind:?} {language} {v:?}"
        );
    }
    let alert = t
        .exact(MessageKind::StaffPrivacyAlert, "en", ContactChannel::Email)
        .unwrap();
    let v = values(&[
        ("property_name", "Bund"),
        ("recipient_name", "GM"),
        ("reader", "desk-7"),
        ("reader_role", "property_staff"),
        ("reads", "1"),
        ("guests", "3"),
        ("window", "10 minutes"),
    ]);
    let body = t.render(alert, &v).unwrap().body;
    assert!(body.contains("of 3 guests (1 read) in the last"), "{body}");
}

#[test]
fn plural_follows_each_languages_cldr_rule() {
    use PluralCategory::{One, Other};
    let cases = [
        ("en", "1", One),
        ("en", "2", Other),
        ("en", "0", Other),
        ("en", "1.0", Other),
        ("en", "1.5", Other),
        ("en", "-1", One),
        ("en", "11", Other),
        ("en", " 1 ", One),
        ("en", "one", Other),
        ("en", "", Other),
        ("zh-CN", "1", Other),
        ("zh-CN", "0", Other),
        ("zh-TW", "1", Other),
        ("zh-TW", "2", Other),
    ];
    for (language, n, category) in cases {
        assert_eq!(plural_category(language, n), category, "{language} {n}");
    }

    // The filter, in a template of each language: positional (one, other), `other`
    // alone, named forms, numbers as numbers.
    let body = "{{ n }} {{ n | plural('night', 'nights') }}|{{ n | plural('晚') }}|\
                {{ n | plural(one='room', other='rooms') }}|{{ 1 | plural('a', 'b') }}";
    let t = Templates::load(&settings(
        &[("anniversary_greeting", &["n"])],
        LANGUAGES
            .iter()
            .map(|l| item("anniversary_greeting", l, "sms", "", body))
            .collect(),
    ))
    .unwrap();
    let cases = [
        ("en", "1", "1 night|晚|room|a"),
        ("en", "2", "2 nights|晚|rooms|a"),
        ("en", "0", "0 nights|晚|rooms|a"),
        ("zh-CN", "1", "1 nights|晚|rooms|b"),
        ("zh-CN", "2", "2 nights|晚|rooms|b"),
        ("zh-TW", "1", "1 nights|晚|rooms|b"),
    ];
    for (language, n, want) in cases {
        let tpl = t
            .exact(
                MessageKind::AnniversaryGreeting,
                language,
                ContactChannel::Sms,
            )
            .unwrap();
        assert_eq!(
            t.render(tpl, &values(&[("n", n)])).unwrap().body,
            want,
            "{language} {n}"
        );
    }
}

#[test]
fn a_template_is_refused_at_load_naming_it_and_why() {
    let cases = [
        (
            "{{ room_number }}",
            vec!["`room_number`", "does not declare"],
        ),
        (
            "{% if room %}x{% endif %}",
            vec!["`room`", "does not declare"],
        ),
        (
            "{{ resolution.text }}",
            vec!["`resolution.text`", "no attributes"],
        ),
        (
            "{% for i in range(3) %}{{ i }}{% endfor %}",
            vec!["`range`"],
        ),
        (
            "{{ oops",
            vec!["body does not compile on line 1", "syntax error"],
        ),
        ("ok\n{% if %}", vec!["body does not compile on line 2"]),
        (
            "{% if resolution %}x",
            vec!["body does not compile", "syntax error"],
        ),
        ("{{ resolution | safe }}", vec!["body uses `safe`"]),
        (
            "{% autoescape false %}{{ resolution }}{% endautoescape %}",
            vec!["body uses `autoescape`"],
        ),
        (
            "{% filter safe %}{{ resolution }}{% endfilter %}",
            vec!["uses `safe`"],
        ),
        (
            "{{ resolution | uper }}",
            vec!["body uses the unknown filter `uper`"],
        ),
        (
            "{% if resolution is not nosuch %}x{% endif %}",
            vec!["unknown test `nosuch`"],
        ),
        (
            "{% filter nosuch %}x{% endfilter %}",
            vec!["unknown filter `nosuch`"],
        ),
        ("  ", vec!["body is empty"]),
    ];
    for (body, wanted) in cases {
        let (key, why) = Templates::load(&settings(
            &[("complaint_resolved", &["case_reference", "resolution"])],
            vec![item("complaint_resolved", "en", "email", "", body)],
        ))
        .unwrap_err();
        assert_eq!(
            key, "templates.items[0] (complaint_resolved/en/email)",
            "{body}"
        );
        for w in wanted {
            assert!(why.contains(w), "{body}: {why}");
        }
    }
    let (_, why) = Templates::load(&settings(
        &[("complaint_resolved", &["resolution"])],
        vec![item("complaint_resolved", "en", "sms", "{{ x", "ok")],
    ))
    .unwrap_err();
    assert!(
        why.starts_with("subject does not compile on line 1"),
        "{why}"
    );
}

#[test]
fn a_variable_not_given_is_an_error_never_a_blank() {
    let cases = [
        ("sms", "Resolved: {{ resolution }}"),
        ("email", "Resolved: {{ resolution }}"),
        ("sms", "{{ resolution | upper }}"),
        ("sms", "{{ resolution | plural('a', 'b') }}"),
        ("sms", "{% if case_reference %}{{ resolution }}{% endif %}"),
    ];
    for (channel, body) in cases {
        let t = resolved(channel, body);
        let err = render_one(&t, &[("case_reference", "C1")]).unwrap_err();
        assert!(
            err.contains(&format!("complaint_resolved/en/{channel}/")),
            "{body}: {err}"
        );
        assert!(err.contains("not given: resolution"), "{body}: {err}");
    }
    // And in the subject.
    let t = resolved("sms", "ok");
    let err = render_one(&t, &[]).unwrap_err();
    assert!(err.contains("/subject"), "{err}");
    assert!(err.contains("not given: case_reference"), "{err}");
}

/// A test-only kind carrying trusted HTML (e.g. a report built by another service).
fn report(channel: &str, subject: &str, body: &str) -> Result<Templates, (String, String)> {
    let mut s = settings(
        &[("staff_kpi_alert", &["kpi", "report_html"])],
        vec![item("staff_kpi_alert", "en", channel, subject, body)],
    );
    s.html_variables
        .insert("staff_kpi_alert".into(), vec!["report_html".into()]);
    Templates::load(&s)
}

#[test]
fn trusted_html_is_declared_per_kind_and_only_goes_into_an_email_body() {
    let t = report(
        "email",
        "{{ kpi }} report",
        "<p>Dear {{ recipient_name }}, {{ kpi }}:</p>\n{{ report_html }}",
    )
    .unwrap();
    let tpl = t.all().next().unwrap();
    assert!(tpl.html_only());
    assert!(t.is_html(MessageKind::StaffKpiAlert, "report_html"));
    assert!(!t.is_html(MessageKind::StaffKpiAlert, "kpi"));
    let report_html = "<table><tr><td>NPS</td><td>41</td></tr></table>";
    let r = t
        .render(
            tpl,
            &values(&[
                ("recipient_name", "Wang"),
                ("kpi", "<b>NPS</b>"),
                ("report_html", report_html),
            ]),
        )
        .unwrap();
    assert_eq!(r.subject, "<b>NPS</b> report");
    assert_eq!(r.body, "");
    assert_eq!(
        r.html.unwrap(),
        format!("<p>Dear Wang, &lt;b&gt;NPS&lt;&#x2f;b&gt;:</p>\n{report_html}")
    );

    let refused = [
        (
            report("sms", "", "{{ report_html }}"),
            "only an email body may",
        ),
        (
            report("email", "{{ report_html }}", "x"),
            "in its subject: only an email body may",
        ),
    ];
    for (result, why) in refused {
        let (key, err) = result.unwrap_err();
        assert!(key.starts_with("templates.items[0]"), "{key}");
        assert!(err.contains("`report_html`") && err.contains(why), "{err}");
    }
    let mut s = settings(&[("staff_kpi_alert", &["kpi"])], vec![]);
    s.html_variables
        .insert("staff_kpi_alert".into(), vec!["report_html".into()]);
    let (key, err) = Templates::load(&s).unwrap_err();
    assert_eq!(key, "templates.html_variables.staff_kpi_alert");
    assert!(err.contains("`report_html`"), "{err}");

    // The same variable not declared html is escaped like any other.
    let plain = Templates::load(&settings(
        &[("staff_kpi_alert", &["kpi", "report_html"])],
        vec![item(
            "staff_kpi_alert",
            "en",
            "email",
            "",
            "{{ report_html }}",
        )],
    ))
    .unwrap();
    let r = render_one(&plain, &[("report_html", report_html)]).unwrap();
    assert_eq!(r.body, report_html);
    assert!(r.html.unwrap().contains("&lt;table&gt;"));
}

#[test]
fn variables_are_listed_sorted_from_subject_and_body() {
    let t = resolved(
        "email",
        "{{ recipient_name }}{% if resolution %}{{ resolution }}{% endif %}",
    );
    assert_eq!(
        t.all().next().unwrap().variables,
        ["case_reference", "recipient_name", "resolution"]
    );
}

#[test]
fn languages_normalise() {
    assert_eq!(normalise_language("zh-Hant-HK"), "zh-TW");
    assert_eq!(normalise_language("zh"), "zh-CN");
    assert_eq!(normalise_language("en-GB"), "en");
}

#[test]
fn the_review_reply_reminder_names_the_site_deadline_and_review_in_each_language() {
    let mut layers = crate::default_layers().to_vec();
    layers.push(guestloop_testkit::TEST_CHAIN_TOML);
    let s: crate::Settings = guestloop_config::load_offline(&layers).unwrap();
    let t = Templates::load(&s.templates).unwrap();
    let v = values(&[
        ("recipient_name", "Li"),
        ("property_name", "Bund"),
        ("site", "Trip.com"),
        ("due_time", "2026-12-06 18:00:00 CST"),
        ("feedback_id", "f-42"),
    ]);
    // (language, channel, words the text must hold)
    let cases = [
        (
            "en",
            ContactChannel::Email,
            &["Trip.com review", "2026-12-06 18:00:00 CST", "f-42"][..],
        ),
        ("en", ContactChannel::Sms, &["Trip.com", "f-42"][..]),
        (
            "zh-CN",
            ContactChannel::Email,
            &["Trip.com", "点评", "f-42"][..],
        ),
        ("zh-CN", ContactChannel::Sms, &["Trip.com", "f-42"][..]),
        (
            "zh-TW",
            ContactChannel::Email,
            &["Trip.com", "評論", "f-42"][..],
        ),
        ("zh-TW", ContactChannel::Sms, &["Trip.com", "f-42"][..]),
    ];
    for (language, channel, words) in cases {
        let tpl = t
            .exact(MessageKind::StaffReviewReplyDue, language, channel)
            .unwrap_or_else(|| panic!("{language} {channel:?}"));
        let out = t.render(tpl, &v).unwrap();
        for w in words {
            assert!(
                out.body.contains(w),
                "{language} {channel:?}: {w} in {}",
                out.body
            );
        }
        if channel == ContactChannel::Email {
            assert!(out.subject.contains("Bund"), "{}", out.subject);
        }
    }
    // The reminder's variables are all required: one missing is an error, never a blank.
    let tpl = t
        .exact(
            MessageKind::StaffReviewReplyDue,
            "en",
            ContactChannel::Email,
        )
        .unwrap();
    let mut missing = v.clone();
    missing.remove("due_time");
    assert!(t.render(tpl, &missing).is_err());
}
