//! The rules-based classifier for feedback that arrives without a category or sentiment
//! (issue 3, "Automatic tagging").
//!
//! How it decides:
//! 1. The text is normalised (lower case, full-width→ASCII, whitespace collapsed, and
//!    traditional Chinese converted to simplified with OpenCC's character, phrase and Taiwan
//!    vocabulary tables, `fold.rs`), so one simplified keyword list serves zh-CN and zh-TW.
//! 2. One Aho-Corasick automaton finds every keyword of every list in one pass. English
//!    keywords only match at word boundaries (unless written with `*`). A match that lies
//!    strictly inside a longer match of the same layer (category keywords; sentiment words,
//!    negators, intensifiers) is dropped: `不干净` is not also `干净`, `bed bugs` is not also
//!    `bed`, `卫生间^0` hides `卫生`.
//! 3. Category: each category scores the sum of its matched keywords' weights (each keyword
//!    at most twice) times the category weight. The best score wins if it reaches `min_score`, else
//!    the item is `CATEGORY_OTHER`; ties go to the category listed first in [`Categories`].
//! 4. Sentiment: positive and negative words add up, an intensifier shortly before a word
//!    multiplies it, a negator shortly before it (same clause) flips it ("not clean" →
//!    negative, "不脏"/"没有问题" → mildly positive). Both sides strong and comparable, or
//!    both present around a contrast word (但是, 可惜, but) → mixed; little of either →
//!    neutral. With no sentiment word at all, the category's `default_sentiment` applies
//!    (a fault category without praise is a complaint).
//! 5. Language: the hint if it names one (zh-TW/zh-HK/zh-Hant → "zh-TW", zh-CN/zh-Hans →
//!    "zh-CN", en* → "en"; a bare "zh" only decides Chinese), else the script: mostly CJK →
//!    Chinese, and traditional-only characters (those OpenCC's table always converts)
//!    outnumbering simplified-only ones → zh-TW.
//!    Text with no letters at all is "en".

mod fold;
mod rules;
#[cfg(test)]
mod tests;

pub use rules::{
    Categories, CategoryRules, ClassifierRules, DEFAULT_RULES_TOML, Lexicon, NegationRules,
    SentimentRules,
};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use guestloop_proto::feedback::v1::{Category, Sentiment};
use std::collections::HashMap;

/// The classifier's verdict on one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub category: Category,
    pub sentiment: Sentiment,
    /// 0–1: how clearly the category won (its score, and its margin over the runner-up);
    /// for `CATEGORY_OTHER`, how little any category scored.
    pub confidence: f64,
    /// "zh-CN", "zh-TW" or "en".
    pub language: &'static str,
    /// The category keywords that matched, as written in the rules, in text order: those of
    /// the chosen category, or, for `CATEGORY_OTHER`, every category keyword that matched
    /// (which shows staff why nothing reached the threshold).
    pub matched: Vec<String>,
    /// The sentiment words that counted, `+`/`-` by their final polarity, with
    /// " (negated)" when a negator flipped them, e.g. `-干净 (negated)`.
    pub sentiment_matched: Vec<String>,
}

/// Categories in tie-break order; the same order as the fields of [`Categories`].
const CATEGORIES: [(Category, &str); 10] = [
    (Category::CompensationClaim, "compensation_claim"),
    (Category::LostProperty, "lost_property"),
    (Category::BillingPrice, "billing_price"),
    (Category::Hygiene, "hygiene"),
    (Category::Noise, "noise"),
    (Category::FacilityMaintenance, "facility_maintenance"),
    (Category::FoodAndBeverage, "food_and_beverage"),
    (Category::ServiceAttitude, "service_attitude"),
    (
        Category::CommunicationInformation,
        "communication_information",
    ),
    (Category::Other, "other"),
];
const OTHER: usize = 9;
/// A category keyword counts at most this many times per text (a repeated topic word is
/// evidence; a long rant repeating one word should not swamp everything else).
const MAX_REPEATS: usize = 2;

/// The snake_case rules key of a category ("hygiene"); `None` for unspecified.
pub fn category_key(category: Category) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(c, _)| *c == category)
        .map(|(_, k)| *k)
}

/// The category for a snake_case rules key ("hygiene").
pub fn category_from_key(key: &str) -> Option<Category> {
    CATEGORIES.iter().find(|(_, k)| *k == key).map(|(c, _)| *c)
}

fn category_list(c: &Categories) -> [&CategoryRules; 10] {
    [
        &c.compensation_claim,
        &c.lost_property,
        &c.billing_price,
        &c.hygiene,
        &c.noise,
        &c.facility_maintenance,
        &c.food_and_beverage,
        &c.service_attitude,
        &c.communication_information,
        &c.other,
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Category { index: usize, weight: f64 },
    Positive(f64),
    Negative(f64),
    Neutral,
    Negator,
    Intensifier,
    Contrast,
}

impl Role {
    /// Matches only hide matches of the same layer.
    fn layer(self) -> Layer {
        match self {
            Role::Category { .. } => Layer::Category,
            _ => Layer::Sentiment,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Category,
    Sentiment,
}

#[derive(Debug)]
struct Entry {
    role: Role,
    /// Require a word boundary before / after the match.
    left_word: bool,
    right_word: bool,
    /// The keyword as configured, without its weight.
    display: Box<str>,
}

/// A compiled rule set. Cheap to share (`Arc`) and safe to use from many threads.
#[derive(Debug)]
pub struct Classifier {
    automaton: AhoCorasick,
    /// Per automaton pattern: every use of that needle.
    entries: Vec<Vec<Entry>>,
    min_score: f64,
    /// Per category (in [`CATEGORIES`] order): the sentiment when no sentiment word matched.
    default_sentiment: [Sentiment; 10],
    sentiment: SentimentParams,
    window_zh_chars: usize,
    window_en_words: usize,
    /// Bytes from the start of a negator/intensifier to the start of a word it can still
    /// reach: the longest needle plus the longest gap either window allows.
    reach_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
struct SentimentParams {
    min_score: f64,
    mixed_min: f64,
    mixed_ratio: f64,
    intensifier_factor: f64,
    contrast_mixed_min: f64,
    negated_positive_factor: f64,
    negated_negative_factor: f64,
}

/// One keyword as parsed from the rules.
struct Parsed {
    needle: String,
    left_word: bool,
    right_word: bool,
    weight: f64,
    display: Box<str>,
}

fn parse_keyword(raw: &str, path: &str, allow_weight: bool) -> Result<Parsed, String> {
    let raw = raw.trim();
    let (body, weight) = match raw.rsplit_once('^') {
        Some((body, w)) => {
            if !allow_weight {
                return Err(format!("{path}: a weight (^) is not allowed here"));
            }
            let weight: f64 = w
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| {
                    format!("{path}: bad weight `{w}` (want a number ≥ 0, e.g. dirty^2)")
                })?;
            (body.trim(), weight)
        }
        None => (raw, 1.0),
    };
    let left_open = body.starts_with('*');
    let right_open = body.len() > 1 && body.ends_with('*');
    let core = body.trim_start_matches('*').trim_end_matches('*');
    if core.contains('*') {
        return Err(format!(
            "{path}: `*` is only allowed at the start or end of a keyword"
        ));
    }
    let needle = fold::normalize(core);
    if needle.is_empty() {
        return Err(format!("{path}: empty keyword"));
    }
    let first = needle.chars().next().unwrap_or(' ');
    let last = needle.chars().next_back().unwrap_or(' ');
    Ok(Parsed {
        left_word: !left_open && fold::is_word_char(first),
        right_word: !right_open && fold::is_word_char(last),
        needle,
        weight,
        display: body.into(),
    })
}

/// Builds the needle table, checking each list.
#[derive(Default)]
struct Builder {
    needles: Vec<String>,
    index: HashMap<String, usize>,
    entries: Vec<Vec<Entry>>,
}

impl Builder {
    /// Adds every keyword of `lists` (name, list) under `group` (a config path prefix);
    /// a needle may appear once per group.
    fn add_group(
        &mut self,
        group: &str,
        lists: &[(&str, &[String])],
        allow_weight: bool,
        role: impl Fn(f64) -> Role,
    ) -> Result<(), String> {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (lang, list) in lists {
            for (i, raw) in list.iter().enumerate() {
                let path = format!("{group}.{lang}[{i}]");
                let p = parse_keyword(raw, &path, allow_weight)?;
                if let Some(first) = seen.insert(p.needle.clone(), path.clone()) {
                    return Err(format!("{path}: duplicate keyword `{raw}` (also {first})"));
                }
                let id = *self.index.entry(p.needle.clone()).or_insert_with(|| {
                    self.needles.push(p.needle.clone());
                    self.entries.push(Vec::new());
                    self.needles.len() - 1
                });
                self.entries[id].push(Entry {
                    role: role(p.weight),
                    left_word: p.left_word,
                    right_word: p.right_word,
                    display: p.display,
                });
            }
        }
        Ok(())
    }
}

fn lex(l: &Lexicon) -> [(&'static str, &[String]); 2] {
    [("zh", l.zh.as_slice()), ("en", l.en.as_slice())]
}

fn check(path: &str, value: f64, ok: bool, want: &str) -> Result<(), String> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(format!("{path}: {value} is out of range (want {want})"))
    }
}

impl Classifier {
    /// Compiles `rules`. The error names the offending key, e.g.
    /// `classifier.categories.hygiene.en[3]: empty keyword`.
    pub fn new(rules: &ClassifierRules) -> Result<Self, String> {
        check(
            "classifier.min_score",
            rules.min_score,
            rules.min_score > 0.0,
            "> 0",
        )?;
        let s = &rules.sentiment;
        check(
            "classifier.sentiment.min_score",
            s.min_score,
            s.min_score >= 0.0,
            "≥ 0",
        )?;
        check(
            "classifier.sentiment.mixed_min",
            s.mixed_min,
            s.mixed_min >= 0.0,
            "≥ 0",
        )?;
        check(
            "classifier.sentiment.mixed_ratio",
            s.mixed_ratio,
            (0.0..=1.0).contains(&s.mixed_ratio),
            "0–1",
        )?;
        check(
            "classifier.sentiment.contrast_mixed_min",
            s.contrast_mixed_min,
            s.contrast_mixed_min >= 0.0,
            "≥ 0",
        )?;
        check(
            "classifier.sentiment.intensifier_factor",
            s.intensifier_factor,
            s.intensifier_factor > 0.0,
            "> 0",
        )?;
        let n = &rules.negation;
        check(
            "classifier.negation.negated_positive_factor",
            n.negated_positive_factor,
            n.negated_positive_factor >= 0.0,
            "≥ 0",
        )?;
        check(
            "classifier.negation.negated_negative_factor",
            n.negated_negative_factor,
            n.negated_negative_factor >= 0.0,
            "≥ 0",
        )?;

        let mut b = Builder::default();
        let mut default_sentiment = [Sentiment::Neutral; 10];
        for (index, (cat, (_, key))) in category_list(&rules.categories)
            .into_iter()
            .zip(CATEGORIES.iter())
            .enumerate()
        {
            let group = format!("classifier.categories.{key}");
            check(
                &format!("{group}.weight"),
                cat.weight,
                cat.weight >= 0.0,
                "≥ 0",
            )?;
            default_sentiment[index] = match cat.default_sentiment.as_str() {
                "positive" => Sentiment::Positive,
                "negative" => Sentiment::Negative,
                "neutral" => Sentiment::Neutral,
                "mixed" => Sentiment::Mixed,
                other => {
                    return Err(format!(
                        "{group}.default_sentiment: `{other}` is not one of positive, \
                         negative, neutral, mixed"
                    ));
                }
            };
            let cw = cat.weight;
            b.add_group(&group, &[("zh", &cat.zh), ("en", &cat.en)], true, |w| {
                Role::Category {
                    index,
                    weight: w * cw,
                }
            })?;
        }
        b.add_group(
            "classifier.sentiment.positive",
            &lex(&s.positive),
            true,
            Role::Positive,
        )?;
        b.add_group(
            "classifier.sentiment.negative",
            &lex(&s.negative),
            true,
            Role::Negative,
        )?;
        b.add_group(
            "classifier.sentiment.neutral",
            &lex(&s.neutral),
            false,
            |_| Role::Neutral,
        )?;
        b.add_group(
            "classifier.sentiment.intensifiers",
            &lex(&s.intensifiers),
            false,
            |_| Role::Intensifier,
        )?;
        b.add_group(
            "classifier.sentiment.contrast",
            &lex(&s.contrast),
            false,
            |_| Role::Contrast,
        )?;
        b.add_group(
            "classifier.negation",
            &[("zh", &n.zh), ("en", &n.en)],
            false,
            |_| Role::Negator,
        )?;

        // A gap of N Chinese characters is at most 4N bytes (plus spaces); an English gap of
        // N words has no byte bound, so words longer than 40 bytes end the window early.
        let longest_needle = b.needles.iter().map(String::len).max().unwrap_or(0);
        let reach_bytes =
            longest_needle + (n.window_zh_chars * 5 + 4).max((n.window_en_words + 1) * 41) + 1;
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&b.needles)
            .map_err(|e| format!("classifier: cannot compile the keyword automaton: {e}"))?;
        Ok(Self {
            automaton,
            entries: b.entries,
            min_score: rules.min_score,
            default_sentiment,
            sentiment: SentimentParams {
                min_score: s.min_score,
                mixed_min: s.mixed_min,
                mixed_ratio: s.mixed_ratio,
                intensifier_factor: s.intensifier_factor,
                contrast_mixed_min: s.contrast_mixed_min,
                negated_positive_factor: n.negated_positive_factor,
                negated_negative_factor: n.negated_negative_factor,
            },
            window_zh_chars: n.window_zh_chars,
            window_en_words: n.window_en_words,
            reach_bytes,
        })
    }

    /// The default rules, compiled.
    pub fn with_defaults() -> Self {
        Self::new(&ClassifierRules::defaults()).expect("the default rules compile (tested)")
    }

    /// Classifies one text. `language_hint` is the channel's language tag, if any.
    pub fn classify(&self, text: &str, language_hint: Option<&str>) -> Classification {
        let language = hint_language(language_hint, text);
        let norm = fold::normalize(text);
        let hits = self.hits(&norm);

        // Category.
        let mut scores = [0.0f64; 10];
        let mut cat_hits: Vec<(usize, usize, usize)> = Vec::new(); // (start, pattern, entry)
        for h in hits.iter().filter(|h| h.layer == Layer::Category) {
            cat_hits.push((h.start, h.pattern, h.entry));
        }
        // Each keyword counts at most MAX_REPEATS times: keep its first occurrences.
        cat_hits.sort_unstable_by_key(|&(start, p, e)| (p, e, start));
        let mut run = 0;
        let mut previous = None;
        cat_hits.retain(|&(_, p, e)| {
            run = if previous == Some((p, e)) { run + 1 } else { 1 };
            previous = Some((p, e));
            run <= MAX_REPEATS
        });
        cat_hits.sort_unstable();
        for &(_, p, e) in &cat_hits {
            if let Role::Category { index, weight } = self.entries[p][e].role {
                scores[index] += weight;
            }
        }
        let mut best = 0;
        for i in 1..scores.len() {
            if scores[i] > scores[best] {
                best = i;
            }
        }
        let top = scores[best];
        let runner_up = scores
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .map(|(_, &s)| s)
            .fold(0.0, f64::max);
        let (category_index, confidence) = if top >= self.min_score && top > 0.0 {
            let strength = top / (top + 1.0);
            let margin = (top - runner_up) / top;
            (best, strength * (0.5 + 0.5 * margin))
        } else {
            let best_real = scores[..OTHER].iter().copied().fold(0.0, f64::max);
            (
                OTHER,
                0.4 + 0.4 * (1.0 - (best_real / self.min_score).min(1.0)),
            )
        };
        let matched = cat_hits
            .iter()
            .filter_map(|&(_, p, e)| {
                let entry = &self.entries[p][e];
                match entry.role {
                    Role::Category { index, weight }
                        if weight > 0.0 && (index == category_index || category_index == OTHER) =>
                    {
                        Some(entry.display.to_string())
                    }
                    _ => None,
                }
            })
            .fold(Vec::new(), |mut acc: Vec<String>, k| {
                if !acc.contains(&k) {
                    acc.push(k);
                }
                acc
            });

        // Sentiment.
        let (sentiment, sentiment_matched) = match self.sentiment(&norm, &hits) {
            // No sentiment word at all: the category's default.
            (_, terms) if terms.is_empty() => (self.default_sentiment[category_index], terms),
            found => found,
        };

        Classification {
            category: CATEGORIES[category_index].0,
            sentiment,
            confidence: confidence.clamp(0.0, 1.0),
            language,
            matched,
            sentiment_matched,
        }
    }

    /// Every match that survives the boundary checks and is not strictly inside a longer
    /// match of its layer, in text order.
    fn hits(&self, norm: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        for m in self.automaton.find_overlapping_iter(norm) {
            let (start, end) = (m.start(), m.end());
            let before = norm[..start].chars().next_back();
            let after = norm[end..].chars().next();
            let left_ok = before.is_none_or(|c| !fold::is_word_char(c));
            let right_ok = after.is_none_or(|c| !fold::is_word_char(c));
            let p = m.pattern().as_usize();
            for (e, entry) in self.entries[p].iter().enumerate() {
                if (left_ok || !entry.left_word) && (right_ok || !entry.right_word) {
                    hits.push(Hit {
                        start,
                        end,
                        layer: entry.role.layer(),
                        pattern: p,
                        entry: e,
                    });
                }
            }
        }
        // Drop matches strictly inside a longer match of the same layer: sort by layer,
        // start, longest first; a span is inside an earlier one iff an earlier (distinct)
        // span of its layer reaches at least as far.
        hits.sort_unstable_by_key(|h| (h.layer, h.start, std::cmp::Reverse(h.end)));
        let mut keep = vec![true; hits.len()];
        let mut layer = None;
        let mut reach = 0usize; // furthest end among earlier distinct spans of this layer
        let mut i = 0;
        while i < hits.len() {
            let (l, s, e) = (hits[i].layer, hits[i].start, hits[i].end);
            if layer != Some(l) {
                layer = Some(l);
                reach = 0;
            }
            let mut j = i;
            while j < hits.len() && hits[j].layer == l && hits[j].start == s && hits[j].end == e {
                j += 1;
            }
            if reach >= e && reach > 0 {
                keep[i..j].iter_mut().for_each(|k| *k = false);
            }
            reach = reach.max(e);
            i = j;
        }
        let mut kept: Vec<Hit> = hits
            .into_iter()
            .zip(keep)
            .filter_map(|(h, k)| k.then_some(h))
            .collect();
        kept.sort_unstable_by_key(|h| (h.start, h.end, h.layer, h.pattern, h.entry));
        kept
    }

    fn sentiment(&self, norm: &str, hits: &[Hit]) -> (Sentiment, Vec<String>) {
        let p = self.sentiment;
        let mut positive = 0.0;
        let mut negative = 0.0;
        let mut terms = Vec::new();
        let words: Vec<&Hit> = hits
            .iter()
            .filter(|h| h.layer == Layer::Sentiment)
            .collect();
        let contrast = words
            .iter()
            .any(|h| self.entries[h.pattern][h.entry].role == Role::Contrast);
        for (i, h) in words.iter().enumerate() {
            let entry = &self.entries[h.pattern][h.entry];
            let (base, is_positive) = match entry.role {
                Role::Positive(w) => (w, true),
                Role::Negative(w) => (w, false),
                _ => continue,
            };
            // Latin words use the word window; Chinese (and emoji, WeChat [强]) the
            // character window.
            let latin = norm[h.start..]
                .chars()
                .next()
                .is_some_and(fold::is_word_char);
            // Look back only as far as a window can reach (`words` is in text order), so
            // long texts stay linear.
            let near = |role: Role| {
                words[..i]
                    .iter()
                    .rev()
                    .take_while(|o| o.start + self.reach_bytes >= h.start)
                    .any(|o| {
                        o.end <= h.start
                            && self.entries[o.pattern][o.entry].role == role
                            && self.within_window(&norm[o.end..h.start], !latin)
                    })
            };
            let mut value = base;
            if near(Role::Intensifier) {
                value *= p.intensifier_factor;
            }
            let negated = near(Role::Negator);
            let counts_positive = if negated {
                value *= if is_positive {
                    p.negated_positive_factor
                } else {
                    p.negated_negative_factor
                };
                !is_positive
            } else {
                is_positive
            };
            if value <= 0.0 {
                continue;
            }
            if counts_positive {
                positive += value;
            } else {
                negative += value;
            }
            terms.push(format!(
                "{}{}{}",
                if counts_positive { '+' } else { '-' },
                entry.display,
                if negated { " (negated)" } else { "" }
            ));
        }
        let sentiment = if positive + negative < p.min_score {
            Sentiment::Neutral
        } else {
            let (weak, strong) = if positive < negative {
                (positive, negative)
            } else {
                (negative, positive)
            };
            let mixed = (weak >= p.mixed_min && weak >= p.mixed_ratio * strong)
                || (contrast && weak >= p.contrast_mixed_min && weak > 0.0);
            if mixed {
                Sentiment::Mixed
            } else if positive > negative {
                Sentiment::Positive
            } else if negative > positive {
                Sentiment::Negative
            } else {
                Sentiment::Mixed
            }
        };
        (sentiment, terms)
    }

    /// Whether the text between a negator/intensifier and a word is short enough and
    /// stays within one clause.
    fn within_window(&self, gap: &str, cjk: bool) -> bool {
        if gap.chars().any(fold::is_clause_break) {
            return false;
        }
        if cjk {
            gap.chars().filter(|c| !c.is_whitespace()).count() <= self.window_zh_chars
        } else {
            gap.split_whitespace().count() <= self.window_en_words
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    layer: Layer,
    pattern: usize,
    entry: usize,
}

/// The language: from the hint when it names one, else from the text's script.
fn hint_language(hint: Option<&str>, text: &str) -> &'static str {
    let hint = hint.map(|h| h.trim().to_ascii_lowercase().replace('_', "-"));
    match hint.as_deref() {
        Some(h) if h == "en" || h.starts_with("en-") => return "en",
        Some(h)
            if h.starts_with("zh-tw")
                || h.starts_with("zh-hk")
                || h.starts_with("zh-mo")
                || h.starts_with("zh-hant") =>
        {
            return "zh-TW";
        }
        Some(h) if h.starts_with("zh-cn") || h.starts_with("zh-sg") || h.starts_with("zh-hans") => {
            return "zh-CN";
        }
        Some("zh") => return chinese_variant(fold::script_counts(text)),
        _ => {}
    }
    detect_language(text)
}

/// "zh-CN", "zh-TW" or "en" from the script alone.
pub fn detect_language(text: &str) -> &'static str {
    let counts = fold::script_counts(text);
    // A Chinese character carries about as much as a short English word (~4 letters).
    if counts.cjk > 0 && counts.cjk * 4 >= counts.latin_letters {
        chinese_variant(counts)
    } else {
        "en"
    }
}

fn chinese_variant(counts: fold::ScriptCounts) -> &'static str {
    if counts.traditional > counts.simplified {
        "zh-TW"
    } else {
        "zh-CN"
    }
}
