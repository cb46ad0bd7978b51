//! Structured output: a deterministic instance of a JSON Schema as SDKs emit it (pydantic, zod, hand-written), and
//! the output formats a chat request can ask for (`format`: `response_format`, Responses `text.format`, Ollama `format`).
//!
//! The generator fills every property (strict mode requires all), takes `const`, the first `enum` value, `default`,
//! the first branch of `anyOf`/`oneOf`, the merge of `allOf`, follows `$ref` into `#/$defs`, `#/definitions` or any
//! `#/...` pointer (a depth bound stops recursive schemas), honours `items`/`prefixItems`, `minItems`/`maxItems`,
//! `minLength`/`maxLength`, `minimum`/`maximum` (also exclusive), `multipleOf` and the common `format`s. Anything
//! it does not know (`pattern`, `not`, `if`) is ignored; no input makes it panic.

use serde_json::{json, Map, Value};
use std::cell::Cell;

/// How deep `$ref`s nest before the generator picks the shortest way out (null branch, empty array).
const REF_DEPTH: usize = 4;
/// A hard bound on nesting of any kind, whatever the schema says.
const MAX_DEPTH: usize = 48;
/// At most this many items in one generated array.
const MAX_ITEMS: u64 = 32;
/// At most this many values in one instance (a wide recursive schema would otherwise grow exponentially).
const MAX_NODES: u32 = 5_000;

mod format;

pub(crate) use format::{response_format, schema_format, type_name, OutputFormat};

/// A deterministic instance of `schema`. Free-form strings are `text` when given (a tool call echoes the prompt),
/// else derived from the property name.
pub(crate) fn instance(schema: &Value, text: Option<&str>) -> Value {
    let g = Gen {
        root: schema,
        text,
        nodes: Cell::new(0),
    };
    g.value(schema, "", 0, 0, 0)
}

struct Gen<'a> {
    root: &'a Value,
    text: Option<&'a str>,
    nodes: Cell<u32>,
}

fn type_names(s: &Map<String, Value>) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn has_ref(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key("$ref") || o.values().any(has_ref),
        Value::Array(a) => a.iter().any(has_ref),
        _ => false,
    }
}

fn num(s: &Map<String, Value>, k: &str) -> Option<f64> {
    s.get(k).and_then(Value::as_f64).filter(|f| f.is_finite())
}

fn count(s: &Map<String, Value>, k: &str) -> Option<u64> {
    s.get(k).and_then(Value::as_u64)
}

impl Gen<'_> {
    /// Resolves a local `$ref` (`#`, `#/$defs/X`, `#/definitions/X`, any JSON pointer); unknown refs are `{}`.
    fn resolve(&self, r: &str) -> Value {
        let Some(ptr) = r.strip_prefix('#') else {
            return json!({});
        };
        let ptr = ptr.replace("~1", "/").replace("~0", "~");
        self.root.pointer(&ptr).cloned().unwrap_or_else(|| json!({}))
    }

    /// `s` with `$ref` and `allOf` folded in (siblings of `$ref` win over the target).
    fn flatten(&self, s: &Map<String, Value>, depth: usize) -> Map<String, Value> {
        let mut out = Map::new();
        if depth > MAX_DEPTH {
            return out;
        }
        if let Some(Value::String(r)) = s.get("$ref") {
            if let Value::Object(target) = self.resolve(r) {
                out = self.flatten(&target, depth + 1);
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            for branch in all {
                if let Value::Object(b) = branch {
                    merge(&mut out, self.flatten(b, depth + 1));
                }
            }
        }
        let own: Map<String, Value> = s
            .iter()
            .filter(|(k, _)| *k != "$ref" && *k != "allOf")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merge(&mut out, own);
        out
    }

    fn value(&self, schema: &Value, name: &str, i: u64, depth: usize, refs: usize) -> Value {
        let s = match schema {
            Value::Object(s) => s,
            Value::Bool(false) => return Value::Null,
            _ => return self.untyped(name, i),
        };
        self.nodes.set(self.nodes.get().saturating_add(1));
        let refs = refs + usize::from(s.contains_key("$ref"));
        // Past every bound (a ref cycle with no way out, a huge schema): the shortest value.
        if depth > MAX_DEPTH || refs > 2 * REF_DEPTH || self.nodes.get() > MAX_NODES {
            return Value::Null;
        }
        let s = self.flatten(s, depth);
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(Value::Array(e)) = s.get("enum") {
            if let Some(first) = e.first() {
                return first.clone();
            }
        }
        if let Some(d) = s.get("default").filter(|d| !d.is_null()) {
            return d.clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = s.get(key) {
                // Deep in recursive refs, the way out (a branch without a ref: usually `null`) wins.
                let pick = if refs >= REF_DEPTH {
                    branches.iter().find(|b| !has_ref(b)).or(branches.first())
                } else {
                    branches.first()
                };
                if let Some(b) = pick {
                    let mut merged = s.clone();
                    merged.remove("anyOf");
                    merged.remove("oneOf");
                    if let Value::Object(bo) = b {
                        merge(&mut merged, bo.clone());
                    }
                    return self.value(&Value::Object(merged), name, i, depth + 1, refs);
                }
            }
        }
        let types = type_names(&s);
        let t = types
            .iter()
            .find(|t| **t != "null")
            .copied()
            .or(types.first().copied())
            .unwrap_or_else(|| infer(&s, name));
        match t {
            "object" => self.object(&s, depth, refs),
            "array" => self.array(&s, name, depth, refs),
            "string" => self.string(&s, name, i),
            "integer" => integer(&s, i),
            "number" => number(&s, i),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => self.untyped(name, i),
        }
    }

    fn untyped(&self, name: &str, i: u64) -> Value {
        if name.is_empty() {
            json!({})
        } else {
            self.string(&Map::new(), name, i)
        }
    }

    fn object(&self, s: &Map<String, Value>, depth: usize, refs: usize) -> Value {
        let mut out = Map::new();
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(props) = props {
            for (k, p) in props {
                out.insert(k.clone(), self.value(p, k, 0, depth + 1, refs));
            }
        }
        let extra = match s.get("additionalProperties") {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => json!({}),
        };
        if let Some(Value::Array(req)) = s.get("required") {
            for k in req.iter().filter_map(Value::as_str) {
                if !out.contains_key(k) {
                    out.insert(k.to_string(), self.value(&extra, k, 0, depth + 1, refs));
                }
            }
        }
        let min = count(s, "minProperties").unwrap_or(0).min(MAX_ITEMS);
        let mut n = 1;
        while (out.len() as u64) < min {
            let k = format!("key_{n}");
            out.insert(k.clone(), self.value(&extra, &k, 0, depth + 1, refs));
            n += 1;
        }
        Value::Object(out)
    }

    fn array(&self, s: &Map<String, Value>, name: &str, depth: usize, refs: usize) -> Value {
        let min = count(s, "minItems").unwrap_or(0).min(MAX_ITEMS);
        let max = count(s, "maxItems").unwrap_or(MAX_ITEMS).min(MAX_ITEMS);
        let prefix = s.get("prefixItems").and_then(Value::as_array);
        // One item by default, none when deep in recursive refs (unless the schema needs some).
        let want = if refs >= REF_DEPTH { 0 } else { 1 };
        let mut n = min.max(want).min(max);
        if let Some(p) = prefix {
            n = n.max((p.len() as u64).min(max));
        }
        let items = s.get("items").cloned().unwrap_or_else(|| json!({}));
        let singular = name.strip_suffix('s').filter(|n| !n.is_empty()).unwrap_or(name);
        let item_name = if singular.is_empty() { "item" } else { singular };
        let out = (0..n)
            .map(|i| {
                let schema = prefix.and_then(|p| p.get(i as usize)).unwrap_or(&items);
                self.value(schema, item_name, i, depth + 1, refs)
            })
            .collect();
        Value::Array(out)
    }

    fn string(&self, s: &Map<String, Value>, name: &str, i: u64) -> Value {
        let n = i + 1;
        let label = if name.is_empty() { "value" } else { name };
        let slug: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let h = crate::content::fnv1a(&[label.as_bytes(), &n.to_le_bytes()]);
        let base = match s.get("format").and_then(Value::as_str) {
            Some("date-time") => format!("2025-01-{:02}T10:00:00Z", 15 + i % 10),
            Some("date") => format!("2025-01-{:02}", 15 + i % 10),
            Some("time") => "10:00:00".to_string(),
            Some("duration") => "P1D".to_string(),
            Some("email" | "idn-email") => format!("{slug}{}@example.com", suffix(i)),
            Some("uri" | "url" | "iri" | "uri-reference" | "iri-reference") => {
                format!("https://example.com/{slug}{}", suffix(i))
            }
            Some("uuid") => crate::content::uuid_like(&[label.as_bytes(), &n.to_le_bytes()]),
            Some("hostname" | "idn-hostname") => format!("{slug}.example.com"),
            Some("ipv4") => format!("192.0.2.{}", 1 + i % 250),
            Some("ipv6") => format!("2001:db8::{:x}", 1 + i % 250),
            _ => match self.text {
                Some(t) => t.to_string(),
                None => format!("example {}{}", label.replace('_', " "), suffix(i)),
            },
        };
        let min = count(s, "minLength").unwrap_or(0).min(4096) as usize;
        let max = count(s, "maxLength").map(|m| m as usize);
        let mut out = base;
        if out.chars().count() < min {
            let pad = format!("{h:016x}");
            while out.chars().count() < min {
                out.push_str(&pad);
            }
        }
        let mut keep = out.chars().count();
        keep = keep.max(min);
        if let Some(m) = max {
            keep = keep.min(m);
        }
        Value::String(out.chars().take(keep).collect())
    }
}

fn suffix(i: u64) -> String {
    if i == 0 {
        String::new()
    } else {
        format!(" {}", i + 1).replace(' ', "-")
    }
}

/// The type a schema without `type` most likely means.
fn infer<'a>(s: &Map<String, Value>, name: &str) -> &'a str {
    let has = |ks: &[&str]| ks.iter().any(|k| s.contains_key(*k));
    if has(&["properties", "additionalProperties", "required", "minProperties"]) {
        "object"
    } else if has(&["items", "prefixItems", "minItems", "maxItems"]) {
        "array"
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        "string"
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        "number"
    } else if name.is_empty() {
        "object"
    } else {
        "string"
    }
}

/// Merges `b` into `a`: properties and `required` are unioned, other keys of `b` win.
fn merge(a: &mut Map<String, Value>, b: Map<String, Value>) {
    for (k, v) in b {
        match (k.as_str(), a.get_mut(&k), v) {
            ("properties", Some(Value::Object(pa)), Value::Object(pb)) => pa.extend(pb),
            ("required", Some(Value::Array(ra)), Value::Array(rb)) => {
                for r in rb {
                    if !ra.contains(&r) {
                        ra.push(r);
                    }
                }
            }
            (_, _, v) => {
                a.insert(k, v);
            }
        }
    }
}

/// Bounds as an inclusive range, with exclusive bounds (draft 6 numbers, draft 4 booleans) moved inwards by `step`.
fn bounds(s: &Map<String, Value>, step: f64) -> (Option<f64>, Option<f64>) {
    let draft4 = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut lo = num(s, "minimum");
    let mut hi = num(s, "maximum");
    if draft4("exclusiveMinimum") {
        lo = lo.map(|l| l + step);
    }
    if draft4("exclusiveMaximum") {
        hi = hi.map(|h| h - step);
    }
    if let Some(x) = num(s, "exclusiveMinimum") {
        lo = Some(lo.map_or(x + step, |l| l.max(x + step)));
    }
    if let Some(x) = num(s, "exclusiveMaximum") {
        hi = Some(hi.map_or(x - step, |h| h.min(x - step)));
    }
    (lo, hi)
}

fn clamp(v: f64, lo: Option<f64>, hi: Option<f64>) -> f64 {
    match (lo, hi) {
        (Some(l), Some(h)) if l > h => l,
        (Some(l), _) if v < l => l,
        (_, Some(h)) if v > h => h,
        _ => v,
    }
}

fn integer(s: &Map<String, Value>, i: u64) -> Value {
    let (lo, hi) = bounds(s, 1.0);
    let lo = lo.map(f64::ceil);
    let hi = hi.map(f64::floor);
    let mut v = clamp(1.0 + i as f64, lo, hi);
    if let Some(m) = num(s, "multipleOf").filter(|m| *m > 0.0 && m.fract() == 0.0) {
        v = (v / m).ceil() * m;
        if hi.is_some_and(|h| v > h) {
            v -= m;
        }
    }
    if v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn number(s: &Map<String, Value>, i: u64) -> Value {
    let (lo, hi) = bounds(s, 0.5);
    let mut v = match (lo, hi) {
        (Some(l), Some(h)) if l <= h && !(l..=h).contains(&(1.5 + i as f64)) => (l + h) / 2.0,
        _ => clamp(1.5 + i as f64, lo, hi),
    };
    if let Some(m) = num(s, "multipleOf").filter(|m| *m > 0.0) {
        v = (v / m).ceil() * m;
    }
    json!(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(s: Value) -> Value {
        instance(&s, None)
    }

    #[test]
    fn empty_and_non_object_schemas() {
        assert_eq!(gen(json!({})), json!({}));
        assert_eq!(gen(json!(true)), json!({}));
        assert_eq!(gen(json!(false)), Value::Null);
        assert_eq!(gen(json!(5)), json!({}));
        assert_eq!(gen(json!("x")), json!({}));
        assert_eq!(gen(json!({"type": "string"})), json!("example value"));
        assert_eq!(gen(json!({"type": ["null", "integer"]})), json!(1));
        assert_eq!(gen(json!({"type": "null"})), Value::Null);
    }

    #[test]
    fn objects_fill_every_property_and_required() {
        let s = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
            "ok": {"type": "boolean"}, "t": {"type": "number"}}, "required": ["city", "extra"]});
        let v = gen(s);
        assert_eq!(v["city"], "example city");
        assert_eq!(v["days"], 1);
        assert_eq!(v["ok"], true);
        assert_eq!(v["t"], 1.5);
        assert!(v["extra"].is_string());
        assert_eq!(
            gen(json!({"minProperties": 2, "additionalProperties": {"type": "integer"}})),
            json!({"key_1": 1, "key_2": 1})
        );
    }

    #[test]
    fn enum_const_default_and_branches() {
        assert_eq!(gen(json!({"enum": ["red", "green"]})), json!("red"));
        assert_eq!(gen(json!({"const": 7, "type": "string"})), json!(7));
        assert_eq!(gen(json!({"type": "integer", "default": 42})), json!(42));
        assert_eq!(
            gen(json!({"anyOf": [{"type": "integer"}, {"type": "null"}]})),
            json!(1)
        );
        assert_eq!(
            gen(json!({"oneOf": [{"type": "boolean"}, {"type": "string"}]})),
            json!(true)
        );
        let all = json!({"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}}]});
        assert_eq!(gen(all), json!({"a": 1, "b": true}));
    }

    #[test]
    fn refs_to_defs_and_definitions() {
        let s = json!({"$defs": {"Color": {"enum": ["red", "blue"], "type": "string"},
            "Item": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
            "type": "object", "properties": {"color": {"$ref": "#/$defs/Color"},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
            "old": {"$ref": "#/definitions/Old"}, "missing": {"$ref": "#/$defs/Nope"}},
            "definitions": {"Old": {"type": "integer", "minimum": 10}}});
        let v = gen(s);
        assert_eq!(v["color"], "red");
        assert_eq!(v["items"], json!([{"name": "example name"}]));
        assert_eq!(v["old"], 10);
        assert!(v["missing"].is_string());
    }

    #[test]
    fn recursive_refs_end() {
        let s = json!({"$defs": {"Node": {"type": "object", "properties": {
            "value": {"type": "integer"},
            "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            "required": ["value", "next", "children"]}}, "$ref": "#/$defs/Node"});
        let v = gen(s);
        assert_eq!(v["value"], 1);
        assert!(v["next"].is_object());
        let mut depth = 0;
        let mut cur = &v;
        while cur["next"].is_object() {
            cur = &cur["next"];
            depth += 1;
        }
        assert!(depth < 10, "{depth}");
        // Wide recursion with no way out stays small.
        let tree = json!({"$defs": {"T": {"type": "object", "properties": {"a": {"$ref": "#/$defs/T"},
            "b": {"$ref": "#/$defs/T"}, "c": {"$ref": "#/$defs/T"}, "d": {"$ref": "#/$defs/T"}}}}, "$ref": "#/$defs/T"});
        assert!(gen(tree).to_string().len() < 200_000);
        // A ref to itself with no way out still ends.
        let s = json!({"$ref": "#"});
        let _ = gen(s);
        let s =
            json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"});
        let _ = gen(s);
    }

    #[test]
    fn arrays_strings_numbers_respect_bounds() {
        assert_eq!(
            gen(json!({"type": "array", "items": {"type": "integer"}, "minItems": 3})),
            json!([1, 2, 3])
        );
        assert_eq!(gen(json!({"type": "array", "maxItems": 0})), json!([]));
        assert_eq!(
            gen(json!({"type": "array", "minItems": 1_000_000_000u64}))
                .as_array()
                .map(Vec::len),
            Some(32)
        );
        assert_eq!(
            gen(json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]})),
            json!([1, true])
        );
        let s = gen(json!({"type": "string", "minLength": 40}));
        assert!(s.as_str().unwrap().len() >= 40);
        assert_eq!(gen(json!({"type": "string", "maxLength": 3})), json!("exa"));
        assert_eq!(
            gen(json!({"type": "integer", "minimum": 5, "maximum": 9})),
            json!(5)
        );
        assert_eq!(gen(json!({"type": "integer", "exclusiveMaximum": 0})), json!(-1));
        assert_eq!(
            gen(json!({"type": "integer", "minimum": 3, "multipleOf": 5})),
            json!(5)
        );
        assert_eq!(
            gen(json!({"type": "number", "minimum": 10, "maximum": 20})),
            json!(15.0)
        );
        assert_eq!(
            gen(json!({"type": "number", "exclusiveMinimum": 1.5})),
            json!(2.0)
        );
        assert_eq!(gen(json!({"type": "integer", "minimum": 1e300})), json!(1e300));
    }

    #[test]
    fn formats_look_valid() {
        let f = |f: &str| {
            gen(json!({"type": "string", "format": f}))
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(f("date-time"), "2025-01-15T10:00:00Z");
        assert_eq!(f("date"), "2025-01-15");
        assert!(f("email").contains('@'));
        assert!(f("uri").starts_with("https://"));
        assert_eq!(
            f("uuid").split('-').map(str::len).collect::<Vec<_>>(),
            vec![8, 4, 4, 4, 12]
        );
    }

    #[test]
    fn bad_keyword_types_do_not_panic() {
        for s in [
            json!({"type": 7}),
            json!({"properties": 5}),
            json!({"required": "x", "type": "object"}),
            json!({"enum": {}}),
            json!({"anyOf": "x"}),
            json!({"allOf": [1, "a", null]}),
            json!({"$ref": 3}),
            json!({"$ref": "http://x/y"}),
            json!({"items": 4, "type": "array"}),
            json!({"minItems": -1, "type": "array"}),
            json!({"type": "integer", "minimum": "a", "multipleOf": 0}),
            json!({"type": "number", "multipleOf": -2}),
            json!({"type": "string", "minLength": 1e9}),
            json!({"type": ["foo"]}),
            json!({"unknownKeyword": 1}),
            json!({"type": "integer", "minimum": 10, "maximum": 1}),
        ] {
            let _ = gen(s);
        }
    }

    #[test]
    fn deterministic_and_tool_text() {
        let s = json!({"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}});
        assert_eq!(gen(s.clone()), gen(s.clone()));
        assert_eq!(instance(&s, Some("hi there")), json!({"q": "hi there", "n": 1}));
    }
}
