//! The subject-access export as documents (issue 11): one JSON document (proto3 JSON of
//! guest-profile's part and of each other service's share, field names as in the .proto
//! files, through the descriptors compiled into guestloop-proto) and one HTML page for the
//! guest to read, in their language (English, Simplified or Traditional Chinese). The page
//! is rendered from the JSON, so it shows exactly what the JSON holds; every text is
//! HTML-escaped (the guest's own words can hold markup).

use guestloop_proto::events::v1::ExportGuestDataResponse;
use guestloop_proto::guestprofile::v1 as pb;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};
use std::fmt::Write;
use std::sync::LazyLock;

static DESCRIPTORS: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(guestloop_proto::FILE_DESCRIPTOR_SET).ok());

/// The export: guest-profile's response (without the documents) and each service's share.
pub struct Document<'a> {
    pub profile: &'a pb::ExportGuestResponse,
    pub shares: &'a [(String, ExportGuestDataResponse)],
}

impl Document<'_> {
    fn value(&self) -> Value {
        let mut services = Map::new();
        for (service, share) in self.shares {
            services.insert(
                service.clone(),
                to_json(share, "guestloop.events.v1.ExportGuestDataResponse"),
            );
        }
        json!({
            "guest_profile": to_json(self.profile, "guestloop.guestprofile.v1.ExportGuestResponse"),
            "services": services,
        })
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.value()).unwrap_or_default()
    }

    /// The page in `language` (a BCP 47 tag; English when it is neither Chinese script).
    pub fn html(&self, language: &str) -> String {
        let lang = Lang::of(language);
        let value = self.value();
        let profile = &value["guest_profile"];
        let mut page = String::new();
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}}\
             table{{border-collapse:collapse;margin:.5em 0 1em}}td,th{{border:1px solid #ccc;\
             padding:.3em .6em;text-align:left;vertical-align:top}}th{{background:#f4f4f4}}</style>\n\
             </head>\n<body>\n<h1>{}</h1>\n<p>{} {}</p>\n",
            lang.tag(),
            escape(lang.text("title")),
            escape(lang.text("title")),
            escape(lang.text("intro")),
            escape(profile["export_time"].as_str().unwrap_or_default()),
        );
        let mut sections: Vec<(&str, Value)> = vec![
            ("guest", profile["guest"].clone()),
            ("stays", profile["stays"].clone()),
            ("consent_history", profile["consent_history"].clone()),
            ("merges", profile["merges"].clone()),
        ];
        for key in [
            "feedback",
            "cases",
            "case_events",
            "tasks",
            "timers",
            "messages",
        ] {
            let items: Vec<Value> = value["services"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .filter_map(|share| share[key].as_array())
                .flatten()
                .cloned()
                .collect();
            sections.push((key, Value::Array(items)));
        }
        sections.push(("access_log", profile["access_log"].clone()));
        sections.push(("gaps", profile["gaps"].clone()));
        for (key, v) in sections {
            let _ = writeln!(page, "<h2>{}</h2>", escape(lang.text(key)));
            match v {
                Value::Array(items) if !items.is_empty() => {
                    for item in &items {
                        render(&mut page, lang, "", item);
                    }
                }
                Value::Object(_) => render(&mut page, lang, "", &v),
                _ => {
                    let _ = writeln!(page, "<p>{}</p>", escape(lang.text("none")));
                }
            }
        }
        page.push_str("</body>\n</html>\n");
        page
    }
}

/// A message as proto3 JSON with the .proto field names; `null` if the descriptors do not
/// know it (they are this build's own, so only a bug would make that happen).
fn to_json<M: prost::Message>(message: &M, full_name: &str) -> Value {
    let Some(descriptor) = DESCRIPTORS
        .as_ref()
        .and_then(|pool| pool.get_message_by_name(full_name))
    else {
        tracing::error!(full_name, "export: no descriptor for the message");
        return Value::Null;
    };
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .ok()
        .and_then(|m| {
            m.serialize_with_options(serde_json::value::Serializer, &options)
                .ok()
        })
        .unwrap_or(Value::Null)
}

/// One value as HTML: objects as a two-column table, lists item by item, scalars as text.
fn render(out: &mut String, lang: Lang, field: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            out.push_str("<table>\n");
            for (k, v) in map {
                let _ = write!(out, "<tr><th>{}</th><td>", escape(&lang.label(k)));
                render(out, lang, k, v);
                out.push_str("</td></tr>\n");
            }
            out.push_str("</table>\n");
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 && !item.is_object() {
                    out.push_str(", ");
                }
                render(out, lang, field, item);
            }
        }
        Value::String(s) => out.push_str(&escape(&enum_words(field, s))),
        Value::Null => {}
        other => out.push_str(&escape(&other.to_string())),
    }
}

/// An enum value in words: `FEEDBACK_CHANNEL_PHONE` in field `channel` reads "phone".
fn enum_words(field: &str, value: &str) -> String {
    let is_enum = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !is_enum {
        return value.to_string();
    }
    let marker = format!("{}_", field.to_ascii_uppercase());
    let rest = value
        .find(&marker)
        .map_or(value, |i| &value[i + marker.len()..]);
    rest.to_ascii_lowercase().replace('_', " ")
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    ZhHans,
    ZhHant,
}

/// Headings and labels: (key, English, Simplified Chinese, Traditional Chinese). A field
/// without a label reads as its name in words.
const TEXTS: &[(&str, &str, &str, &str)] = &[
    (
        "title",
        "Your personal data at our hotels",
        "您在我们酒店的个人数据",
        "您在我們酒店的個人資料",
    ),
    (
        "intro",
        "Everything we hold about you, as of",
        "我们保存的关于您的全部信息，截至",
        "我們保存的關於您的全部資訊，截至",
    ),
    ("none", "Nothing.", "无。", "無。"),
    ("guest", "Your profile", "您的资料", "您的資料"),
    ("stays", "Your stays", "您的入住记录", "您的入住記錄"),
    (
        "consent_history",
        "Your consent choices",
        "您的同意记录",
        "您的同意記錄",
    ),
    (
        "merges",
        "Profiles merged into yours",
        "合并到您资料中的档案",
        "合併到您資料中的檔案",
    ),
    ("feedback", "What you told us", "您的反馈", "您的回饋"),
    (
        "cases",
        "Your complaints and how we handled them",
        "您的投诉及处理",
        "您的投訴及處理",
    ),
    (
        "case_events",
        "The history of your complaints",
        "投诉处理记录",
        "投訴處理記錄",
    ),
    (
        "tasks",
        "Follow-ups by our staff",
        "员工跟进任务",
        "員工跟進任務",
    ),
    (
        "timers",
        "Contacts we planned",
        "计划中的联系",
        "計劃中的聯繫",
    ),
    (
        "messages",
        "Messages we sent",
        "我们发送的消息",
        "我們發送的訊息",
    ),
    (
        "access_log",
        "Who looked at your contact details",
        "查看过您联系方式的人员",
        "查看過您聯絡方式的人員",
    ),
    (
        "gaps",
        "Parts missing from this export",
        "本次导出缺少的部分",
        "本次匯出缺少的部分",
    ),
    ("given_name", "Given name", "名", "名"),
    ("family_name", "Family name", "姓", "姓"),
    ("email", "Email", "电子邮件", "電子郵件"),
    ("phone", "Phone", "电话", "電話"),
    ("language", "Language", "语言", "語言"),
    ("birthday", "Birthday", "生日", "生日"),
    ("anniversary", "Anniversary", "纪念日", "紀念日"),
    ("property_id", "Hotel", "酒店", "酒店"),
    ("arrival_date", "Arrival", "入住日期", "入住日期"),
    ("departure_date", "Departure", "离店日期", "離店日期"),
    ("status", "Status", "状态", "狀態"),
    ("channel", "Channel", "渠道", "渠道"),
    ("text", "Your words", "您的原话", "您的原話"),
    ("receive_time", "Received", "收到时间", "收到時間"),
    ("category", "Topic", "类别", "類別"),
    ("title_field", "Title", "标题", "標題"),
    ("description", "Description", "描述", "描述"),
    ("note", "Note", "备注", "備註"),
    ("create_time", "Created", "创建时间", "建立時間"),
    ("due_time", "Due", "到期时间", "到期時間"),
    ("accessor", "Who", "访问者", "訪問者"),
    ("access_time", "When", "时间", "時間"),
    ("granted", "Granted", "已同意", "已同意"),
    ("purpose", "Purpose", "目的", "目的"),
];

impl Lang {
    fn of(tag: &str) -> Self {
        let t = tag.to_ascii_lowercase();
        if !t.starts_with("zh") {
            Lang::En
        } else if ["hant", "-tw", "-hk", "-mo"].iter().any(|m| t.contains(m)) {
            Lang::ZhHant
        } else {
            Lang::ZhHans
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
            Lang::ZhHant => "zh-Hant",
        }
    }

    fn text(self, key: &str) -> &'static str {
        TEXTS
            .iter()
            .find(|t| t.0 == key)
            .map_or("", |t| match self {
                Lang::En => t.1,
                Lang::ZhHans => t.2,
                Lang::ZhHant => t.3,
            })
    }

    /// A field's label: translated when known, else its name in words.
    fn label(self, field: &str) -> String {
        let key = if field == "title" {
            "title_field"
        } else {
            field
        };
        match self.text(key) {
            "" => field.replace('_', " "),
            known => known.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_read_as_words_and_text_is_escaped() {
        let table = [
            ("channel", "FEEDBACK_CHANNEL_PHONE", "phone"),
            ("status", "DELIVERY_STATUS_DELIVERED", "delivered"),
            ("category", "CATEGORY_BILLING_PRICE", "billing price"),
            ("text", "The TV was LOUD", "The TV was LOUD"),
            ("kind", "OTHER_THING", "other thing"),
        ];
        for (field, value, want) in table {
            assert_eq!(enum_words(field, value), want, "{field}={value}");
        }
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn the_page_is_in_the_guests_language_and_holds_the_json() {
        let profile = pb::ExportGuestResponse {
            guest: Some(pb::Guest {
                family_name: "Wang <b>".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let shares = vec![(
            "feedback-intake".to_string(),
            ExportGuestDataResponse {
                feedback: vec![guestloop_proto::feedback::v1::Feedback {
                    text: "空调太吵".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )];
        let doc = Document {
            profile: &profile,
            shares: &shares,
        };
        let json: Value = serde_json::from_str(&doc.json()).unwrap();
        assert_eq!(json["guest_profile"]["guest"]["family_name"], "Wang <b>");
        assert_eq!(
            json["services"]["feedback-intake"]["feedback"][0]["text"],
            "空调太吵"
        );
        let table = [
            ("zh-Hant", "zh-Hant", "您的回饋"),
            ("zh-TW", "zh-Hant", "您的回饋"),
            ("zh-CN", "zh-Hans", "您的反馈"),
            ("en-GB", "en", "What you told us"),
            ("", "en", "What you told us"),
        ];
        for (tag, lang, heading) in table {
            let page = doc.html(tag);
            assert!(page.contains(&format!("<html lang=\"{lang}\">")), "{tag}");
            assert!(page.contains(heading), "{tag}");
            assert!(page.contains("空调太吵"), "{tag}");
            assert!(
                page.contains("Wang &lt;b&gt;") && !page.contains("Wang <b>"),
                "{tag}"
            );
        }
    }
}
