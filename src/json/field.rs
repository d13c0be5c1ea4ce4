//! Top-level fields of a JSON object found without parsing the rest.
//!
//! Reading usage from a reply needs only its `usage` object, but serde_json
//! reading a 700-byte chat completion into a struct with one field still
//! walks every string byte by byte and checks each key's UTF-8, and its
//! derived field matching parses the usage object's dozen keys the same way:
//! about 10,000 instructions a request, more than any other step of the
//! gateway's own. [`members`] walks the structure only (string contents are
//! skipped eight bytes at a time) and hands out raw values; the usage reader
//! picks its few integers from them. Nothing skipped is validated: a
//! malformed body can yield a value or nothing, never a panic, and the reply
//! itself is relayed untouched either way.

use super::swar;

/// The raw bytes of `key`'s value in the JSON object `body`, if the object
/// has that key at its top level. Keys are compared as written (a key
/// spelled with escapes does not match); the first occurrence wins.
pub fn top_level<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    members(body).find_map(|(name, value)| (name == key.as_bytes()).then_some(value))
}

/// The members of the JSON object `body`, in order: each key as written
/// (without its quotes) and its value's raw bytes. Ends early, without an
/// error, where the object is malformed; nothing for a body that is not an
/// object (`null` included).
pub fn members(body: &[u8]) -> Members<'_> {
    let at = skip_whitespace(body, 0);
    match body.get(at) {
        Some(b'{') => Members { body, at: at + 1 },
        _ => Members {
            body,
            at: body.len(),
        },
    }
}

pub struct Members<'a> {
    body: &'a [u8],
    /// Just past the `{` or the previous member's `,`.
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let body = self.body;
        let member = self.parse(body);
        if member.is_none() {
            self.at = body.len();
        }
        member
    }
}

impl<'a> Members<'a> {
    fn parse(&mut self, body: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
        let at = skip_whitespace(body, self.at);
        if body.get(at) != Some(&b'"') {
            return None; // `}` (the end) or not an object
        }
        let name_end = string_end(body, at)?;
        let name = &body[at + 1..name_end - 1];
        let colon = skip_whitespace(body, name_end);
        if body.get(colon) != Some(&b':') {
            return None;
        }
        let start = skip_whitespace(body, colon + 1);
        let end = value_end(body, start)?;
        let next = skip_whitespace(body, end);
        self.at = match body.get(next) {
            Some(b',') => next + 1,
            Some(b'}') => body.len(), // the last member
            _ => return None,
        };
        Some((name, &body[start..end]))
    }
}

/// A non-negative integer value (`12`); `None` for anything else (`null`,
/// `1.5`, `-3`, a string, more than a u64 holds).
pub fn u64_value(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    value.iter().try_fold(0u64, |total, &byte| match byte {
        b'0'..=b'9' => total.checked_mul(10)?.checked_add(u64::from(byte - b'0')),
        _ => None,
    })
}

fn skip_whitespace(body: &[u8], mut at: usize) -> usize {
    while body.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// `body[at]` is an opening quote; the index just past the closing one.
/// Reads eight bytes at a time until a `"` or `\` is among them: most
/// strings are short keys, where a call into `memchr` cost more than it saved.
fn string_end(body: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        while let Some(word) = swar::word_at(body, at) {
            let found = swar::equal(word, b'"') | swar::equal(word, b'\\');
            if found != 0 {
                at += swar::first(found);
                break;
            }
            at += 8;
        }
        match body.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

/// The index just past the value starting at `body[at]`.
fn value_end(body: &[u8], at: usize) -> Option<usize> {
    match body.get(at)? {
        b'"' => string_end(body, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match body.get(at)? {
                    b'"' => {
                        at = string_end(body, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        // A number, true, false or null: up to the next delimiter.
        _ => {
            let rest = &body[at..];
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            (len > 0).then_some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
        top_level(body.as_bytes(), key).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn finds_top_level_values_of_every_kind() {
        let body = r#" { "a" : 1 , "b":"x\"}y", "c":{"d":[1,{"e":"]"}]}, "usage" :{"n":2}, "t":true,"z":null } "#;
        assert_eq!(field(body, "a"), Some("1"));
        assert_eq!(field(body, "b"), Some(r#""x\"}y""#));
        assert_eq!(field(body, "c"), Some(r#"{"d":[1,{"e":"]"}]}"#));
        assert_eq!(field(body, "usage"), Some(r#"{"n":2}"#));
        assert_eq!(field(body, "t"), Some("true"));
        assert_eq!(field(body, "z"), Some("null"));
        assert_eq!(field(body, "missing"), None);
    }

    #[test]
    fn nested_and_quoted_keys_do_not_count() {
        let body = r#"{"choices":[{"usage":{"n":1},"text":"\"usage\":{\"n\":3}"}],"id":"u\\"}"#;
        assert_eq!(field(body, "usage"), None);
        assert_eq!(field(body, "id"), Some(r#""u\\""#));
        // The first occurrence wins.
        assert_eq!(field(r#"{"k":1,"k":2}"#, "k"), Some("1"));
    }

    #[test]
    fn agrees_with_serde_json_on_every_field_of_real_bodies() {
        let bodies = [
            include_str!("../../bench/fixtures/chat.json"),
            r#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"caf\u00e9 \\ \/ \n"}],"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":-7.5e3}}"#,
            "{}",
            "{ }",
        ];
        for body in bodies {
            let parsed: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(body).unwrap();
            for (key, value) in &parsed {
                let raw = top_level(body.as_bytes(), key).expect(key);
                let scanned: serde_json::Value = serde_json::from_slice(raw).unwrap();
                assert_eq!(&scanned, value, "{key} in {body}");
            }
        }
    }

    #[test]
    fn malformed_bodies_give_none_without_panicking() {
        for body in [
            "",
            "[1]",
            "\"s\"",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":1",
            "{\"a\" 1}",
            "{\"a\":[1,",
            "{\"a\":\"x",
            "{\"a\":\"x\\",
            "{\"a\":1 \"b\":2}",
            "{\"a\":}",
            "{1:2}",
            "}",
        ] {
            assert_eq!(top_level(body.as_bytes(), "b"), None, "{body:?}");
        }
        // Unbalanced closers inside a value end it early rather than underflow.
        assert_eq!(field(r#"{"a":[1]],"b":2}"#, "b"), None);
    }

    #[test]
    fn members_in_order_and_integers() {
        let body = br#"{"a":1, "b" : {"c":[2]} ,"d":"x"}"#;
        let found: Vec<(&[u8], &[u8])> = members(body).collect();
        assert_eq!(
            found,
            [
                (&b"a"[..], &b"1"[..]),
                (b"b", br#"{"c":[2]}"#),
                (b"d", br#""x""#)
            ]
        );
        assert_eq!(members(b"null").count(), 0);
        assert_eq!(members(b"{}").count(), 0);
        // A malformed tail ends the members after the good ones.
        assert_eq!(members(br#"{"a":1,"b" 2}"#).count(), 1);
        assert_eq!(u64_value(b"0"), Some(0));
        assert_eq!(u64_value(b"18446744073709551615"), Some(u64::MAX));
        for not_u64 in [
            &b"18446744073709551616"[..],
            b"",
            b"-1",
            b"1.5",
            b"1e3",
            b"null",
            b"\"7\"",
        ] {
            assert_eq!(u64_value(not_u64), None, "{not_u64:?}");
        }
    }

    #[test]
    fn strings_end_at_the_right_quote_wherever_it_falls_in_a_word() {
        for len in 0..40 {
            for special in 0..len {
                let mut text = vec![b'x'; len];
                text[special] = b'\\';
                if special + 1 < len {
                    text[special + 1] = b'"'; // escaped: part of the string
                }
                let mut body = b"{\"k\":\"".to_vec();
                body.extend_from_slice(&text);
                if text.last() == Some(&b'\\') && (special + 1 == len) {
                    body.push(b'\\'); // keep the final escape complete
                }
                body.extend_from_slice(b"\",\"z\":1}");
                let value = top_level(&body, "k").expect("k");
                let parsed: String = serde_json::from_slice(value).unwrap();
                let expected: String = serde_json::from_slice::<serde_json::Value>(&body).unwrap()
                    ["k"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(parsed, expected, "{}", String::from_utf8_lossy(&body));
                assert_eq!(top_level(&body, "z"), Some(&b"1"[..]));
            }
        }
    }

    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> serde_json::Value {
        use serde_json::Value;
        const PIECES: [&str; 10] = ["a", "{", "}", "[", "]", "\"", "\\", ":", ",", " usage "];
        let text = |rng: &mut fastrand::Rng| -> String {
            (0..rng.usize(0..12))
                .map(|_| PIECES[rng.usize(..PIECES.len())])
                .collect()
        };
        match (depth, rng.u8(0..6)) {
            (0, _) | (_, 0) => Value::String(text(rng)),
            (_, 1) => Value::from(rng.u64(..)),
            (_, 2) => Value::Bool(rng.bool()),
            (_, 3) => Value::Null,
            (_, 4) => Value::Array(
                (0..rng.usize(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.usize(0..4))
                    .map(|_| (text(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_nested_bodies() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let mut object = serde_json::Map::new();
            for i in 0..rng.usize(1..6) {
                object.insert(format!("k{i}"), random_value(&mut rng, 4));
            }
            let compact = serde_json::to_string(&object).unwrap();
            let pretty = serde_json::to_string_pretty(&object).unwrap();
            for body in [compact, pretty] {
                for (key, value) in &object {
                    let raw = top_level(body.as_bytes(), key).expect(key);
                    let scanned: serde_json::Value = serde_json::from_slice(raw).unwrap();
                    assert_eq!(&scanned, value, "{key} in {body}");
                }
            }
        }
    }
}
