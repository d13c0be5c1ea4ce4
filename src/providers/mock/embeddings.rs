//! The mock's OpenAI embeddings: deterministic unit vectors hashed from the input.

use serde_json::{json, Value};

use super::{bad_request, estimate_tokens, MockError};

/// Embedding inputs as (text to hash, token count): a string, strings, a token
/// array or token arrays.
fn embedding_inputs(input: &Value) -> Result<Vec<(String, u64)>, MockError> {
    let invalid =
        || bad_request("input: must be a string, an array of strings or an array of token arrays");
    let tokens = |items: &[Value]| -> Option<(String, u64)> {
        let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
        let ids = ids?;
        Some((format!("{ids:?}"), ids.len() as u64))
    };
    match input {
        Value::String(text) => Ok(vec![(text.clone(), estimate_tokens(text))]),
        Value::Array(items) if items.is_empty() => Err(invalid()),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Ok(vec![tokens(items).ok_or_else(invalid)?])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Some((text.clone(), estimate_tokens(text))),
                Value::Array(ids) => tokens(ids),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid),
        _ => Err(invalid()),
    }
}

/// A deterministic unit vector derived from `text` (FNV-1a seed, splitmix64 stream).
fn embedding_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    let raw: Vec<f64> = (0..dimensions).map(|_| next()).collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// Standard base64 of the little-endian floats, as OpenAI sends for `encoding_format: "base64"`.
fn base64_floats(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let symbol = if i <= group.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63]
            } else {
                b'='
            };
            out.push(char::from(symbol));
        }
    }
    out
}

/// An embeddings `list`: 8 dimensions unless `dimensions` (1..=3072) says otherwise.
pub fn openai_embeddings(req: &Value, model: &str) -> Result<Value, MockError> {
    let inputs = embedding_inputs(req.get("input").unwrap_or(&Value::Null))?;
    let dimensions = match req.get("dimensions") {
        None | Some(Value::Null) => 8,
        Some(value) => value
            .as_u64()
            .filter(|d| (1..=3072).contains(d))
            .ok_or_else(|| bad_request("dimensions: must be an integer from 1 to 3072"))?
            as usize,
    };
    let base64 = req["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, (text, _))| {
            let vector = embedding_vector(text, dimensions);
            let embedding = if base64 {
                json!(base64_floats(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|(_, tokens)| tokens).sum();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(reply: &Value, index: usize) -> Vec<f64> {
        let values = reply["data"][index]["embedding"].as_array().unwrap();
        values.iter().map(|v| v.as_f64().unwrap()).collect()
    }

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let reply = openai_embeddings(&json!({"input": ["cat", "dog", "cat"]}), "emb").unwrap();
        assert_eq!(reply["object"], "list");
        assert_eq!(reply["model"], "emb");
        assert_eq!(reply["data"][1]["object"], "embedding");
        assert_eq!(reply["data"][2]["index"], 2);
        let (cat, dog) = (vector(&reply, 0), vector(&reply, 1));
        assert_eq!(cat.len(), 8);
        assert_eq!(cat, vector(&reply, 2));
        assert_ne!(cat, dog);
        let norm: f64 = cat.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(
            reply["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );
        let single = openai_embeddings(&json!({"input": "cat"}), "emb").unwrap();
        assert_eq!(vector(&single, 0), cat);
    }

    #[test]
    fn embeddings_dimensions_tokens_and_base64() {
        let reply = openai_embeddings(&json!({"input": "x", "dimensions": 256}), "e").unwrap();
        assert_eq!(vector(&reply, 0).len(), 256);
        for bad in [json!(0), json!(3073), json!("8")] {
            assert!(openai_embeddings(&json!({"input": "x", "dimensions": bad}), "e").is_err());
        }
        let tokens = openai_embeddings(&json!({"input": [[1, 2, 3], [4]]}), "e").unwrap();
        assert_eq!(tokens["usage"]["prompt_tokens"], 4);
        let one = openai_embeddings(&json!({"input": [1, 2, 3]}), "e").unwrap();
        assert_eq!(vector(&one, 0), vector(&tokens, 0));
        for bad in [
            json!({}),
            json!({"input": []}),
            json!({"input": [true]}),
            json!({"input": ["a", 1]}),
        ] {
            assert!(openai_embeddings(&bad, "e").is_err(), "{bad}");
        }
        let b64 = openai_embeddings(
            &json!({"input": "x", "dimensions": 2, "encoding_format": "base64"}),
            "e",
        )
        .unwrap();
        let expected = base64_floats(&embedding_vector("x", 2));
        assert_eq!(b64["data"][0]["embedding"], json!(expected));
        assert_eq!(expected.len(), 12);
        assert_eq!(base64_floats(&[1.0]), "AACAPw==");
        assert_eq!(base64_floats(&[0.0, 1.0, 1.0]), "AAAAAAAAgD8AAIA/");
    }
}
