//! The choice bytes a random message is drawn from, and the values drawn from them: text
//! that parsers trip on (empty, huge, non-ASCII, control characters, template syntax, the
//! test chain's ids and the schema's own field names), integer extremes, timestamps at
//! chrono's limits.

use super::index;

/// The choice bytes a message is drawn from; zeros once they run out, so every input
/// gives a message (short inputs give small, mostly-default ones).
#[derive(Debug, Clone)]
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            self.u32() as usize % n
        }
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// The bytes left, taken.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// Text of every kind a request field may carry.
    pub fn text(&mut self) -> String {
        match self.byte() % 12 {
            0 => String::new(),
            1 | 2 => {
                let n = self.below(24);
                (0..n)
                    .map(|_| ALPHABET[self.below(ALPHABET.len())] as char)
                    .collect()
            }
            3 | 4 => WORDS[self.below(WORDS.len())].to_string(),
            5 => {
                // A field or enum name of the protos: field masks, template kinds, roles.
                let names = &index().names;
                names[self.below(names.len())].clone()
            }
            6 => {
                let n = self.below(16);
                (0..n)
                    .map(|_| char::from_u32(self.u32() % 0x11_0000).unwrap_or('\u{FFFD}'))
                    .collect()
            }
            7 => {
                // Long text: over every length limit a parser has (they are 16 to 10 000
                // characters), multi-byte characters included.
                let c = ['x', 'é', '字', '😀', ' ', '1'][self.below(6)];
                let n = [101, 201, 2001, 4001, 10_001, 70_000][self.below(6)];
                std::iter::repeat_n(c, n).collect()
            }
            8 => {
                // Two words around a separator, with surrounding white space.
                let a = WORDS[self.below(WORDS.len())];
                let b = WORDS[self.below(WORDS.len())];
                let sep = [" ", "", "\n", "\t", "\u{3000}", "\u{0}", "@", "."][self.below(8)];
                format!(" {a}{sep}{b} ")
            }
            9 => {
                let n = self.below(24);
                (0..n)
                    .map(|_| (b'0' + self.below(10) as u8) as char)
                    .collect()
            }
            10 => uuid_text(self),
            _ => {
                let n = self.below(12);
                (0..n)
                    .map(|_| {
                        let c = self.byte();
                        if c < 0x80 { c as char } else { '\u{7f}' }
                    })
                    .collect()
            }
        }
    }

    /// An integer of the kind parsers compare against limits.
    pub fn int(&mut self) -> i64 {
        match self.byte() % 10 {
            0 => 0,
            1 => 1,
            2 => -1,
            3 | 4 => self.below(64) as i64,
            5 => [
                i64::MIN,
                i64::MAX,
                i64::from(i32::MIN),
                i64::from(i32::MAX),
                i64::from(u32::MAX),
            ][self.below(5)],
            6 => [999, 1000, 1001, 999_999_999, 1_000_000_000, 2_000_000_000][self.below(6)],
            7 => -(self.below(1000) as i64),
            _ => self.u64() as i64,
        }
    }

    /// Seconds since the epoch: ordinary instants, the limits of chrono (year ±262 143) and
    /// of PostgreSQL, and any 64-bit number.
    pub fn seconds(&mut self) -> i64 {
        match self.byte() % 8 {
            0 => 0,
            1 | 2 => 1_700_000_000 + self.below(200_000_000) as i64 - 100_000_000,
            3 => [
                8_210_266_876_799,  // +262143-12-31T23:59:59Z, chrono's last second
                8_210_266_876_800,  // one past it
                -8_334_601_228_800, // -262143-01-01, chrono's first
                -8_334_601_228_801, // one before it
                253_402_300_799,    // 9999-12-31T23:59:59Z
                -62_135_596_800,    // 0001-01-01
                -210_866_803_200,   // 4713 BC, PostgreSQL's first day
                9_224_318_015_999,  // PostgreSQL's last timestamp
                946_684_799,        // just before 2000
            ][self.below(9)],
            4 => self.u64() as i64,
            5 => 4_102_444_800 + self.below(1 << 20) as i64, // after 2100
            6 => -(self.below(1 << 30) as i64),
            _ => 1_800_000_000,
        }
    }

    pub fn nanos(&mut self) -> i32 {
        match self.byte() % 6 {
            0 | 1 => 0,
            2 => self.below(1_000_000_000) as i32,
            3 => [999_999_999, 1_000_000_000, 1_999_999_999, 2_000_000_000][self.below(4)],
            4 => [-1, i32::MIN, i32::MAX][self.below(3)],
            _ => self.u32() as i32,
        }
    }
}

const ALPHABET: &[u8] = b"abcxyzAZ09_-.@+ {}()/:\n\t\x07";

/// Values parsers look for: ids of the test chain, languages, contact shapes, template
/// syntax, keys of the scheduler's own namespace, a traceparent.
const WORDS: &[&str] = &[
    "sh-bund",
    "hz-lake",
    "hk-harbour",
    "sz-bay",
    "east",
    "south",
    "zh-CN",
    "zh-TW",
    "en",
    "zh-Hant-HK",
    "li.wei@example.com",
    "a@b",
    "+8613800138000",
    "+0123",
    "13800138000",
    "wxid_abc123",
    "VIP-12345",
    "CNY",
    "usd",
    "0195a3c0-5f1e-7b62-9a4e-6f1b2c3d4e5f",
    "00000000-0000-0000-0000-000000000000",
    "stay/",
    "case/",
    "guest/x/birthday/2026",
    "{{guest_name}}",
    "{{",
    "}}",
    "{{ bad name }}",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "channel:1",
    "category:x",
    "duty_manager",
    "regional_manager",
    "satisfaction_survey",
    "email",
    "房间很脏，服务态度差",
    "房間很髒",
    "not clean but friendly",
    "eyJ0IjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpZCI6IjAifQ",
    "e30",
];

fn uuid_text(c: &mut Choices<'_>) -> String {
    let hex = b"0123456789abcdef";
    let mut s: String = (0..32).map(|_| hex[c.below(16)] as char).collect();
    for i in [20, 16, 12, 8] {
        s.insert(i, '-');
    }
    s
}
