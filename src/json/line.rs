//! A flat JSON object written field by field, byte for byte what
//! `serde_json::to_string` writes for a struct of the same fields, for the
//! usage record every request writes. serde_json's derived serializer spent
//! about 6,500 instructions a record, most of it escaping strings one byte
//! at a time; [`JsonObject`] writes its keys (the caller's literals) as
//! they are, looks at values eight bytes at a time, copies a value whole
//! when it needs no escape (the usual case: ids, paths, model names) and
//! escapes it as serde_json does otherwise.

use super::swar;

/// An object being written: `{`, then fields, then [`JsonObject::finish`].
pub struct JsonObject {
    out: String,
    empty: bool,
}

impl JsonObject {
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        JsonObject { out, empty: true }
    }

    /// `key` is a literal of the caller's that needs no escape.
    fn key(&mut self, key: &str) {
        debug_assert!(first_escape(key.as_bytes()).is_none(), "{key}");
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_string(&mut self.out, value);
    }

    /// `null` for `None`, as serde writes an `Option` it does not skip.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    pub fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    pub fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(value) => self.u64(key, value),
            None => self.null(key),
        }
    }

    /// Shortest round-trip form, by the formatter serde_json uses (`0.0`,
    /// `1.5e-7`, `1e+21`); `null` when not finite.
    pub fn f64(&mut self, key: &str, value: f64) {
        self.key(key);
        match value.is_finite() {
            true => self.out.push_str(zmij::Buffer::new().format_finite(value)),
            false => self.out.push_str("null"),
        }
    }

    pub fn null(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    pub fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `value` as a JSON string, escaped as serde_json escapes it: `"`, `\\` and
/// control characters only (short forms where JSON has them).
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    while let Some(at) = first_escape(rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let byte = rest.as_bytes()[at];
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
        // The escaped byte is ASCII, so `at + 1` is a char boundary.
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// The first byte JSON requires escaped: `"`, `\\` or a control character.
fn first_escape(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(word) = swar::word_at(bytes, at) {
        let found = swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::below(word, 0x20);
        if found != 0 {
            return Some(at + swar::first(found));
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Sample<'a> {
        text: &'a str,
        maybe: Option<&'a str>,
        flag: bool,
        count: u64,
        ms: Option<u64>,
        cost: f64,
    }

    fn written(sample: &Sample) -> String {
        let mut object = JsonObject::with_capacity(16);
        object.str("text", sample.text);
        object.opt_str("maybe", sample.maybe);
        object.bool("flag", sample.flag);
        object.u64("count", sample.count);
        object.opt_u64("ms", sample.ms);
        object.f64("cost", sample.cost);
        object.finish()
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let every_control: String = (0u8..0x20).map(char::from).collect();
        let texts = [
            "",
            "req_0123456789abcdef01234567",
            "say \"hi\" \\ back",
            "line\nbreak\ttab\r\u{8}\u{c}",
            every_control.as_str(),
            "café ☕ \u{7f} 𝄞 </script>",
            "\"",
            "\\",
        ];
        let costs = [
            0.0,
            1.0,
            0.000_012_3,
            1.5e-7,
            123_456.789,
            1e21,
            f64::MAX,
            -0.0,
        ];
        for (i, text) in texts.iter().enumerate() {
            for (j, cost) in costs.iter().enumerate() {
                let sample = Sample {
                    text,
                    maybe: (i % 2 == 0).then_some(texts[(i + j) % texts.len()]),
                    flag: j % 2 == 0,
                    count: [0, 7, u64::MAX][j % 3],
                    ms: (j % 3 != 0).then_some(j as u64 * 1000),
                    cost: *cost,
                };
                assert_eq!(written(&sample), serde_json::to_string(&sample).unwrap());
            }
        }
    }

    #[test]
    fn non_finite_numbers_are_null_like_serde_json() {
        for cost in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let sample = Sample {
                text: "x",
                maybe: None,
                flag: true,
                count: 1,
                ms: None,
                cost,
            };
            assert_eq!(written(&sample), serde_json::to_string(&sample).unwrap());
        }
    }
}
