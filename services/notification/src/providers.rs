//! Providers from configuration: email over SMTP (lettre; multipart/alternative, text/plain
//! and text/html, as templates.rs renders them) and HTTP providers (SMS, WeChat
//! template and free-form messages, app push) with URL, auth header and JSON payload per
//! provider, each behind its own token-bucket rate limit. Every attempt carries the message id
//! as the provider's idempotency key (the `Message-ID` header on email, a configurable header
//! on HTTP), so a retry after a lost answer is not a second message at a provider that honours it. On WeChat a provider is either the
//! template provider or the free-form (customer-service) one (`wechat_mode`); the window
//! decides which is used (window.rs). A send answers an outcome the worker turns into a
//! retry, a dead letter or SENT; errors carry a code and a short text, never an address.

use crate::settings::{HttpProviderSettings, ProviderSettings, SmtpSettings, WechatMode};
use crate::templates::parse_channel;
use guestloop_proto::common::v1::ContactChannel;
use lettre::message::MultiPart;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted { provider_message_id: String },
    Temporary(String),
    Permanent(String),
    Timeout(String),
    RateLimited(String),
}

/// One rendered message on its way out.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub message_id: String,
    pub to: String,
    pub subject: String,
    /// Plain text (empty for an email that is HTML only).
    pub body: String,
    /// Email: the HTML body (templates.rs escapes every variable in it but trusted ones).
    pub html: Option<String>,
    pub template_id: String,
    /// "template" or "free_form" on WeChat, else empty.
    pub wechat_mode: &'static str,
}

/// A simple token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&self) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.0) / self.rate))
        }
    }
}

#[derive(Debug)]
enum Kind {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: lettre::message::Mailbox,
    },
    Http {
        client: reqwest::Client,
        settings: HttpProviderSettings,
    },
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::Smtp { .. } => "smtp",
            Kind::Http { .. } => "http",
        }
    }
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    /// The whole send's bound. The clients' own timeouts do not cover everything: lettre's
    /// does not bound a server that accepts the connection and never greets, and one such
    /// send held the worker's whole batch (and so every other message) for a minute.
    timeout: Duration,
    pub channel: ContactChannel,
    /// On WeChat: template or free-form; every other provider is `Template`.
    pub wechat_mode: WechatMode,
    pub bucket: Bucket,
    kind: Kind,
}

#[derive(Debug, Default)]
pub struct Providers {
    all: Vec<Provider>,
}

fn smtp(s: &SmtpSettings, timeout: Duration) -> Result<Provider, String> {
    let builder = if s.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
            .map_err(|e| format!("providers.smtp: {e}"))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
    };
    let mut builder = builder.port(s.port).timeout(Some(timeout));
    if !s.username.is_empty() {
        builder = builder.credentials(Credentials::new(s.username.clone(), s.password.clone()));
    }
    let from = s
        .from
        .parse()
        .map_err(|_| "providers.smtp.from: is not an email address".to_string())?;
    Ok(Provider {
        name: "smtp".into(),
        timeout,
        channel: ContactChannel::Email,
        wechat_mode: WechatMode::Template,
        bucket: Bucket::new(s.rate_per_second, s.burst),
        kind: Kind::Smtp {
            transport: builder.build(),
            from,
        },
    })
}

impl Providers {
    pub fn build(settings: &ProviderSettings, timeout: Duration) -> Result<Self, String> {
        let mut all = Vec::new();
        if let Some(s) = &settings.smtp {
            all.push(smtp(s, timeout)?);
        }
        for (name, p) in &settings.http {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| format!("providers.http.{name}: {e}"))?;
            all.push(Provider {
                name: name.clone(),
                timeout,
                channel: parse_channel(&p.channel)
                    .ok_or_else(|| format!("providers.http.{name}.channel: unknown channel"))?,
                wechat_mode: p.wechat_mode,
                bucket: Bucket::new(p.rate_per_second, p.burst),
                kind: Kind::Http {
                    client,
                    settings: p.clone(),
                },
            });
        }
        Ok(Self { all })
    }

    /// Every configured provider.
    pub fn all(&self) -> &[Provider] {
        &self.all
    }

    /// The provider for a channel (the first configured); on WeChat the template one.
    pub fn for_channel(&self, channel: ContactChannel) -> Option<&Provider> {
        self.all
            .iter()
            .find(|p| p.channel == channel && p.wechat_mode == WechatMode::Template)
    }

    /// The WeChat free-form (customer-service) provider, if one is configured.
    pub fn wechat_free_form(&self) -> Option<&Provider> {
        self.all
            .iter()
            .find(|p| p.channel == ContactChannel::Wechat && p.wechat_mode == WechatMode::FreeForm)
    }
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1)].to_string()
}

impl Provider {
    pub async fn send(&self, e: &Envelope) -> Outcome {
        let send = async {
            match &self.kind {
                Kind::Smtp { transport, from } => send_smtp(transport, from, e).await,
                Kind::Http { client, settings } => send_http(client, settings, e).await,
            }
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Timeout(format!("{}_timeout", self.kind.label())),
        }
    }
}

async fn send_smtp(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &lettre::message::Mailbox,
    e: &Envelope,
) -> Outcome {
    let Ok(to) = e.to.parse::<lettre::message::Mailbox>() else {
        return Outcome::Permanent("invalid_address".into());
    };
    let message_id = format!("<{}@guestloop>", e.message_id);
    let builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(e.subject.clone())
        .message_id(Some(message_id.clone()));
    // text/plain and text/html as alternatives; one part when there is only one.
    let built = match &e.html {
        Some(html) if e.body.is_empty() => {
            builder.header(ContentType::TEXT_HTML).body(html.clone())
        }
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            e.body.clone(),
            html.clone(),
        )),
        None => builder.header(ContentType::TEXT_PLAIN).body(e.body.clone()),
    };
    let email = match built {
        Ok(m) => m,
        Err(_) => return Outcome::Permanent("message_build".into()),
    };
    match transport.send(email).await {
        Ok(_) => Outcome::Accepted {
            provider_message_id: message_id,
        },
        Err(err) if err.is_timeout() => Outcome::Timeout("smtp_timeout".into()),
        Err(err) if err.is_permanent() => Outcome::Permanent(format!(
            "smtp_{}",
            err.status()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "5xx".into())
        )),
        Err(err) => Outcome::Temporary(format!(
            "smtp_{}",
            err.status()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "connection".into())
        )),
    }
}

/// The provider's JSON payload with `{{to}}`, `{{subject}}`, `{{body}}`, `{{html}}`,
/// `{{template_id}}`, `{{message_id}}` and `{{wechat_mode}}` filled, JSON-escaped, in one
/// pass: a value that itself contains `{{message_id}}` (a guest's words) stays as it is.
fn payload(template: &str, e: &Envelope) -> String {
    let mut out = String::with_capacity(template.len() + e.body.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = match after[..end].trim() {
            "to" => Some(e.to.as_str()),
            "subject" => Some(e.subject.as_str()),
            "body" => Some(e.body.as_str()),
            "html" => Some(e.html.as_deref().unwrap_or_default()),
            "template_id" => Some(e.template_id.as_str()),
            "message_id" => Some(e.message_id.as_str()),
            "wechat_mode" => Some(e.wechat_mode),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&json_escape(v)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

async fn send_http(client: &reqwest::Client, s: &HttpProviderSettings, e: &Envelope) -> Outcome {
    let body = payload(&s.payload, e);
    let mut req = client
        .post(&s.url)
        .header("content-type", "application/json")
        .header(s.idempotency_header.as_str(), e.message_id.as_str())
        .body(body);
    if !s.auth_header.is_empty() {
        req = req.header(s.auth_header.as_str(), s.auth_value.as_str());
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                let id = resp
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| {
                        v.get("message_id")
                            .or_else(|| v.get("id"))
                            .and_then(|x| x.as_str().map(str::to_string))
                    })
                    .unwrap_or_else(|| e.message_id.clone());
                Outcome::Accepted {
                    provider_message_id: id,
                }
            } else if status.as_u16() == 429 {
                Outcome::RateLimited("http_429".into())
            } else if status.is_server_error() || status.as_u16() == 408 {
                Outcome::Temporary(format!("http_{}", status.as_u16()))
            } else {
                Outcome::Permanent(format!("http_{}", status.as_u16()))
            }
        }
        Err(err) if err.is_timeout() => Outcome::Timeout("http_timeout".into()),
        Err(_) => Outcome::Temporary("http_connection".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits() {
        let b = Bucket::new(1.0, 2.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        assert!(b.take().is_err());
        assert!(Bucket::new(0.0, 1.0).take().is_ok());
    }

    #[test]
    fn escapes_json() {
        assert_eq!(json_escape("a\"b\n"), "a\\\"b\\n");
    }

    #[test]
    fn the_payload_is_filled_in_one_pass() {
        let e = Envelope {
            message_id: "m-1".into(),
            to: "+8613800000000".into(),
            subject: String::new(),
            body: "say \"{{message_id}}\"".into(),
            html: None,
            template_id: "T1".into(),
            wechat_mode: "",
        };
        assert_eq!(
            payload(
                r#"{"to": "{{to}}", "text": "{{ body }}", "id": "{{message_id}}", "x": "{{other}}", "h": "{{html}}"}"#,
                &e
            ),
            r#"{"to": "+8613800000000", "text": "say \"{{message_id}}\"", "id": "m-1", "x": "{{other}}", "h": ""}"#
        );
    }
}
