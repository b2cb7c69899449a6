//! A deterministic JSON document that satisfies a JSON Schema: tool-call
//! arguments and structured-output answers are built from the schema the
//! client sent, so a client that validates them (an SDK parsing into a
//! Pydantic model) accepts them.
//!
//! Rules, per schema node: `const`, else the first `enum` value; `$ref`
//! (`#/$defs/...`, `#/definitions/...`, any JSON pointer into the root) is
//! followed; `allOf` is merged; `anyOf`/`oneOf` take the first branch that
//! is not `null` (the `null` branch once nesting is deep, so recursive
//! models end); a type list takes its first type that is not `null`.
//! Objects get every declared property; arrays `minItems` items, at least
//! one, at most `maxItems`; integers 1 and numbers 1.5, moved into
//! `minimum`/`maximum`; booleans true; strings the filler text once (the
//! first plain string met), `sim` after that, or a sample of their `format`,
//! padded or cut to `minLength`/`maxLength`. Types are read case-blind
//! (Gemini writes `OBJECT`).

use serde_json::{Map, Value};

/// Nesting past which optional branches end in `null` and arrays stay
/// empty where they may, so self-referencing schemas end.
const MAX_DEPTH: usize = 12;

/// A document satisfying `schema`; the first plain string holds `filler`
/// when given, every other string is `sim`.
pub(crate) fn example(schema: &Value, filler: Option<&str>) -> Value {
    let mut builder = Builder {
        root: schema,
        filler: filler.map(str::to_string),
    };
    builder.value(schema, 0)
}

struct Builder<'a> {
    root: &'a Value,
    /// The text for the first plain string, taken when used.
    filler: Option<String>,
}

impl Builder<'_> {
    fn value(&mut self, schema: &Value, depth: usize) -> Value {
        let schema = self.resolve(schema, depth);
        let schema = merge_all_of(&schema, |s| self.resolve(s, depth));
        if let Some(c) = schema.get("const") {
            return c.clone();
        }
        if let Some(first) = schema
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return first.clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let deep = depth >= MAX_DEPTH;
                let pick = branches
                    .iter()
                    .find(|b| is_null(b) == deep)
                    .or_else(|| branches.first());
                if let Some(branch) = pick {
                    return self.value(branch, depth + 1);
                }
            }
        }
        match type_of(&schema).as_str() {
            "object" => self.object(&schema, depth),
            "array" => self.array(&schema, depth),
            "integer" => number(&schema, 1.0, true),
            "number" => number(&schema, 1.5, false),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => self.string(&schema),
        }
    }

    /// Follows `$ref`s into the root (a bounded number of times).
    fn resolve(&self, schema: &Value, depth: usize) -> Value {
        let mut current = schema.clone();
        for _ in 0..MAX_DEPTH.saturating_sub(depth).max(1) {
            let Some(target) = current
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| self.root.pointer(pointer))
            else {
                break;
            };
            current = target.clone();
        }
        current
    }

    fn object(&mut self, schema: &Value, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (name, prop) in props {
                // Deep down, only what must be there, so recursion ends.
                if depth >= MAX_DEPTH && !required.contains(&name.as_str()) {
                    continue;
                }
                out.insert(name.clone(), self.value(prop, depth + 1));
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, schema: &Value, depth: usize) -> Value {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = schema.get("maxItems").and_then(Value::as_u64);
        let wanted = if depth >= MAX_DEPTH { min } else { min.max(1) };
        let count = max.map_or(wanted, |max| wanted.min(max));
        let prefix = schema
            .get("prefixItems")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let items = schema.get("items").cloned().unwrap_or(Value::Null);
        let mut out = Vec::new();
        for i in 0..count.max(u64::try_from(prefix.len()).unwrap_or(0)) {
            let item = usize::try_from(i)
                .ok()
                .and_then(|i| prefix.get(i))
                .unwrap_or(&items);
            out.push(self.value(item, depth + 1));
        }
        Value::Array(out)
    }

    fn string(&mut self, schema: &Value) -> Value {
        let sample = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Some("2025-01-01T00:00:00Z"),
            Some("date") => Some("2025-01-01"),
            Some("time") => Some("00:00:00Z"),
            Some("email") => Some("sim@example.com"),
            Some("uri" | "url") => Some("https://example.com/sim"),
            Some("uuid") => Some("00000000-0000-4000-8000-000000000000"),
            Some("ipv4") => Some("192.0.2.1"),
            Some("ipv6") => Some("2001:db8::1"),
            _ => None,
        };
        if let Some(sample) = sample {
            return Value::from(sample);
        }
        let mut text = self.filler.take().unwrap_or_else(|| "sim".to_string());
        let len = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        if let Some(max) = len("maxLength") {
            text = text.chars().take(max).collect();
        }
        if let Some(min) = len("minLength") {
            while text.chars().count() < min {
                text.push('x');
            }
        }
        Value::from(text)
    }
}

/// The schema's type, lower case; `string` when it names none (and an
/// object when it declares properties).
fn type_of(schema: &Value) -> String {
    match schema.get("type") {
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".to_string(),
        _ if schema.get("items").is_some() => "array".to_string(),
        _ => "string".to_string(),
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// `allOf` folded into one schema: the parts' properties and required
/// names joined, other keys from the first part that has them.
fn merge_all_of(schema: &Value, resolve: impl Fn(&Value) -> Value) -> Value {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut merged = match schema {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    merged.remove("allOf");
    for part in parts {
        let Value::Object(part) = resolve(part) else {
            continue;
        };
        for (key, value) in part {
            match (key.as_str(), merged.get_mut(&key), value) {
                ("properties", Some(Value::Object(into)), Value::Object(more)) => {
                    into.extend(more);
                }
                ("required", Some(Value::Array(into)), Value::Array(more)) => into.extend(more),
                (_, Some(_), _) => {}
                (_, None, value) => {
                    merged.insert(key, value);
                }
            }
        }
    }
    Value::Object(merged)
}

/// A number in the schema's bounds: `preferred` unless a bound moves it.
fn number(schema: &Value, preferred: f64, integer: bool) -> Value {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let step = if integer { 1.0 } else { 0.5 };
    let mut n = preferred;
    if let Some(min) = bound("minimum") {
        n = n.max(min);
    }
    if let Some(min) = bound("exclusiveMinimum")
        && n <= min
    {
        n = min + step;
    }
    if let Some(max) = bound("maximum") {
        n = n.min(max);
    }
    if let Some(max) = bound("exclusiveMaximum")
        && n >= max
    {
        n = max - step;
    }
    if integer {
        let n = n.ceil();
        // Bounds are small in practice; out of i64's range an integer
        // schema gets its bound as a float, which still compares right.
        if n.abs() < 9.0e15 {
            return Value::from(n as i64);
        }
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounds_formats_and_lengths_are_kept() {
        let schema = json!({"type": "object", "properties": {
            "age": {"type": "integer", "minimum": 18, "maximum": 99},
            "score": {"type": "number", "exclusiveMaximum": 1},
            "low": {"type": "integer", "maximum": -3},
            "when": {"type": "string", "format": "date-time"},
            "code": {"type": "string", "minLength": 5, "maxLength": 6},
            "short": {"type": "string", "maxLength": 9},
            "pad": {"type": "string", "minLength": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "none": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
            "fixed": {"const": 7}
        }});
        // Keys are read in order: `code` is the first plain string, so it
        // takes the filler, cut to its `maxLength`.
        assert_eq!(
            example(&schema, Some("Simulated answer")),
            json!({"age": 18, "code": "Simula", "fixed": 7, "low": -3, "none": [],
                "pad": "simxx", "score": 0.5, "short": "sim", "tags": ["sim", "sim"],
                "when": "2025-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn all_of_refs_and_recursion() {
        // Older Pydantic wraps a described `$ref` in `allOf`; a tree refers
        // to itself through an optional child.
        let schema = json!({
            "definitions": {
                "Node": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "child": {"anyOf": [{"$ref": "#/definitions/Node"}, {"type": "null"}]}
                }, "required": ["name", "child"]},
                "Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
            },
            "allOf": [{"$ref": "#/definitions/Base"}, {"properties": {"tree": {"$ref": "#/definitions/Node"}}}]
        });
        let doc = example(&schema, None);
        assert_eq!(doc["id"], 1);
        let mut node = &doc["tree"];
        let mut depth = 0;
        while !node.is_null() {
            assert_eq!(node["name"], "sim");
            node = &node["child"];
            depth += 1;
        }
        assert!(depth > 1 && depth <= MAX_DEPTH, "{depth}");
    }

    #[test]
    fn a_schema_without_a_type_reads_its_shape() {
        assert_eq!(
            example(
                &json!({"properties": {"a": {"type": ["null", "boolean"]}}}),
                None
            ),
            json!({"a": true})
        );
        assert_eq!(
            example(&json!({"items": {"type": "integer"}}), None),
            json!([1])
        );
        assert_eq!(example(&json!({}), Some("text")), json!("text"));
    }
}
