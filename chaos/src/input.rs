//! Request bodies decoded the way Go's `encoding/json` decodes them into Toxiproxy's structs.
//!
//! Only the first JSON value counts (trailing bytes are ignored), an empty body is `EOF`, `null` leaves defaults,
//! keys match case-insensitively, unknown keys are ignored, and type errors are worded like Go's.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses the first JSON value of a body.
pub(crate) fn parse(body: &[u8]) -> Result<Value, ApiError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        None => Err(ApiError::bad_body("EOF")),
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) if e.is_eof() => Err(ApiError::bad_body("unexpected EOF")),
        Some(Err(e)) => Err(ApiError::bad_body(e)),
    }
}

/// Go's name for the kind of a JSON value in decoding errors.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The members of a JSON object being decoded into the Go type `go_type` (e.g. `toxiproxy.Proxy`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    go_type: &'static str,
}

impl<'a> Fields<'a> {
    /// Accepts an object or `null` (which leaves every field at its default).
    pub(crate) fn of(value: &'a Value, go_type: &'static str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Self {
                map: Some(map),
                go_type,
            }),
            Value::Null => Ok(Self { map: None, go_type }),
            other => Err(ApiError::bad_body(format!(
                "json: cannot unmarshal {} into Go value of type {go_type}",
                kind(other)
            ))),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        let map = self.map?;
        map.get(key)
            .or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    }

    fn type_error(&self, key: &str, value: &Value, go_field_type: &str) -> ApiError {
        let short = self.go_type.rsplit('.').next().unwrap_or(self.go_type);
        // Go quotes the number only when the target is numeric too (an out-of-range float32, say).
        let what = match value {
            Value::Number(n) if go_field_type.starts_with("float") => format!("number {n}"),
            other => kind(other).to_owned(),
        };
        ApiError::bad_body(format!(
            "json: cannot unmarshal {what} into Go struct field {short}.{key} of type {go_field_type}"
        ))
    }

    /// A string member.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.type_error(key, other, "string")),
        }
    }

    /// A boolean member.
    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.type_error(key, other, "bool")),
        }
    }

    /// A float32 member (finite and in range).
    pub(crate) fn float32(&self, key: &str) -> Result<Option<f32>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x.abs() <= f64::from(f32::MAX) => Ok(Some(x as f32)),
                _ => Err(self.type_error(key, v, "float32")),
            },
            Some(other) => Err(self.type_error(key, other, "float32")),
        }
    }

    /// An object member (`attributes`); anything else but `null` is an error for the Go type `go_field_type`.
    pub(crate) fn object(
        &self,
        key: &str,
        go_field_type: &str,
    ) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.type_error(key, other, go_field_type)),
        }
    }
}

/// The members of a proxy body (create, update, populate element).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyInput {
    pub(crate) name: Option<String>,
    pub(crate) listen: Option<String>,
    pub(crate) upstream: Option<String>,
    pub(crate) enabled: Option<bool>,
}

impl ProxyInput {
    /// Decodes one proxy object.
    pub(crate) fn from_value(value: &Value) -> Result<Self, ApiError> {
        let f = Fields::of(value, "toxiproxy.Proxy")?;
        Ok(Self {
            name: f.string("name")?,
            listen: f.string("listen")?,
            upstream: f.string("upstream")?,
            enabled: f.boolean("enabled")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_decoder_quirks() {
        assert_eq!(parse(b"").unwrap_err().message, "bad request body: EOF");
        assert_eq!(
            parse(b"  {\"a\":").unwrap_err().message,
            "bad request body: unexpected EOF"
        );
        assert_eq!(parse(b"{\"a\":1} trailing").unwrap(), serde_json::json!({"a": 1}));
        let v = parse(br#"{"NAME":"x","enabled":null}"#).unwrap();
        let p = ProxyInput::from_value(&v).unwrap();
        assert_eq!(p.name.as_deref(), Some("x"));
        assert_eq!(p.enabled, None);
        let e = ProxyInput::from_value(&parse(br#"{"name":5}"#).unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string"
        );
        let e = ProxyInput::from_value(&parse(b"[1]").unwrap()).unwrap_err();
        assert_eq!(
            e.message,
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy"
        );
    }
}
