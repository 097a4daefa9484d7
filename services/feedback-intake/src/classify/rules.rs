//! The classifier's rules as configuration: the `[classifier]` table.

use serde::Deserialize;

/// The default rules, a TOML document with one top-level `[classifier]` table. The service
/// layers it under its config file, so head office can replace any list (a list in the
/// config file replaces the default list wholesale; tables merge key by key).
pub const DEFAULT_RULES_TOML: &str = include_str!("default_rules.toml");

/// The `[classifier]` table.
///
/// Keyword syntax (every list below):
/// - Matching is on normalised text: lower case, full-width→ASCII, hyphens and runs of
///   whitespace → one space, and traditional Chinese converted to simplified with OpenCC's
///   tables, Taiwan vocabulary included (網路→网络; see `fold.rs`).
///   The same normalisation is applied to the keywords, so a keyword may be written in
///   either script; the defaults are written in simplified.
/// - A keyword that begins (ends) with a Latin letter or digit only matches at a word
///   boundary there; a leading (trailing) `*` lifts that: `stain*` matches "stained",
///   `*n't` matches "wasn't". Chinese keywords match anywhere.
/// - `keyword^2.5` gives the keyword a weight (default 1). `^0` makes a *blocker*: it scores
///   nothing but, like every match, hides any shorter match inside it (`酒店^0` hides `酒`,
///   `卫生间^0` hides `卫生`). Weights are only allowed in category and sentiment
///   word lists.
/// - All lists of all languages are applied to every text (Chinese reviews contain "wifi",
///   "AC", "CP值"); the `zh`/`en` split is for the people maintaining the lists. A keyword
///   may appear in only one list per category / sentiment polarity.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierRules {
    /// The best category needs at least this score, else the item is `CATEGORY_OTHER`.
    pub min_score: f64,
    pub categories: Categories,
    pub sentiment: SentimentRules,
    pub negation: NegationRules,
}

/// One entry per `guestloop.feedback.v1.Category` (snake_case, without the prefix).
/// When two categories score the same, the earlier field here wins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Categories {
    pub compensation_claim: CategoryRules,
    pub lost_property: CategoryRules,
    pub billing_price: CategoryRules,
    pub hygiene: CategoryRules,
    pub noise: CategoryRules,
    pub facility_maintenance: CategoryRules,
    pub food_and_beverage: CategoryRules,
    pub service_attitude: CategoryRules,
    pub communication_information: CategoryRules,
    /// Topics that are none of the above (location, parking, views); an item whose best
    /// score is here is `CATEGORY_OTHER`. Also the usual home of `^0` blockers.
    pub other: CategoryRules,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRules {
    /// Multiplies every keyword weight of the category.
    pub weight: f64,
    /// The sentiment of an item of this category in which no sentiment word matched:
    /// "negative" for fault categories (a text that names a broken shower and nothing
    /// else is a complaint), "neutral" where requests and questions are common (lost
    /// property, invoices, information). One of positive, negative, neutral, mixed.
    pub default_sentiment: String,
    pub zh: Vec<String>,
    pub en: Vec<String>,
}

/// A word list per language.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lexicon {
    pub zh: Vec<String>,
    pub en: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentRules {
    /// Below this total (positive + negative) the item is neutral.
    pub min_score: f64,
    /// Mixed needs both sides at least this strong …
    pub mixed_min: f64,
    /// … and the weaker side at least this fraction of the stronger one.
    pub mixed_ratio: f64,
    /// With a contrast word in the text, both sides at least this strong is enough for
    /// mixed ("早餐还可以，但是蛋是冷的").
    pub contrast_mixed_min: f64,
    /// A sentiment word with an intensifier shortly before it counts this many times.
    pub intensifier_factor: f64,
    pub positive: Lexicon,
    pub negative: Lexicon,
    /// Phrases that contain a sentiment word or a negator but carry neither (不好意思,
    /// 出差, "kind of", "not only"); they hide what is inside them.
    pub neutral: Lexicon,
    pub intensifiers: Lexicon,
    /// Contrast words (但是, 可惜, but, however): praise and complaint around one of them
    /// make the item mixed even when one side is weak.
    pub contrast: Lexicon,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NegationRules {
    /// Negators (不, 没有, not, *n't …).
    pub zh: Vec<String>,
    pub en: Vec<String>,
    /// A negator negates a Chinese sentiment word at most this many characters later
    /// (不干净: 0, 不是很干净: 2), within the clause.
    pub window_zh_chars: usize,
    /// A negator negates an English sentiment word at most this many words later (not
    /// clean: 0, not very clean: 1), within the clause.
    pub window_en_words: usize,
    /// "not clean": a negated positive word counts as negative times this.
    pub negated_positive_factor: f64,
    /// "not dirty", 没有问题: a negated negative word counts as positive times this.
    pub negated_negative_factor: f64,
}

impl ClassifierRules {
    /// The default rules ([`DEFAULT_RULES_TOML`]).
    pub fn defaults() -> Self {
        Self::from_toml_layers(&[DEFAULT_RULES_TOML]).expect("DEFAULT_RULES_TOML is valid (tested)")
    }

    /// Reads the `[classifier]` table from TOML layers, later ones overriding earlier ones
    /// the way the service's configuration does (same `config` crate semantics: tables
    /// merge, a list replaces the earlier list). Unknown keys are an error naming the key.
    pub fn from_toml_layers(layers: &[&str]) -> Result<Self, String> {
        let mut builder = config::Config::builder();
        for layer in layers {
            builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Toml));
        }
        let cfg = builder.build().map_err(|e| e.to_string())?;
        cfg.get::<Self>("classifier").map_err(|e| e.to_string())
    }
}
