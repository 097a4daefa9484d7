//! The intake rules: when feedback opens a case, and a new case's urgency, department and
//! risk grade from its category, wording, the guest's tier and repeat count.

use crate::settings::IntakeSettings;
use guestloop_proto::common::v1::{Department, Urgency};
use guestloop_proto::feedback::v1 as pb;

/// Whether survey scores are at or under the chain's case thresholds.
pub fn low_score(s: &pb::SurveyAnswers, limits: &IntakeSettings) -> bool {
    s.nps.is_some_and(|n| n <= limits.nps_case_at_or_below)
        || s.csat.is_some_and(|c| c <= limits.csat_case_at_or_below)
        || s.csi_scores
            .iter()
            .any(|c| c.score <= limits.csi_case_at_or_below)
}

/// An OTA rating as a share of its scale.
pub fn normalized_rating(r: &pb::OtaReview) -> Option<f64> {
    (r.rating_scale > 0.0 && r.rating > 0.0).then(|| r.rating / r.rating_scale)
}

/// Why feedback opens a case by itself, if it does.
pub fn auto_open_reason(
    channel: pb::FeedbackChannel,
    sentiment: pb::Sentiment,
    low_score: bool,
    ota: Option<&pb::OtaReview>,
    limits: &IntakeSettings,
) -> Option<pb::CaseOpenReason> {
    if low_score {
        return Some(pb::CaseOpenReason::LowSurveyScore);
    }
    if let Some(r) = ota.and_then(normalized_rating)
        && r < limits.ota_case_below
    {
        return Some(pb::CaseOpenReason::NegativeReview);
    }
    let scored = matches!(
        channel,
        pb::FeedbackChannel::PostStaySurvey | pb::FeedbackChannel::OtaReview
    );
    (!scored && limits.negative_feedback_opens_case && sentiment == pb::Sentiment::Negative)
        .then_some(pb::CaseOpenReason::NegativeFeedback)
}

/// Words that put a guest's safety or health at stake.
const EMERGENCY_WORDS: [&str; 16] = [
    "fire",
    "smoke",
    "injur",
    "bleed",
    "ambulance",
    "unconscious",
    "gas leak",
    "electric shock",
    "火灾",
    "冒烟",
    "受伤",
    "流血",
    "救护车",
    "昏迷",
    "煤气",
    "触电",
];

/// Words that raise a complaint's risk: public exposure, legal or health consequences.
const HIGH_RISK_WORDS: [&str; 18] = [
    "police",
    "lawyer",
    "sue",
    "media",
    "journalist",
    "food poisoning",
    "bed bug",
    "theft",
    "stolen",
    "报警",
    "律师",
    "起诉",
    "媒体",
    "曝光",
    "食物中毒",
    "臭虫",
    "被盗",
    "偷",
];

fn mentions(text: &str, words: &[&'static str]) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    words
        .iter()
        .copied()
        .filter(|w| lower.contains(w))
        .collect()
}

/// A new case's urgency: emergency wording, else hardware trouble reported while the guest
/// is in the hotel, else normal.
pub fn default_urgency(
    category: pb::Category,
    channel: pb::FeedbackChannel,
    text: &str,
) -> Urgency {
    let lower = text.to_lowercase();
    if EMERGENCY_WORDS.iter().any(|w| lower.contains(w)) {
        return Urgency::Emergency;
    }
    let in_house = matches!(
        channel,
        pb::FeedbackChannel::Phone
            | pb::FeedbackChannel::InPerson
            | pb::FeedbackChannel::Wechat
            | pb::FeedbackChannel::App
    );
    if in_house
        && matches!(
            category,
            pb::Category::FacilityMaintenance | pb::Category::Noise | pb::Category::Hygiene
        )
    {
        Urgency::Urgent
    } else {
        Urgency::Normal
    }
}

/// The department that owns a category by default.
pub fn default_department(category: pb::Category) -> Department {
    match category {
        pb::Category::FacilityMaintenance => Department::Engineering,
        pb::Category::Hygiene => Department::Housekeeping,
        pb::Category::FoodAndBeverage => Department::FoodAndBeverage,
        pb::Category::BillingPrice | pb::Category::CompensationClaim => Department::Finance,
        pb::Category::LostProperty => Department::Security,
        pb::Category::Noise
        | pb::Category::ServiceAttitude
        | pb::Category::CommunicationInformation
        | pb::Category::Other
        | pb::Category::Unspecified => Department::FrontOffice,
    }
}

/// The rules' risk grade and the reason, from likelihood and impact: the category's base,
/// raised by risky wording, a VIP guest (a tier in `chain.vip_tiers`), a repeat complaint
/// and an emergency.
pub fn grade(
    category: pb::Category,
    urgency: Urgency,
    text: &str,
    vip: bool,
    repeat_count: usize,
) -> (pb::RiskGrade, String) {
    let mut score = match category {
        pb::Category::Hygiene | pb::Category::CompensationClaim | pb::Category::LostProperty => 2,
        pb::Category::FacilityMaintenance
        | pb::Category::ServiceAttitude
        | pb::Category::BillingPrice => 1,
        _ => 1,
    };
    let mut reasons = vec![format!(
        "category {} (base {score})",
        category.as_str_name()
    )];
    let words = mentions(text, &HIGH_RISK_WORDS);
    if !words.is_empty() {
        score += 2;
        reasons.push(format!("risk wording: {}", words.join(", ")));
    }
    if vip {
        score += 1;
        reasons.push("VIP guest".into());
    }
    if repeat_count > 0 {
        score += 1;
        reasons.push(format!("repeat complaint ({repeat_count} earlier)"));
    }
    if urgency == Urgency::Emergency {
        score += 2;
        reasons.push("emergency".into());
    }
    let grade = match score {
        s if s >= 3 => pb::RiskGrade::High,
        2 => pb::RiskGrade::Medium,
        _ => pb::RiskGrade::Low,
    };
    (grade, reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grading_rises_with_wording_vip_and_repeats() {
        let (g, _) = grade(pb::Category::Noise, Urgency::Normal, "too loud", false, 0);
        assert_eq!(g, pb::RiskGrade::Low);
        let (g, _) = grade(pb::Category::Noise, Urgency::Normal, "too loud", true, 0);
        assert_eq!(g, pb::RiskGrade::Medium);
        let (g, why) = grade(pb::Category::Noise, Urgency::Normal, "too loud", true, 2);
        assert_eq!(g, pb::RiskGrade::High);
        assert!(why.contains("repeat"));
        let (g, why) = grade(
            pb::Category::FoodAndBeverage,
            Urgency::Normal,
            "我要报警",
            false,
            0,
        );
        assert_eq!(g, pb::RiskGrade::High, "{why}");
    }

    #[test]
    fn urgency_and_department_defaults() {
        assert_eq!(
            default_urgency(
                pb::Category::FacilityMaintenance,
                pb::FeedbackChannel::Phone,
                "AC broken"
            ),
            Urgency::Urgent
        );
        assert_eq!(
            default_urgency(
                pb::Category::FacilityMaintenance,
                pb::FeedbackChannel::OtaReview,
                "AC broken"
            ),
            Urgency::Normal
        );
        assert_eq!(
            default_urgency(
                pb::Category::Other,
                pb::FeedbackChannel::Email,
                "there is smoke in the corridor"
            ),
            Urgency::Emergency
        );
        assert_eq!(
            default_department(pb::Category::Hygiene),
            Department::Housekeeping
        );
    }
}
