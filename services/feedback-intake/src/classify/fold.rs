//! Text normalisation shared by the rules and the text: traditional Chinese converted to
//! simplified with OpenCC's conversion tables, full-width→ASCII, lower case, and
//! whitespace/hyphen collapsing.
//!
//! The traditional→simplified step is OpenCC's Taiwan-to-mainland conversion (its `tw2sp`
//! and `hk2s` dictionaries: characters, phrases, Taiwan and Hong Kong variant phrases and
//! Taiwan vocabulary such as 網路→网络, 計程車→出租车, 資訊→信息, 螢幕→屏幕), as compiled
//! into the `zhconv` crate (features `opencc-cn` + `opencc-twp`; its MediaWiki tables are
//! not used) and matched leftmost-longest by one automaton, built once per process (about
//! 15 ms at start-up in release; see `classify_cost_per_item` in `tests/classifier.rs`;
//! converting a short traditional text costs about 0.1 µs). Converting both the
//! rules and the text means every Chinese keyword is written once, in simplified script with
//! mainland vocabulary, and still matches traditional text; Taiwan and Hong Kong vocabulary
//! that OpenCC does not convert (冷氣, 櫃檯, CP值, 嘈) is listed in the rules in its
//! converted form (冷气, 柜台).
//!
//! Two details:
//! - zhconv leaves out OpenCC's character entries whose candidates include the character
//!   itself (`乾 → 干 乾`, `於 → 于 於`), where OpenCC takes the first candidate, and
//!   OpenCC's Taiwan variant 著→着; [`SUPPLEMENT`] puts those back so that 乾淨 and 睡不著
//!   convert as OpenCC converts them. Phrases in the tables still win (乾坤, 著名).
//! - Only text that contains a traditional-only character is converted. OpenCC's tables
//!   assume traditional input and rewrite a few simplified words (打坏→打坯, 行程→进程), so a
//!   simplified text (and a simplified keyword) comes out exactly as it went in, apart from
//!   the case, width and space folding.
//!
//! The same data gives the script evidence for language detection ([`script_counts`]): a
//! traditional-only character is one OpenCC's traditional→simplified character table always
//! converts (這, 髒), a simplified-only one is one its simplified→traditional table always
//! converts (这, 脏). Characters both scripts write alike (面, 台, 只, 吃, 板) count for
//! neither. (The simplified→traditional table is compiled in for this only, feature
//! `opencc-hant`; its converter is never built.)

use std::collections::HashMap;
use std::sync::OnceLock;
use zhconv::tables::expand_table;
use zhconv::{Variant, ZhConverter, ZhConverterBuilder, get_builtin_tables};

/// OpenCC conversions that zhconv's build leaves out (see the module docs): the
/// `TSCharacters` entries whose candidates include the character itself, with OpenCC's first
/// candidate, and `TWVariants`' 着→著 reversed (OpenCC `tw2s`).
const SUPPLEMENT: [(&str, &str); 20] = [
    ("乾", "干"),
    ("於", "于"),
    ("著", "着"),
    ("夥", "伙"),
    ("麽", "么"),
    ("徵", "征"),
    ("祕", "秘"),
    ("昇", "升"),
    ("陞", "升"),
    ("釐", "厘"),
    ("蒐", "搜"),
    ("脩", "修"),
    ("氾", "泛"),
    ("剋", "克"),
    ("劄", "札"),
    ("吒", "咤"),
    ("扞", "捍"),
    ("薹", "苔"),
    ("袷", "夹"),
    ("谿", "溪"),
];

struct Fold {
    /// Characters the traditional→simplified tables convert unconditionally to another
    /// character: evidence of traditional script, and what makes a text worth converting.
    traditional: CharSet,
    /// Characters the simplified→traditional tables convert unconditionally, less any of
    /// the above: evidence of simplified script.
    simplified: CharSet,
}

fn fold() -> &'static Fold {
    static FOLD: OnceLock<Fold> = OnceLock::new();
    FOLD.get_or_init(|| {
        let traditional = CharSet::new(
            traditional_to_simplified()
                .iter()
                .filter_map(|(from, to)| changed_char(from, to)),
        );
        let simplified = CharSet::new(
            get_builtin_tables(Variant::ZhHant)
                .iter()
                .flat_map(|&table| expand_table(table))
                .filter_map(|(from, to)| changed_char(&from, &to))
                .filter(|&c| !traditional.contains(c)),
        );
        Fold {
            traditional,
            simplified,
        }
    })
}

/// The traditional→simplified converter, built the first time a text needs it: it holds
/// several MB, and a chain without traditional-script feedback never does (the keyword
/// lists are simplified). Built in ~10 ms, once per process.
fn converter() -> &'static ZhConverter {
    static CONVERTER: OnceLock<ZhConverter> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        let mut mapping = traditional_to_simplified();
        mapping.extend(
            SUPPLEMENT
                .iter()
                .map(|&(t, s)| (t.to_string(), s.to_string())),
        );
        ZhConverter::from_pairs(mapping)
    })
}

/// zhconv's traditional→simplified (zh-CN) pairs, without the supplement.
fn traditional_to_simplified() -> HashMap<String, String> {
    ZhConverterBuilder::new()
        .tables(get_builtin_tables(Variant::ZhCN))
        .build_mapping()
}

/// `from` if it is one character that the pair converts to another single character.
fn changed_char(from: &str, to: &str) -> Option<char> {
    let single = |s: &str| {
        let mut chars = s.chars();
        let c = chars.next()?;
        chars.next().is_none().then_some(c)
    };
    let (f, t) = (single(from)?, single(to)?);
    (f != t).then_some(f)
}

/// A set of characters from U+3400 up (nothing below is script evidence): a bitmap over the
/// main CJK blocks, where nearly all of them are, and a sorted list for the rest. Looked up
/// for every character of every text, so it is a bit test rather than a search.
struct CharSet {
    bits: Vec<u64>,
    rest: Vec<char>,
}

const BITMAP: std::ops::Range<u32> = 0x3400..0xA000;

impl CharSet {
    fn new(chars: impl IntoIterator<Item = char>) -> Self {
        let mut bits = vec![0u64; BITMAP.len().div_ceil(64)];
        let mut rest = Vec::new();
        for c in chars {
            let u = c as u32;
            if BITMAP.contains(&u) {
                let i = (u - BITMAP.start) as usize;
                bits[i / 64] |= 1 << (i % 64);
            } else if u >= BITMAP.end {
                rest.push(c);
            }
        }
        rest.sort_unstable();
        rest.dedup();
        Self { bits, rest }
    }

    fn contains(&self, c: char) -> bool {
        let u = c as u32;
        if u < BITMAP.start {
            false
        } else if u < BITMAP.end {
            let i = (u - BITMAP.start) as usize;
            self.bits[i / 64] >> (i % 64) & 1 == 1
        } else {
            self.rest.binary_search(&c).is_ok()
        }
    }
}

/// A CJK ideograph (the blocks Chinese feedback uses).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A character that continues a Latin-script word: ASCII letters and digits and other
/// alphabetic characters below the CJK blocks (é, ü …). CJK, punctuation, spaces and
/// apostrophes end a word, so "restaurant's" contains the word "restaurant" and an English
/// keyword matches inside Chinese text ("房间wifi很慢").
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || (!c.is_ascii() && (c as u32) < 0x2E80 && c.is_alphabetic())
}

/// Characters that end a clause: negation and intensifiers do not reach across them.
pub(crate) fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | '!' | '?' | ';' | ':' | '\n' | '、' | '。' | '…' | '~' | '(' | ')'
    )
}

/// Normalises `text` into `out` (cleared first): traditional→simplified conversion (only if
/// the text has a traditional-only character; see the module docs), then NFKC-like
/// full-width→ASCII, curly quotes to `'`, hyphens/dashes/underscores and any whitespace run
/// to one space, lower case, leading/trailing space trimmed. Full-width Chinese punctuation
/// (，。！？；：) becomes its ASCII form.
pub(crate) fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    if !text.is_ascii() && text.chars().any(|c| fold().traditional.contains(c)) {
        // Converted first, so that what the tables produce (U盘 for 隨身碟) is normalised too.
        let converted = converter().convert(text);
        push_normalized(&converted, out);
    } else {
        push_normalized(text, out);
    }
}

/// Appends `text` to `out` normalised, without the traditional→simplified conversion.
pub(crate) fn push_normalized(text: &str, out: &mut String) {
    out.reserve(text.len());
    let mut pending_space = false;
    for raw in text.chars() {
        let c = match raw as u32 {
            0xFF01..=0xFF5E => char::from_u32(raw as u32 - 0xFEE0).unwrap_or(raw),
            0x3000 => ' ',
            _ => raw,
        };
        let c = match c {
            '\u{2018}' | '\u{2019}' | '`' | '\u{00B4}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            '-' | '_' | '\u{2010}'..='\u{2015}' => ' ',
            '\u{3002}' => '.',
            _ => c,
        };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
}

pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

/// Script evidence in raw (unconverted) text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScriptCounts {
    pub cjk: usize,
    pub latin_letters: usize,
    pub traditional: usize,
    pub simplified: usize,
}

pub(crate) fn script_counts(text: &str) -> ScriptCounts {
    let fold = fold();
    let mut counts = ScriptCounts::default();
    for c in text.chars() {
        if is_cjk(c) {
            counts.cjk += 1;
            if fold.traditional.contains(c) {
                counts.traditional += 1;
            } else if fold.simplified.contains(c) {
                counts.simplified += 1;
            }
        } else if c.is_alphabetic() && (c as u32) < 0x2E80 {
            counts.latin_letters += 1;
        }
    }
    counts
}

/// The supplement, for the tests.
#[cfg(test)]
pub(crate) fn supplement_for_tests() -> &'static [(&'static str, &'static str)] {
    &SUPPLEMENT
}
