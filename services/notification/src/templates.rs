//! Message templates from configuration: per kind, language (zh-CN, zh-TW, en) and channel,
//! with `{{variable}}` placeholders. Each kind declares its variables; a template that uses
//! one its kind does not declare is refused when the configuration loads (never rendered as
//! a blank in a guest's inbox).

use guestloop_proto::common::v1::ContactChannel;
use guestloop_proto::notification::v1::MessageKind;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The built-in template layer (`[templates]`), under any file or environment override.
pub const DEFAULT_TEMPLATES_TOML: &str = include_str!("default_templates.toml");

/// Variables every template may use: filled at send time from guest-profile, the staff
/// directory or the chain directory, never by the caller.
/// The languages templates are written in.
pub const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];

pub const BUILTIN_VARIABLES: [&str; 2] = ["recipient_name", "property_name"];

/// `[templates]` as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct TemplateSettings {
    /// Kind (snake case, e.g. `satisfaction_survey`) → the variables its templates may use.
    pub kinds: BTreeMap<String, Vec<String>>,
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

/// A checked template.
#[derive(Debug, Clone)]
pub struct Template {
    pub kind: MessageKind,
    pub language: String,
    pub channel: ContactChannel,
    pub subject: String,
    pub body: String,
    pub variables: Vec<String>,
    pub provider_template_id: String,
    pub version: i32,
}

/// Every template, checked, and every kind's declared variables.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    declared: BTreeMap<i32, BTreeSet<String>>,
    by_key: BTreeMap<(i32, String, i32), Template>,
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

/// The `{{name}}` placeholders in `text`, in order of first use; `Err` on a malformed one.
pub fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has an unclosed `{{`".to_string())?;
        let name = after[..end].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("has a malformed placeholder `{{{{{name}}}}}`"));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Replaces each `{{name}}` with its value; names without a value stay as `{{name}}`.
pub fn render(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => {
                out.push_str("{{");
                out.push_str(name);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

impl Templates {
    /// Checks every template; the error names the offending template's key.
    pub fn load(settings: &TemplateSettings) -> Result<Self, (String, String)> {
        let mut declared = BTreeMap::new();
        for (name, vars) in &settings.kinds {
            let key = format!("templates.kinds.{name}");
            let kind = parse_kind(name).ok_or((key.clone(), "is not a message kind".into()))?;
            let mut set: BTreeSet<String> =
                BUILTIN_VARIABLES.iter().map(|s| s.to_string()).collect();
            for v in vars {
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err((key, format!("`{v}` is not a variable name")));
                }
                set.insert(v.clone());
            }
            declared.insert(kind as i32, set);
        }
        let mut by_key = BTreeMap::new();
        for (i, item) in settings.items.iter().enumerate() {
            let key = format!(
                "templates.items[{i}] ({}/{}/{})",
                item.kind, item.language, item.channel
            );
            let kind = parse_kind(&item.kind).ok_or((key.clone(), "unknown kind".into()))?;
            if !crate::templates::LANGUAGES.contains(&item.language.as_str()) {
                return Err((key, "language must be zh-CN, zh-TW or en".into()));
            }
            let channel =
                parse_channel(&item.channel).ok_or((key.clone(), "unknown channel".into()))?;
            let vars = declared.get(&(kind as i32)).ok_or((
                key.clone(),
                "its kind declares no variables in templates.kinds".into(),
            ))?;
            let mut used =
                placeholders(&item.subject).map_err(|e| (key.clone(), format!("subject {e}")))?;
            for v in placeholders(&item.body).map_err(|e| (key.clone(), format!("body {e}")))? {
                if !used.contains(&v) {
                    used.push(v);
                }
            }
            if let Some(bad) = used.iter().find(|v| !vars.contains(*v)) {
                return Err((
                    key,
                    format!("uses the variable `{bad}`, which its kind does not declare"),
                ));
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
                variables: used,
                provider_template_id: item.provider_template_id.clone(),
                version: item.version,
            };
            if by_key
                .insert((kind as i32, item.language.clone(), channel as i32), t)
                .is_some()
            {
                return Err((key, "is defined twice".into()));
            }
        }
        Ok(Self { declared, by_key })
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
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_render() {
        assert_eq!(
            placeholders("Dear {{recipient_name}}, {{ case_reference }} {{recipient_name}}")
                .unwrap(),
            ["recipient_name", "case_reference"]
        );
        assert!(placeholders("{{oops").is_err());
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), "1".to_string());
        assert_eq!(render("x{{a}}y{{b}}", &v), "x1y{{b}}");
    }

    #[test]
    fn languages_normalise() {
        assert_eq!(normalise_language("zh-Hant-HK"), "zh-TW");
        assert_eq!(normalise_language("zh"), "zh-CN");
        assert_eq!(normalise_language("en-GB"), "en");
    }
}
