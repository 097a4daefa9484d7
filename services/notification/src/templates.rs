//! Message templates from configuration: per kind, language (zh-CN, zh-TW, en) and channel,
//! written in the Jinja syntax of [minijinja](https://docs.rs/minijinja): `{{ variable }}`,
//! `{% if variable %}…{% else %}…{% endif %}`, filters such as `{{ nights | plural("night",
//! "nights") }}`. Every template is compiled once, when the configuration loads, into one
//! [`minijinja::Environment`] held by [`Templates`]; a template that does not compile is
//! refused then, naming `templates.items[i] (kind/language/channel)`, the part and the line.
//!
//! Each kind declares its variables (`[templates.kinds]`); a template that uses one its kind
//! does not declare (besides the built-ins `recipient_name` and `property_name`) is refused
//! at load too, found with minijinja's `undeclared_variables`. Variables are text: `a.b` is
//! refused, and so is a global function (`range()`, …), which is no declared variable. A
//! filter or test the environment lacks (`| uper`) is refused at load as well (minijinja
//! would only find out when rendering).
//!
//! Rendering is strict about what is missing (`UndefinedBehavior::SemiStrict`): printing a
//! variable the caller did not give, or passing it to a filter, is an error — never a blank in
//! a guest's inbox — while `{% if variable %}` is false for it, so a template can make a
//! variable optional.
//!
//! Escaping by output, chosen by the compiled template's name (the auto-escape callback):
//! the subject and every non-email body are plain text, rendered as given; an email body is
//! compiled a second time as the HTML part (`…/body.html`): its own text HTML-escaped at load
//! ([`html_source`]), every variable HTML-escaped when rendered (autoescape), wrapped in a
//! minimal document that keeps its line breaks. An email goes as multipart/alternative:
//! text/plain (the plain rendering) and text/html. The `safe` filter is removed and `safe` or
//! `{% autoescape %}` in a template is refused at load: a template cannot let a guest's words
//! through unescaped.
//!
//! Trusted HTML: a kind may list variables in `[templates.html_variables]` (each also
//! declared in `[templates.kinds]`) whose values are pre-rendered HTML from a trusted
//! service (e.g. a report). Only these are inserted unescaped, and only in an email body (used
//! in a subject or on another channel, the template is refused at load). A body that uses one
//! is HTML source itself (its own text is not escaped; its other variables are) and is sent
//! as HTML only, as rendered (no wrapper, no text/plain part).
//!
//! Plural rules: the `plural` filter picks a form by the CLDR plural category of a count in
//! the template's language: en has `one` (an integer 1 without decimals) and `other`; zh-CN and
//! zh-TW have only `other`. `{{ n | plural("night", "nights") }}` gives the forms as (one,
//! other), `plural("晚")` gives `other` alone, `plural(one="…", other="…")` names them; a form
//! the language needs but the template does not give falls back to `other`. A value that is not
//! a number takes `other`; an undefined one is an error.

use guestloop_proto::common::v1::ContactChannel;
use guestloop_proto::notification::v1::MessageKind;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The built-in template layer (`[templates]`), under any file or environment override.
pub const DEFAULT_TEMPLATES_TOML: &str = include_str!("default_templates.toml");

/// The languages templates are written in.
pub const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];

/// Variables every template may use: filled at send time from guest-profile, the staff
/// directory or the chain directory, never by the caller.
pub const BUILTIN_VARIABLES: [&str; 2] = ["recipient_name", "property_name"];

/// `[templates]` as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateSettings {
    /// Kind (snake case, e.g. `satisfaction_survey`) → the variables its templates may use.
    pub kinds: BTreeMap<String, Vec<String>>,
    /// Kind → those of its declared variables whose values are trusted, pre-rendered HTML,
    /// inserted unescaped into an email's HTML body (and allowed nowhere else).
    #[serde(default)]
    pub html_variables: BTreeMap<String, Vec<String>>,
    pub items: Vec<TemplateItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateItem {
    pub kind: String,
    pub language: String,
    pub channel: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
    #[serde(default = "one")]
    pub version: i32,
    #[serde(default)]
    pub provider_template_id: String,
}

fn one() -> i32 {
    1
}

/// A checked template. `subject` and `body` are its source, as configured.
#[derive(Debug, Clone)]
pub struct Template {
    pub kind: MessageKind,
    pub language: String,
    pub channel: ContactChannel,
    pub subject: String,
    pub body: String,
    /// Every variable the subject and body use, sorted.
    pub variables: Vec<String>,
    pub provider_template_id: String,
    pub version: i32,
    /// The name its parts are compiled under in the environment (`kind/language/channel`).
    name: String,
    /// The body uses a trusted-HTML variable: there is no plain-text body.
    html_only: bool,
}

impl Template {
    /// The body uses a trusted-HTML variable: an email sent as HTML only.
    pub fn html_only(&self) -> bool {
        self.html_only
    }
}

/// A template rendered for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Plain text.
    pub subject: String,
    /// The plain-text body (every channel; empty for an email body that is HTML only).
    pub body: String,
    /// Email only: the HTML body, every variable escaped except the kind's trusted ones.
    pub html: Option<String>,
}

/// Every template, compiled and checked, and every kind's declared variables.
#[derive(Debug, Clone)]
pub struct Templates {
    declared: BTreeMap<i32, BTreeSet<String>>,
    html: BTreeMap<i32, BTreeSet<String>>,
    by_key: BTreeMap<(i32, String, i32), Template>,
    env: Environment<'static>,
}

pub fn kind_name(kind: MessageKind) -> String {
    kind.as_str_name()
        .trim_start_matches("MESSAGE_KIND_")
        .to_ascii_lowercase()
}

pub fn parse_kind(name: &str) -> Option<MessageKind> {
    MessageKind::from_str_name(&format!("MESSAGE_KIND_{}", name.to_ascii_uppercase()))
        .filter(|k| *k != MessageKind::Unspecified)
}

pub fn parse_channel(name: &str) -> Option<ContactChannel> {
    ContactChannel::from_str_name(&format!("CONTACT_CHANNEL_{}", name.to_ascii_uppercase()))
        .filter(|c| *c != ContactChannel::Unspecified)
}

const SUBJECT: &str = "subject";
const BODY_TEXT: &str = "body.txt";
const BODY_HTML: &str = "body.html";

/// The environment every template is compiled into: HTML autoescape for `*.html` names
/// only, strict undefined values (truthiness excepted), no `safe`, the `plural` filter.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // A `{% if %}` on a line of its own leaves no empty line behind.
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.remove_filter("safe");
    env.add_filter("plural", plural);
    env
}

/// The CLDR plural categories the three template languages use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluralCategory {
    One,
    Other,
}

/// The CLDR cardinal plural category of `n` (its decimal text) in `language`. en: `one` when
/// the integer digits are 1 and there are no visible fraction digits ("1", not "1.0"), else
/// `other`; zh-CN, zh-TW and any other language: `other`. Text that is not a decimal number
/// is `other`.
pub fn plural_category(language: &str, n: &str) -> PluralCategory {
    if language != "en" {
        return PluralCategory::Other;
    }
    let n = n.trim();
    let n = n.strip_prefix(['-', '+']).unwrap_or(n);
    let (int, fraction) = n.split_once('.').unwrap_or((n, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty()
        || !digits(int)
        || !digits(fraction)
        || (n.contains('.') && fraction.is_empty())
    {
        return PluralCategory::Other;
    }
    if fraction.is_empty() && int.trim_start_matches('0') == "1" {
        PluralCategory::One
    } else {
        PluralCategory::Other
    }
}

/// The language of a compiled template, from its name (`kind/language/channel/part`).
fn language_of(name: &str) -> &str {
    name.split('/').nth(1).unwrap_or("")
}

/// `n | plural(one, other)`, `n | plural(other)`, `n | plural(one=…, other=…)`.
fn plural(
    state: &minijinja::State,
    n: Value,
    first: Option<String>,
    second: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    if n.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "plural: the count is undefined",
        ));
    }
    let (mut one, mut other) = match (first, second) {
        (Some(a), Some(b)) => (Some(a), Some(b)),
        (a, None) => (None, a),
        (None, b) => (None, b),
    };
    if let Some(o) = kwargs.get::<Option<String>>("one")? {
        one = Some(o);
    }
    if let Some(o) = kwargs.get::<Option<String>>("other")? {
        other = Some(o);
    }
    kwargs.assert_all_used()?;
    let Some(other) = other else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "plural needs the `other` form",
        ));
    };
    let text = match n.kind() {
        ValueKind::String => n.as_str().unwrap_or_default().to_string(),
        ValueKind::Number => n.to_string(),
        _ => String::new(),
    };
    Ok(match plural_category(language_of(state.name()), &text) {
        PluralCategory::One => one.unwrap_or(other),
        PluralCategory::Other => other,
    })
}

/// A piece of template source: text, output as it is, or a tag (`{{ }}`, `{% %}`, `{# #}`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Segment<'a> {
    Text(&'a str),
    Tag(&'a str),
}

/// `source` cut into text and tags, as the compiler reads it (default delimiters); the
/// content of a `{% raw %}` block is text. An unclosed tag runs to the end (the compiler
/// refuses it).
fn segments(source: &str) -> Vec<Segment<'_>> {
    /// Where the tag opened at the start of `s` ends (after its closer), skipping quoted
    /// strings inside `{{ }}` and `{% %}`.
    fn tag_end(s: &str) -> Option<usize> {
        let closer = match &s[..2] {
            "{{" => "}}",
            "{%" => "%}",
            _ => return s.find("#}").map(|i| i + 2),
        };
        let bytes = s.as_bytes();
        let mut i = 2;
        let mut quote: Option<u8> = None;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(_) if b == b'\\' => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if bytes[i..].starts_with(closer.as_bytes()) => return Some(i + 2),
                None => {}
            }
            i += 1;
        }
        None
    }
    let mut out = Vec::new();
    let mut rest = source;
    let mut raw = false;
    while !rest.is_empty() {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|o| rest.find(o))
            .min()
            .unwrap_or(rest.len());
        if next > 0 {
            out.push(Segment::Text(&rest[..next]));
            rest = &rest[next..];
            continue;
        }
        let end = tag_end(rest).unwrap_or(rest.len());
        let tag = &rest[..end];
        if raw && block_word(tag) != Some("endraw") {
            out.push(Segment::Text(&rest[..2]));
            rest = &rest[2..];
            continue;
        }
        raw = !raw && block_word(tag) == Some("raw");
        out.push(Segment::Tag(tag));
        rest = &rest[end..];
    }
    out
}

/// The first word of a `{% %}` tag (`if`, `raw`, `autoescape`, …).
fn block_word(tag: &str) -> Option<&str> {
    let inner = tag.strip_prefix("{%")?;
    let inner = inner.trim_start_matches(['-', '+']).trim_start();
    inner
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
}

/// A token of a tag, quoted strings left out: a name or one punctuation character.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    Name(&'a str),
    Punct(char),
}

fn tokens(tag: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut start: Option<usize> = None;
    let mut escaped = false;
    for (i, c) in tag.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let name = c.is_ascii_alphanumeric() || c == '_';
        if let (Some(s), false) = (start, name) {
            out.push(Token::Name(&tag[s..i]));
            start = None;
        }
        if name {
            start.get_or_insert(i);
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        } else if !c.is_whitespace() {
            out.push(Token::Punct(c));
        }
    }
    if let Some(s) = start {
        out.push(Token::Name(&tag[s..]));
    }
    out
}

/// The filters (`x | name`, `{% filter name %}`) and tests (`x is [not] name`) a template
/// names: minijinja looks them up only when rendering, so a typo is caught at load here.
fn filters_and_tests(source: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut filters = BTreeSet::new();
    let mut tests = BTreeSet::new();
    for s in segments(source) {
        let Segment::Tag(t) = s else { continue };
        if t.starts_with("{#") {
            continue;
        }
        let tokens = tokens(t);
        for (i, w) in tokens.windows(2).enumerate() {
            match w {
                [Token::Punct('|'), Token::Name(n)] => {
                    filters.insert(n.to_string());
                }
                [Token::Name("filter"), Token::Name(n)] if block_word(t) == Some("filter") => {
                    filters.insert(n.to_string());
                }
                [Token::Name("is"), Token::Name("not")] => {
                    if let Some(Token::Name(n)) = tokens.get(i + 2) {
                        tests.insert(n.to_string());
                    }
                }
                [Token::Name("is"), Token::Name(n)] => {
                    tests.insert(n.to_string());
                }
                _ => {}
            }
        }
    }
    (filters, tests)
}

/// The first filter or test `source` names that the environment does not have.
fn unknown_filter_or_test(env: &Environment<'_>, source: &str) -> Option<String> {
    let (filters, tests) = filters_and_tests(source);
    let probe = |expr: String, unknown: ErrorKind| {
        env.render_str(&expr, ())
            .err()
            .is_some_and(|e| e.kind() == unknown)
    };
    filters
        .into_iter()
        .find(|f| probe(format!("{{{{ none | {f} }}}}"), ErrorKind::UnknownFilter))
        .map(|f| format!("filter `{f}`"))
        .or_else(|| {
            tests
                .into_iter()
                .find(|t| probe(format!("{{{{ none is {t} }}}}"), ErrorKind::UnknownTest))
                .map(|t| format!("test `{t}`"))
        })
}

/// Refuses what would print a variable unescaped in HTML: the `safe` filter (removed from
/// the environment too) and `{% autoescape %}` blocks. Trusted HTML is declared per kind
/// (`templates.html_variables`), never marked in a template.
fn escaping_bypass(source: &str) -> Option<&'static str> {
    segments(source).into_iter().find_map(|s| match s {
        Segment::Tag(t) if !t.starts_with("{#") => tokens(t).into_iter().find_map(|w| match w {
            Token::Name("safe") => Some("safe"),
            Token::Name("autoescape") => Some("autoescape"),
            _ => None,
        }),
        _ => None,
    })
}

/// An email body's source as the HTML part's source: its own text HTML-escaped, the tags as
/// they are, so that the autoescaped rendering is HTML whatever the text says.
pub fn html_source(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 16);
    for s in segments(body) {
        match s {
            Segment::Tag(t) => out.push_str(t),
            Segment::Text(t) => {
                for ch in t.chars() {
                    match ch {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// The HTML part around a rendered body that is not HTML itself: a minimal document whose
/// text keeps its line breaks.
fn html_document(language: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{language}\">\n<head><meta charset=\"utf-8\"></head>\n\
         <body><div style=\"white-space: pre-wrap\">{body}</div></body>\n</html>\n"
    )
}

/// A compile error as a short sentence: what is wrong and on which line.
fn compile_error(part: &str, e: &Error) -> String {
    let line = e
        .line()
        .map(|l| format!(" on line {l}"))
        .unwrap_or_default();
    match e.detail() {
        Some(d) => format!("{part} does not compile{line}: {} ({d})", e.kind()),
        None => format!("{part} does not compile{line}: {}", e.kind()),
    }
}

fn is_variable_name(v: &str) -> bool {
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Templates {
    /// Compiles and checks every template; the error names the offending template's key.
    pub fn load(settings: &TemplateSettings) -> Result<Self, (String, String)> {
        let mut declared = BTreeMap::new();
        for (name, vars) in &settings.kinds {
            let key = format!("templates.kinds.{name}");
            let kind = parse_kind(name).ok_or((key.clone(), "is not a message kind".into()))?;
            let mut set: BTreeSet<String> =
                BUILTIN_VARIABLES.iter().map(|s| s.to_string()).collect();
            for v in vars {
                if !is_variable_name(v) {
                    return Err((key, format!("`{v}` is not a variable name")));
                }
                set.insert(v.clone());
            }
            declared.insert(kind as i32, set);
        }
        let mut html = BTreeMap::new();
        for (name, vars) in &settings.html_variables {
            let key = format!("templates.html_variables.{name}");
            let kind = parse_kind(name).ok_or((key.clone(), "is not a message kind".into()))?;
            let kind_vars = declared.get(&(kind as i32));
            let mut set = BTreeSet::new();
            for v in vars {
                if BUILTIN_VARIABLES.contains(&v.as_str())
                    || !kind_vars.is_some_and(|d: &BTreeSet<String>| d.contains(v))
                {
                    return Err((
                        key,
                        format!("`{v}` is not a variable templates.kinds.{name} declares"),
                    ));
                }
                set.insert(v.clone());
            }
            html.insert(kind as i32, set);
        }
        let mut env = environment();
        let mut by_key = BTreeMap::new();
        for (i, item) in settings.items.iter().enumerate() {
            let key = format!(
                "templates.items[{i}] ({}/{}/{})",
                item.kind, item.language, item.channel
            );
            let kind = parse_kind(&item.kind).ok_or((key.clone(), "unknown kind".into()))?;
            if !LANGUAGES.contains(&item.language.as_str()) {
                return Err((key, "language must be zh-CN, zh-TW or en".into()));
            }
            let channel =
                parse_channel(&item.channel).ok_or((key.clone(), "unknown channel".into()))?;
            let vars = declared.get(&(kind as i32)).ok_or((
                key.clone(),
                "its kind declares no variables in templates.kinds".into(),
            ))?;
            let map_key = (kind as i32, item.language.clone(), channel as i32);
            if by_key.contains_key(&map_key) {
                return Err((key, "is defined twice".into()));
            }
            let name = format!(
                "{}/{}/{}",
                kind_name(kind),
                item.language,
                channel_name(channel)
            );
            for (part, source) in [("subject", &item.subject), ("body", &item.body)] {
                if let Some(what) = escaping_bypass(source) {
                    return Err((
                        key,
                        format!(
                            "{part} uses `{what}`: variables are always escaped in HTML; \
                             trusted HTML is declared in templates.html_variables"
                        ),
                    ));
                }
            }
            for (part, source) in [("subject", &item.subject), ("body", &item.body)] {
                if let Some(what) = unknown_filter_or_test(&env, source) {
                    return Err((key, format!("{part} uses the unknown {what}")));
                }
            }
            let mut compile = |part: &str, label: &str, source: String| {
                let full = format!("{name}/{part}");
                env.add_template_owned(full.clone(), source)
                    .map_err(|e| (key.clone(), compile_error(label, &e)))?;
                let used = env
                    .get_template(&full)
                    .map(|t| t.undeclared_variables(true))
                    .unwrap_or_default();
                Ok::<_, (String, String)>(used.into_iter().collect::<BTreeSet<String>>())
            };
            let in_subject = compile(SUBJECT, "subject", item.subject.clone())?;
            let in_body = compile(BODY_TEXT, "body", item.body.clone())?;
            let email = channel == ContactChannel::Email;
            let trusted = html.get(&(kind as i32));
            let is_html = |v: &&String| trusted.is_some_and(|t| t.contains(*v));
            let html_only = in_body.iter().any(|v| is_html(&v));
            if email {
                // A body around trusted HTML is HTML itself; any other is text.
                let source = if html_only {
                    item.body.clone()
                } else {
                    html_source(&item.body)
                };
                compile(BODY_HTML, "body", source)?;
            }
            let used: BTreeSet<String> = in_subject.union(&in_body).cloned().collect();
            if let Some(bad) = used.iter().find(|v| v.contains('.')) {
                return Err((
                    key,
                    format!("uses `{bad}`, but variables are text and have no attributes"),
                ));
            }
            if let Some(bad) = used.iter().find(|v| !vars.contains(*v)) {
                return Err((
                    key,
                    format!("uses the variable `{bad}`, which its kind does not declare"),
                ));
            }
            if let Some(bad) = in_subject.iter().find(is_html) {
                return Err((
                    key,
                    format!(
                        "uses the html variable `{bad}` in its subject: only an email body may"
                    ),
                ));
            }
            if let Some(bad) = in_body.iter().find(is_html)
                && !email
            {
                return Err((
                    key,
                    format!("uses the html variable `{bad}`: only an email body may"),
                ));
            }
            if html_only {
                env.remove_template(&format!("{name}/{BODY_TEXT}"));
            }
            if item.body.trim().is_empty() {
                return Err((key, "body is empty".into()));
            }
            let t = Template {
                kind,
                language: item.language.clone(),
                channel,
                subject: item.subject.clone(),
                body: item.body.clone(),
                variables: used.into_iter().collect(),
                provider_template_id: item.provider_template_id.clone(),
                version: item.version,
                name,
                html_only,
            };
            by_key.insert(map_key, t);
        }
        Ok(Self {
            declared,
            html,
            by_key,
            env,
        })
    }

    /// Renders `template` with `values` (variable → text). An error (a variable the template
    /// prints but `values` lacks, a filter that fails) names the template and what is
    /// missing; nothing is ever rendered blank.
    pub fn render(
        &self,
        template: &Template,
        values: &BTreeMap<String, String>,
    ) -> Result<Rendered, String> {
        let trusted = self.html.get(&(template.kind as i32));
        let context = Value::from_iter(values.iter().map(|(k, v)| {
            let value = if trusted.is_some_and(|t| t.contains(k)) {
                Value::from_safe_string(v.clone())
            } else {
                Value::from(v.as_str())
            };
            (k.clone(), value)
        }));
        let part = |part: &str| -> Result<String, String> {
            let name = format!("{}/{part}", template.name);
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&context))
                .map_err(|e| {
                    let missing: Vec<&str> = template
                        .variables
                        .iter()
                        .filter(|v| !values.contains_key(*v))
                        .map(String::as_str)
                        .collect();
                    let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
                    let detail = e.detail().map(|d| format!(" ({d})")).unwrap_or_default();
                    let missing = if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; not given: {}", missing.join(", "))
                    };
                    format!("{name}{line}: {}{detail}{missing}", e.kind())
                })
        };
        let subject = part(SUBJECT)?;
        let body = if template.html_only {
            String::new()
        } else {
            part(BODY_TEXT)?
        };
        let html = if template.channel == ContactChannel::Email {
            let h = part(BODY_HTML)?;
            Some(if template.html_only {
                h
            } else {
                html_document(&template.language, &h)
            })
        } else {
            None
        };
        Ok(Rendered {
            subject,
            body,
            html,
        })
    }

    /// The variables a caller may give for `kind` (built-ins excluded).
    pub fn declared(&self, kind: MessageKind) -> Option<impl Iterator<Item = &String>> {
        self.declared.get(&(kind as i32)).map(|s| {
            s.iter()
                .filter(|v| !BUILTIN_VARIABLES.contains(&v.as_str()))
        })
    }

    pub fn is_declared(&self, kind: MessageKind, name: &str) -> bool {
        self.declared
            .get(&(kind as i32))
            .is_some_and(|s| s.contains(name) && !BUILTIN_VARIABLES.contains(&name))
    }

    /// Whether `name` is one of `kind`'s trusted-HTML variables.
    pub fn is_html(&self, kind: MessageKind, name: &str) -> bool {
        self.html
            .get(&(kind as i32))
            .is_some_and(|s| s.contains(name))
    }

    pub fn all(&self) -> impl Iterator<Item = &Template> {
        self.by_key.values()
    }

    pub fn exact(
        &self,
        kind: MessageKind,
        language: &str,
        channel: ContactChannel,
    ) -> Option<&Template> {
        self.by_key
            .get(&(kind as i32, language.to_string(), channel as i32))
    }

    /// The template for the first language of `wanted` (then "en") that has one.
    pub fn pick(
        &self,
        kind: MessageKind,
        channel: ContactChannel,
        wanted: &[&str],
    ) -> Option<&Template> {
        wanted
            .iter()
            .copied()
            .chain(std::iter::once("en"))
            .filter(|l| !l.is_empty())
            .find_map(|l| self.exact(kind, &normalise_language(l), channel))
    }

    /// Whether any template exists for the kind on the channel.
    pub fn has_channel(&self, kind: MessageKind, channel: ContactChannel) -> bool {
        self.by_key
            .keys()
            .any(|(k, _, c)| *k == kind as i32 && *c == channel as i32)
    }
}

fn channel_name(channel: ContactChannel) -> String {
    channel
        .as_str_name()
        .trim_start_matches("CONTACT_CHANNEL_")
        .to_ascii_lowercase()
}

/// BCP 47 tags mapped onto the three template languages ("zh-Hans-CN" → "zh-CN").
pub fn normalise_language(tag: &str) -> String {
    let t = tag.trim().to_ascii_lowercase();
    if t.starts_with("zh") {
        if t.contains("tw") || t.contains("hk") || t.contains("mo") || t.contains("hant") {
            return "zh-TW".into();
        }
        return "zh-CN".into();
    }
    if t.starts_with("en") {
        return "en".into();
    }
    tag.trim().to_string()
}

#[cfg(test)]
mod tests;
