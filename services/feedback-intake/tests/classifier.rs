//! The classifier against the labelled data set (issue 3, "Automatic tagging").
//!
//! Data: `tests/data/labelled_tune.jsonl` (~60 %, the rules were tuned while looking at it)
//! and `tests/data/labelled_holdout.jsonl` (~40 %, written together with the tune set before
//! any rule existed and never used for tuning). One JSON object per line:
//! `{"text", "language": "zh-CN"|"zh-TW"|"en", "category": "<rules key>",
//!   "sentiment": "positive"|"negative"|"neutral"|"mixed"}`.
//!
//! A third file, `tests/data/labelled_unseen.jsonl` (123 items, 41 per language), was
//! written after the rules were frozen, to estimate how the rules do on wording nobody
//! tuned for. It is reported, never asserted, and must not be used for tuning (once it has
//! been, write a new one). On its first evaluation: category precision 93.2 %, recall
//! 63.0 %, sentiment 54.5 %; the per-category `default_sentiment` was added after that
//! run (sentiment 67.5 %).
//!
//! Metrics (texts are classified without a language hint, so detection is exercised too):
//! - per category c: precision = items predicted c whose label is c / items predicted c;
//!   recall = items labelled c predicted c / items labelled c.
//! - **category precision** (the asserted number, ≥ 0.85 on each file): of the items for
//!   which the classifier committed to a real category (predicted anything but `other`), the
//!   fraction whose label is that category. Predicting `other` is abstaining: it costs
//!   recall, not precision.
//! - category recall: of the items labelled with a real category, the fraction predicted
//!   with exactly that category (so abstention is visible; a floor is asserted too).
//! - accuracy: micro-averaged over all items and all ten categories, `other` included.
//! - sentiment accuracy: exact match of the four sentiment classes.
//!
//! Run with `-- --nocapture` to see the tables; they are also in any failure message.
//! Set `CLASSIFIER_SHOW_ERRORS=1` to list the misclassified *tune* items (the holdout items
//! are deliberately never listed, so that tuning cannot peek at them).
//! Set `CLASSIFIER_EXTRA_DATA=/path/file.jsonl` (same format) to also report on another
//! labelled file, e.g. an export of staff-corrected categories; it is reported, not asserted.

use feedback_intake::classify::{Classifier, category_from_key, category_key};
use guestloop_proto::feedback::v1::{Category, Sentiment};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];
const CATEGORY_KEYS: [&str; 10] = [
    "service_attitude",
    "facility_maintenance",
    "hygiene",
    "noise",
    "food_and_beverage",
    "billing_price",
    "communication_information",
    "lost_property",
    "compensation_claim",
    "other",
];
const MIN_PRECISION: f64 = 0.85;
/// Not required by the issue; guards against a classifier that reaches its precision by
/// abstaining on nearly everything.
const MIN_RECALL: f64 = 0.70;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    text: String,
    language: String,
    category: String,
    sentiment: String,
}

fn load(name: &str) -> Vec<Item> {
    let path = if name.contains('/') {
        name.to_string()
    } else {
        format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
    };
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let item: Item =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", i + 1));
            assert!(
                LANGUAGES.contains(&item.language.as_str()),
                "{path}:{}: language {}",
                i + 1,
                item.language
            );
            assert!(
                category_from_key(&item.category).is_some(),
                "{path}:{}: category {}",
                i + 1,
                item.category
            );
            assert!(
                sentiment_from_key(&item.sentiment).is_some(),
                "{path}:{}: sentiment {}",
                i + 1,
                item.sentiment
            );
            assert!(!item.text.trim().is_empty(), "{path}:{}: empty text", i + 1);
            item
        })
        .collect()
}

fn sentiment_from_key(key: &str) -> Option<Sentiment> {
    match key {
        "positive" => Some(Sentiment::Positive),
        "negative" => Some(Sentiment::Negative),
        "neutral" => Some(Sentiment::Neutral),
        "mixed" => Some(Sentiment::Mixed),
        _ => None,
    }
}

/// Counts for one slice (all items, or one language).
#[derive(Debug, Default, Clone)]
struct Counts {
    items: usize,
    /// Per category key: (predicted, labelled, correct).
    per_category: BTreeMap<&'static str, (usize, usize, usize)>,
    correct: usize,
    committed: usize,
    committed_correct: usize,
    labelled_real: usize,
    sentiment_correct: usize,
    language_correct: usize,
}

impl Counts {
    fn add(&mut self, label: &Item, predicted: Category, sentiment: Sentiment, lang: &str) {
        let predicted_key = category_key(predicted).expect("classifier never says unspecified");
        let label_key = CATEGORY_KEYS
            .iter()
            .copied()
            .find(|k| *k == label.category)
            .expect("validated");
        self.items += 1;
        self.per_category.entry(predicted_key).or_default().0 += 1;
        self.per_category.entry(label_key).or_default().1 += 1;
        let hit = predicted_key == label_key;
        if hit {
            self.per_category.entry(label_key).or_default().2 += 1;
            self.correct += 1;
        }
        if predicted != Category::Other {
            self.committed += 1;
            if hit {
                self.committed_correct += 1;
            }
        }
        if label_key != "other" {
            self.labelled_real += 1;
        }
        if Some(sentiment) == sentiment_from_key(&label.sentiment) {
            self.sentiment_correct += 1;
        }
        if lang == label.language {
            self.language_correct += 1;
        }
    }

    fn precision(&self) -> f64 {
        ratio(self.committed_correct, self.committed)
    }

    fn recall(&self) -> f64 {
        ratio(self.committed_correct, self.labelled_real)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "   -".to_string()
    } else {
        format!("{:>4.0}", x * 100.0)
    }
}

struct Report {
    text: String,
    all: Counts,
}

fn evaluate(classifier: &Classifier, file: &str, show_errors: bool) -> Report {
    let items = load(file);
    let mut all = Counts::default();
    let mut by_lang: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut errors = String::new();
    let started = Instant::now();
    for item in &items {
        let r = classifier.classify(&item.text, None);
        all.add(item, r.category, r.sentiment, r.language);
        by_lang
            .entry(
                LANGUAGES
                    .iter()
                    .copied()
                    .find(|l| *l == item.language)
                    .unwrap(),
            )
            .or_default()
            .add(item, r.category, r.sentiment, r.language);
        let cat = category_key(r.category).unwrap();
        let sent = r.sentiment.as_str_name().trim_start_matches("SENTIMENT_");
        if show_errors && (cat != item.category || !sent.eq_ignore_ascii_case(&item.sentiment)) {
            let _ = writeln!(
                errors,
                "  [{}] want {}/{} got {}/{} conf {:.2} {:?} {:?}\n      {}",
                item.language,
                item.category,
                item.sentiment,
                cat,
                sent.to_ascii_lowercase(),
                r.confidence,
                r.matched,
                r.sentiment_matched,
                item.text
            );
        }
    }
    let elapsed = started.elapsed();

    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n== {file}: {} items ({}) — classified in {:.1} ms, {:.1} µs/item",
        all.items,
        LANGUAGES
            .iter()
            .map(|l| format!("{l} {}", by_lang.get(l).map_or(0, |c| c.items)))
            .collect::<Vec<_>>()
            .join(", "),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / all.items.max(1) as f64
    );
    let _ = writeln!(
        t,
        "{:<27}| {:^16}| {:^16}| {:^16}| {:^16}",
        "precision / recall / n", "all", "zh-CN", "zh-TW", "en"
    );
    let _ = writeln!(t, "{}", "-".repeat(27 + 4 * 18));
    for key in CATEGORY_KEYS {
        let _ = write!(t, "{key:<27}");
        for counts in std::iter::once(&all).chain(LANGUAGES.iter().map(|l| &by_lang[l])) {
            let (predicted, labelled, correct) =
                counts.per_category.get(key).copied().unwrap_or_default();
            let _ = write!(
                t,
                "| {} {} {:>4}   ",
                pct(ratio(correct, predicted)),
                pct(ratio(correct, labelled)),
                labelled
            );
        }
        let _ = writeln!(t);
    }
    let _ = writeln!(t, "{}", "-".repeat(27 + 4 * 18));
    type Metric = fn(&Counts) -> f64;
    let rows: [(&str, Metric); 5] = [
        ("CATEGORY PRECISION (≠other)", Counts::precision),
        ("category recall (≠other)", Counts::recall),
        ("accuracy (micro, all 10)", |c| ratio(c.correct, c.items)),
        ("sentiment accuracy", |c| {
            ratio(c.sentiment_correct, c.items)
        }),
        ("language detection", |c| ratio(c.language_correct, c.items)),
    ];
    for (name, f) in rows {
        let _ = write!(t, "{name:<27}");
        for counts in std::iter::once(&all).chain(LANGUAGES.iter().map(|l| &by_lang[l])) {
            let _ = write!(t, "| {:>5.1} %         ", f(counts) * 100.0);
        }
        let _ = writeln!(t);
    }
    let _ = writeln!(
        t,
        "committed to a category: {} of {} items; correct {}",
        all.committed, all.items, all.committed_correct
    );
    if show_errors && !errors.is_empty() {
        let _ = writeln!(t, "misclassified (category or sentiment):\n{errors}");
    }
    Report { text: t, all }
}

#[test]
fn classifier_precision_on_labelled_sets() {
    let classifier = Classifier::with_defaults();
    let show = std::env::var("CLASSIFIER_SHOW_ERRORS").is_ok_and(|v| v == "1");
    let tune = evaluate(&classifier, "labelled_tune.jsonl", show);
    let holdout = evaluate(&classifier, "labelled_holdout.jsonl", false);
    let unseen = evaluate(&classifier, "labelled_unseen.jsonl", false);
    let extra = std::env::var("CLASSIFIER_EXTRA_DATA")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| evaluate(&classifier, &p, show).text)
        .unwrap_or_default();
    let report = format!(
        "{}{}{}(labelled_unseen: reported only, see the module docs){extra}",
        tune.text, holdout.text, unseen.text
    );
    println!("{report}");

    let total = tune.all.items + holdout.all.items;
    assert!(
        total >= 360,
        "need at least 360 labelled items, have {total}"
    );
    for (name, r) in [("tune", &tune), ("holdout", &holdout)] {
        assert!(
            r.all.precision() >= MIN_PRECISION,
            "{name}: category precision {:.3} < {MIN_PRECISION}\n{report}",
            r.all.precision()
        );
        assert!(
            r.all.recall() >= MIN_RECALL,
            "{name}: category recall {:.3} < {MIN_RECALL}\n{report}",
            r.all.recall()
        );
    }
}

#[test]
fn data_set_covers_every_category_language_and_sentiment() {
    let mut items = load("labelled_tune.jsonl");
    items.extend(load("labelled_holdout.jsonl"));
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut sentiments: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &items {
        *seen
            .entry((item.language.as_str(), item.category.as_str()))
            .or_default() += 1;
        *sentiments.entry(item.sentiment.as_str()).or_default() += 1;
    }
    for lang in LANGUAGES {
        for key in CATEGORY_KEYS {
            let n = seen.get(&(lang, key)).copied().unwrap_or(0);
            assert!(n >= 5, "{lang}/{key}: only {n} items");
        }
    }
    for s in ["positive", "negative", "neutral", "mixed"] {
        assert!(
            sentiments.get(s).copied().unwrap_or(0) >= 10,
            "{s}: {sentiments:?}"
        );
    }
    let mut texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
    texts.sort_unstable();
    let before = texts.len();
    texts.dedup();
    assert_eq!(before, texts.len(), "duplicate texts in the data set");
}

/// Resident set size in KiB (Linux; 0 elsewhere), for the start-up report below.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// The classifier's cost per item (it runs on every SubmitFeedback): every labelled item
/// classified 200 times, per language. Reports, never asserts (timings depend on the
/// machine). Run in release mode:
/// `cargo test --release -p feedback-intake --test classifier -- --ignored --nocapture classify_cost`
#[test]
#[ignore = "timing report; run in release mode with --ignored --nocapture"]
fn classify_cost_per_item() {
    const ROUNDS: usize = 200;
    let rss_before = rss_kib();
    let started = Instant::now();
    let classifier = Classifier::with_defaults();
    let build = started.elapsed();
    let rss_after = rss_kib();
    println!(
        "start-up: Classifier::with_defaults() {:.2} ms, RSS {} → {} KiB (+{} KiB)",
        build.as_secs_f64() * 1e3,
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before)
    );
    let mut items = load("labelled_tune.jsonl");
    items.extend(load("labelled_holdout.jsonl"));
    items.extend(load("labelled_unseen.jsonl"));
    for lang in LANGUAGES.iter().copied().chain(["all"]) {
        let texts: Vec<&str> = items
            .iter()
            .filter(|i| lang == "all" || i.language == lang)
            .map(|i| i.text.as_str())
            .collect();
        let mut sink = 0usize;
        let started = Instant::now();
        for _ in 0..ROUNDS {
            for text in &texts {
                sink += classifier.classify(text, None).matched.len();
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / (ROUNDS * texts.len()) as f64;
        let chars = texts.iter().map(|t| t.chars().count()).sum::<usize>() / texts.len();
        println!(
            "{lang:<6} {:>4} items (mean {chars:>3} chars) × {ROUNDS}: {ns:>7.0} ns/item  [{sink}]",
            texts.len()
        );
    }
}
