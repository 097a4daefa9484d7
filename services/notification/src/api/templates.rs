//! ListTemplates and PreviewTemplate: the templates loaded from configuration. A preview
//! renders the plain-text body (an HTML-only email body: its HTML), a variable not given
//! shown as `{{name}}`.

use crate::error::{NotificationError, Result};
use crate::state::{Caller, State};
use crate::templates::{BUILTIN_VARIABLES, normalise_language};
use guestloop_errors::FieldViolations;
use guestloop_proto::common::v1::ContactChannel;
use guestloop_proto::notification::v1::{self as pb, MessageKind};
use std::collections::BTreeMap;

pub async fn list(
    state: &State,
    _caller: &Caller,
    req: pb::ListTemplatesRequest,
) -> Result<pb::ListTemplatesResponse> {
    let language = (!req.language.trim().is_empty()).then(|| normalise_language(&req.language));
    let templates = state
        .templates
        .all()
        .filter(|t| req.kind == 0 || t.kind as i32 == req.kind)
        .filter(|t| req.channel == 0 || t.channel as i32 == req.channel)
        .filter(|t| language.as_ref().is_none_or(|l| &t.language == l))
        .map(|t| pb::Template {
            kind: t.kind as i32,
            language: t.language.clone(),
            channel: t.channel as i32,
            subject: t.subject.clone(),
            body: t.body.clone(),
            variables: t.variables.clone(),
            provider_template_id: t.provider_template_id.clone(),
            version: t.version,
        })
        .collect();
    Ok(pb::ListTemplatesResponse { templates })
}

pub async fn preview(
    state: &State,
    caller: &Caller,
    req: pb::PreviewTemplateRequest,
) -> Result<pb::PreviewTemplateResponse> {
    let mut v = FieldViolations::new();
    let kind = match MessageKind::try_from(req.kind) {
        Ok(MessageKind::Unspecified) | Err(_) => {
            v.add("kind", "is required: a known message kind");
            None
        }
        Ok(k) => Some(k),
    };
    let channel = match ContactChannel::try_from(req.channel) {
        Ok(ContactChannel::Unspecified) | Ok(ContactChannel::PhoneCall) | Err(_) => {
            v.add("channel", "must be email, sms, wechat or app_push");
            None
        }
        Ok(c) => Some(c),
    };
    let property = if req.property_id.trim().is_empty() {
        None
    } else {
        match state.chain.property(req.property_id.trim()) {
            Some(p) if caller.sees(state, &p.id) => Some(p),
            Some(_) => return Err(NotificationError::NotFound("property")),
            None => {
                v.add("property_id", "is not a property of the chain");
                None
            }
        }
    };
    let requested = normalise_language(&req.language);
    if !req.language.trim().is_empty() && !crate::templates::LANGUAGES.contains(&requested.as_str())
    {
        v.add("language", "must be a zh-CN, zh-TW or en language tag");
    }
    v.into_result(|| ())?;
    let (Some(kind), Some(channel)) = (kind, channel) else {
        return Err(NotificationError::NotFound("template"));
    };
    let default_language = property.map(|p| p.default_language.as_str()).unwrap_or("");
    let template = state
        .templates
        .pick(kind, channel, &[requested.as_str(), default_language])
        .ok_or(NotificationError::NotFound("template"))?;
    let first_choice = [requested.as_str(), default_language, "en"]
        .into_iter()
        .find(|l| !l.is_empty())
        .map(normalise_language)
        .unwrap_or_default();
    let declared: Vec<String> = state
        .templates
        .declared(kind)
        .map(|d| d.cloned().collect())
        .unwrap_or_default();
    let mut values: BTreeMap<String, String> = req.variables.clone().into_iter().collect();
    if let Some(p) = property {
        values
            .entry("property_name".into())
            .or_insert_with(|| p.name.clone());
    }
    let missing = template
        .variables
        .iter()
        .filter(|n| !values.contains_key(*n))
        .cloned()
        .collect();
    let unknown = req
        .variables
        .keys()
        .filter(|n| !declared.contains(n) && !BUILTIN_VARIABLES.contains(&n.as_str()))
        .cloned()
        .collect();
    // A variable not given shows as `{{name}}` (sending would refuse to render it).
    let mut shown = values.clone();
    for n in &template.variables {
        shown
            .entry(n.clone())
            .or_insert_with(|| format!("{{{{{n}}}}}"));
    }
    let rendered = state.templates.render(template, &shown).map_err(|e| {
        NotificationError::FailedPrecondition(format!("the template does not render: {e}"))
    })?;
    Ok(pb::PreviewTemplateResponse {
        subject: rendered.subject,
        // The plain text; an email body that is HTML only, its HTML.
        body: if template.html_only() {
            rendered.html.unwrap_or_default()
        } else {
            rendered.body
        },
        language: template.language.clone(),
        language_fallback: template.language != first_choice,
        missing_variables: missing,
        unknown_variables: unknown,
        template_version: template.version,
    })
}
