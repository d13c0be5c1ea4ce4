//! JSON Schema → Gemini `Schema`. Gemini takes an OpenAPI 3 subset for tool
//! parameters and `responseSchema` and answers 400 to keys outside it
//! (`$schema`, `additionalProperties`, `strict`, `$ref`, …), which OpenAI
//! clients send routinely. Why an allowlist rather than a blocklist: the
//! subset is small and documented, the JSON Schema vocabulary is not.
//!
//! What changes: keys outside [`KEPT`] are dropped; local `$ref`s into
//! `$defs`/`definitions` are inlined (recursion is cut after
//! [`MAX_REF_DEPTH`] expansions, the rest becoming a plain object);
//! `type: [T, "null"]` becomes `type: T, nullable: true`; `const` becomes a
//! one-value `enum`; `oneOf` becomes `anyOf`; a one-element `allOf` is
//! merged into its parent (longer ones are dropped); `format`s Gemini does not
//! know are dropped. Property names are never touched, even `strict`.

use serde_json::{Map, Value};

/// The fields of Gemini's `Schema` object that are copied through.
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// The `format` values Gemini accepts.
const FORMATS: &[&str] = &["enum", "date-time", "int32", "int64", "float", "double"];

/// How many `$ref`s deep a schema is expanded before recursion is cut.
const MAX_REF_DEPTH: usize = 8;

/// A copy of `schema` that Gemini accepts (see the module docs).
pub fn schema_for_gemini(schema: &Value) -> Value {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    clean(schema, defs, 0)
}

/// True for an object schema without properties, which Gemini rejects as
/// function parameters (a function without parameters omits them instead).
pub fn is_empty_object(schema: &Value) -> bool {
    let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
    let no_properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    is_object && no_properties
}

fn clean(node: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(map) = node.as_object() else {
        return node.clone();
    };
    if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
        return inline_ref(reference, map, defs, depth);
    }
    let mut out = Map::new();
    if let Some([only]) = map
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if let Value::Object(merged) = clean(only, defs, depth) {
            out.extend(merged);
        }
    }
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                if let Some(properties) = value.as_object() {
                    let cleaned = properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), clean(schema, defs, depth)))
                        .collect();
                    out.insert(key.clone(), Value::Object(cleaned));
                }
            }
            "items" => {
                out.insert(key.clone(), clean(value, defs, depth));
            }
            "anyOf" | "oneOf" => {
                if let Some(options) = value.as_array() {
                    let cleaned = options.iter().map(|o| clean(o, defs, depth)).collect();
                    out.insert("anyOf".into(), Value::Array(cleaned));
                }
            }
            "type" => insert_type(&mut out, value),
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "format" if !value.as_str().is_some_and(|f| FORMATS.contains(&f)) => {}
            _ if KEPT.contains(&key.as_str()) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

/// `"type": ["string", "null"]` → `"type": "string", "nullable": true`.
fn insert_type(out: &mut Map<String, Value>, value: &Value) {
    let Some(types) = value.as_array() else {
        out.insert("type".into(), value.clone());
        return;
    };
    let nullable = types.iter().any(|t| t.as_str() == Some("null"));
    if let Some(first) = types.iter().find(|t| t.as_str() != Some("null")) {
        out.insert("type".into(), first.clone());
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
}

fn inline_ref(
    reference: &str,
    node: &Map<String, Value>,
    defs: &Map<String, Value>,
    depth: usize,
) -> Value {
    let name = reference
        .strip_prefix("#/$defs/")
        .or_else(|| reference.strip_prefix("#/definitions/"));
    let target = name.and_then(|name| defs.get(name));
    let mut out = match target {
        Some(target) if depth < MAX_REF_DEPTH => match clean(target, defs, depth + 1) {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        _ => Map::from_iter([("type".to_string(), Value::from("object"))]),
    };
    // A description beside the `$ref` describes this use of it: it wins.
    if let Some(description) = node.get("description") {
        out.insert("description".into(), description.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_unknown_keys_but_not_property_names() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "strict": true,
            "properties": {
                "strict": {"type": "boolean", "examples": [true]},
                "city": {"type": "string", "format": "uri", "minLength": 1},
                "when": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "items": {"type": "string", "additionalProperties": false}}
            },
            "required": ["city"]
        });
        let cleaned = schema_for_gemini(&schema);
        assert_eq!(
            cleaned,
            json!({
                "type": "object",
                "properties": {
                    "strict": {"type": "boolean"},
                    "city": {"type": "string", "minLength": 1},
                    "when": {"type": "string", "format": "date-time"},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn inlines_refs_and_rewrites_unions() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Unit": {"type": "string", "enum": ["c", "f"]},
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
            },
            "properties": {
                "unit": {"$ref": "#/$defs/Unit", "description": "temperature unit"},
                "note": {"type": ["string", "null"]},
                "kind": {"const": "point"},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "wrapped": {"allOf": [{"$ref": "#/$defs/Unit"}], "description": "w"},
                "list": {"$ref": "#/$defs/Node"}
            }
        });
        let cleaned = schema_for_gemini(&schema);
        let properties = &cleaned["properties"];
        assert_eq!(
            properties["unit"],
            json!({"type": "string", "enum": ["c", "f"], "description": "temperature unit"})
        );
        assert_eq!(
            properties["note"],
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(properties["kind"], json!({"enum": ["point"]}));
        assert_eq!(
            properties["either"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            properties["wrapped"],
            json!({"type": "string", "enum": ["c", "f"], "description": "w"})
        );
        assert!(cleaned.get("$defs").is_none());
        // The recursive definition is cut into a plain object eventually.
        let mut node = &properties["list"];
        for _ in 0..MAX_REF_DEPTH {
            node = &node["properties"]["next"];
        }
        assert_eq!(node, &json!({"type": "object"}));
    }

    #[test]
    fn empty_object_detection() {
        assert!(is_empty_object(&json!({"type": "object"})));
        assert!(is_empty_object(
            &json!({"type": "object", "properties": {}})
        ));
        assert!(!is_empty_object(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}})
        ));
    }
}
