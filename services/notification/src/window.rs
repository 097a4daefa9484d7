//! WeChat's channel window. An official account may send a free-form (customer-service)
//! message only within a window (48 h) after the guest's last interaction with it; outside
//! it only a template message may go. The last interaction comes from feedback-intake's
//! FeedbackReceived events (channel WECHAT), kept in `wechat_interactions` (ingest.rs).
//!
//! The decision is pure and lives here so it can be tested without a provider or a
//! database: free-form is *wanted* when the kind is configured free-form capable and a
//! free-form provider exists; it is used when the window is open. Otherwise the template
//! provider sends, and `fallback_used` is set when free-form was wanted. With no template
//! provider either, WeChat is skipped and the next channel in the preference order is tried.

use crate::settings::{ChannelSettings, WechatMode};
use crate::templates::parse_kind;
use chrono::{DateTime, Utc};
use guestloop_proto::notification::v1::MessageKind;
use std::collections::BTreeSet;

/// `[channels]` resolved: the window and the kinds that may go free-form.
#[derive(Debug, Clone)]
pub struct WechatWindow {
    window: chrono::Duration,
    free_form_kinds: BTreeSet<i32>,
}

impl WechatWindow {
    pub fn new(s: &ChannelSettings) -> Self {
        Self {
            window: chrono::Duration::from_std(s.wechat_window.as_duration())
                .unwrap_or(chrono::Duration::hours(48)),
            free_form_kinds: s
                .wechat_free_form_kinds
                .iter()
                .filter_map(|k| parse_kind(k))
                .map(|k| k as i32)
                .collect(),
        }
    }

    pub fn free_form_kind(&self, kind: MessageKind) -> bool {
        self.free_form_kinds.contains(&(kind as i32))
    }

    /// Whether a free-form message may go at `now` after an interaction at `last`.
    pub fn open(&self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last.is_some_and(|t| now - t <= self.window)
    }
}

/// How a WeChat attempt goes: the provider, the mode, and whether it is a fallback (a
/// template message where a free-form one was wanted). `None`: WeChat cannot be used.
pub fn choose<P>(
    wanted: bool,
    open: bool,
    free_form: Option<P>,
    template: Option<P>,
) -> Option<(P, WechatMode, bool)> {
    let wanted = wanted && free_form.is_some();
    match (wanted && open, free_form, template) {
        (true, Some(p), _) => Some((p, WechatMode::FreeForm, false)),
        (_, _, Some(t)) => Some((t, WechatMode::Template, wanted)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestloop_config::Seconds;

    fn window() -> WechatWindow {
        WechatWindow::new(&ChannelSettings {
            wechat_window: Seconds::parse("48h").unwrap(),
            wechat_free_form_kinds: vec!["complaint_acknowledgement".into()],
        })
    }

    #[test]
    fn the_window_is_48_hours_after_the_last_interaction() {
        let w = window();
        let now = Utc::now();
        assert!(w.open(Some(now - chrono::Duration::hours(1)), now));
        assert!(w.open(Some(now - chrono::Duration::hours(48)), now));
        assert!(!w.open(Some(now - chrono::Duration::hours(49)), now));
        assert!(!w.open(None, now));
        assert!(w.free_form_kind(MessageKind::ComplaintAcknowledgement));
        assert!(!w.free_form_kind(MessageKind::BirthdayGreeting));
    }

    #[test]
    fn free_form_inside_the_window_template_with_fallback_outside() {
        use WechatMode::*;
        assert_eq!(
            choose(true, true, Some("ff"), Some("tpl")),
            Some(("ff", FreeForm, false))
        );
        assert_eq!(
            choose(true, false, Some("ff"), Some("tpl")),
            Some(("tpl", Template, true))
        );
        // Not a free-form kind, or no free-form provider: the template is no fallback.
        assert_eq!(
            choose(false, true, Some("ff"), Some("tpl")),
            Some(("tpl", Template, false))
        );
        assert_eq!(
            choose(true, true, None, Some("tpl")),
            Some(("tpl", Template, false))
        );
        // Window closed and no template provider: WeChat is skipped.
        assert_eq!(choose(true, false, Some("ff"), None::<&str>), None);
        assert_eq!(
            choose(true, true, Some("ff"), None),
            Some(("ff", FreeForm, false))
        );
    }
}
