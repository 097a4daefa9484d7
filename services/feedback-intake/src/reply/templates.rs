//! The suggested reply to an OTA review: a template of the review's language (zh-CN, zh-TW,
//! or English for any other), one for negative reviews and one for the rest, quoting the
//! review's category and the guest's points (the start of their words, contact data
//! masked). Staff edit it before posting; it is never posted as it stands.

use super::Review;
use guestloop_proto::feedback::v1::Category;

/// How much of the guest's words the reply quotes.
const POINTS_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    ZhCn,
    ZhTw,
    En,
}

fn lang(tag: &str) -> Lang {
    let t = tag.to_ascii_lowercase();
    if t.starts_with("zh-tw") || t.starts_with("zh-hant") || t.starts_with("zh-hk") {
        Lang::ZhTw
    } else if t.starts_with("zh") {
        Lang::ZhCn
    } else {
        Lang::En
    }
}

fn category(c: Category, l: Lang) -> &'static str {
    use Category::*;
    let [en, cn, tw] = match c {
        ServiceAttitude => ["our service", "服务态度", "服務態度"],
        FacilityMaintenance => ["the room's facilities", "设施设备", "設施設備"],
        Hygiene => ["cleanliness", "卫生清洁", "衛生清潔"],
        Noise => ["noise", "噪音", "噪音"],
        FoodAndBeverage => ["our food and beverage", "餐饮", "餐飲"],
        BillingPrice => ["billing", "账单与价格", "帳單與價格"],
        CommunicationInformation => ["the information we gave", "沟通与信息", "溝通與資訊"],
        LostProperty => ["lost property", "遗失物品", "遺失物品"],
        CompensationClaim => ["your claim", "赔偿诉求", "賠償訴求"],
        Other | Unspecified => ["your stay", "入住体验", "入住體驗"],
    };
    match l {
        Lang::En => en,
        Lang::ZhCn => cn,
        Lang::ZhTw => tw,
    }
}

/// The start of the guest's words, contact data masked, cut with an ellipsis.
fn points(text: &str) -> String {
    let masked = crate::redact::excerpt(text, usize::MAX);
    if masked.chars().count() <= POINTS_CHARS {
        return masked;
    }
    let mut cut: String = masked.chars().take(POINTS_CHARS).collect();
    cut.push('…');
    cut
}

/// The suggested reply to a review.
pub fn suggest(r: &Review) -> String {
    let l = lang(&r.language);
    let c = category(r.category, l);
    let p = points(&r.text);
    match (l, r.negative) {
        (Lang::En, true) => format!(
            "Dear guest, thank you for taking the time to review your stay. We are sorry that \
             {c} fell short of what you expected: \"{p}\". We have shared your comments with \
             the team concerned and are putting this right, and our guest relations manager \
             would welcome the chance to hear more from you. We hope to welcome you back."
        ),
        (Lang::En, false) => format!(
            "Dear guest, thank you for your kind review. We are delighted to read \"{p}\", and \
             your words about {c} have been shared with the team. We look forward to \
             welcoming you back soon."
        ),
        (Lang::ZhCn, true) => format!(
            "尊敬的宾客：感谢您抽出宝贵时间点评。得知您在{c}方面的体验未达期望（“{p}”），\
             我们深表歉意。我们已将您的意见转达相关部门并立即改进，宾客关系经理也希望能进一步\
             了解您的情况。期待再次为您服务。"
        ),
        (Lang::ZhCn, false) => format!(
            "尊敬的宾客：感谢您的好评！很高兴读到“{p}”，您对{c}的肯定我们已转达团队。\
             期待您再次光临。"
        ),
        (Lang::ZhTw, true) => format!(
            "尊敬的賓客：感謝您撥冗點評。得知您在{c}方面的體驗未達期望（「{p}」），\
             我們深表歉意。我們已將您的意見轉達相關部門並立即改善，賓客關係經理也希望能進一步\
             了解您的情況。期待再次為您服務。"
        ),
        (Lang::ZhTw, false) => format!(
            "尊敬的賓客：感謝您的好評！很高興讀到「{p}」，您對{c}的肯定我們已轉達團隊。\
             期待您再次光臨。"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guestloop_proto::feedback::v1::OtaSite;

    fn review(language: &str, negative: bool, category: Category, text: &str) -> Review {
        Review {
            site: OtaSite::TripCom,
            negative,
            due_time: chrono::Utc::now(),
            language: language.into(),
            category,
            text: text.into(),
            reply_published: false,
        }
    }

    #[test]
    fn each_language_quotes_the_category_and_the_points() {
        let cases = [
            (
                "en",
                true,
                Category::Noise,
                "noise",
                "Thin walls, no sleep",
                "sorry",
            ),
            (
                "en",
                false,
                Category::Hygiene,
                "cleanliness",
                "Spotless room",
                "thank you for your kind review",
            ),
            (
                "zh-CN",
                true,
                Category::Hygiene,
                "卫生清洁",
                "房间很脏",
                "深表歉意",
            ),
            (
                "zh-CN",
                false,
                Category::FoodAndBeverage,
                "餐饮",
                "早餐很好",
                "感谢您的好评",
            ),
            (
                "zh-TW",
                true,
                Category::Noise,
                "噪音",
                "隔音很差",
                "深表歉意",
            ),
            (
                "zh-TW",
                false,
                Category::ServiceAttitude,
                "服務態度",
                "服務很好",
                "感謝您的好評",
            ),
            (
                "fr",
                false,
                Category::Other,
                "your stay",
                "Très bien",
                "kind review",
            ),
        ];
        for (language, negative, cat, name, words, tone) in cases {
            let text = suggest(&review(language, negative, cat, words));
            assert!(text.contains(name), "{language}: {text}");
            assert!(text.contains(words), "{language}: {text}");
            assert!(text.contains(tone), "{language}: {text}");
        }
    }

    #[test]
    fn the_quote_is_masked_and_cut() {
        let long = format!("Call me at 13912345678 or a@b.com {}", "x ".repeat(200));
        let text = suggest(&review("en", true, Category::Other, &long));
        assert!(
            !text.contains("13912345678") && !text.contains("a@b.com"),
            "{text}"
        );
        assert!(text.contains('…'), "{text}");
        let quoted = text.split('"').nth(1).unwrap();
        assert_eq!(quoted.chars().count(), POINTS_CHARS + 1, "{quoted}");
    }
}
