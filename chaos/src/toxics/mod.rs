//! Toxics: the fault types, their attributes, and how each one treats the chunks of a link.
//!
//! One module per toxic holds its attribute struct (serialised exactly as Toxiproxy does) and its behaviour on a
//! chunk; [`ToxicKind`] ties them together and `stage` runs them inside a link.

pub mod bandwidth;
pub mod latency;
pub mod limit_data;
pub mod noop;
pub mod reset_peer;
pub mod slicer;
pub mod slow_close;
pub(crate) mod stage;
pub mod timeout;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use tokio::time::Instant;

pub use bandwidth::Bandwidth;
pub use latency::Latency;
pub use limit_data::LimitData;
pub use noop::Noop;
pub use reset_peer::ResetPeer;
pub use slicer::Slicer;
pub use slow_close::SlowClose;
pub use timeout::Timeout;

/// An attribute name and its Go type, used to word decoding errors as Toxiproxy does.
pub(crate) type Field = (&'static str, &'static str);

/// A toxic's type together with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// `latency`: delay every chunk.
    Latency(Latency),
    /// `bandwidth`: limit the rate.
    Bandwidth(Bandwidth),
    /// `slow_close`: delay the close.
    SlowClose(SlowClose),
    /// `timeout`: black-hole data, optionally close after a while.
    Timeout(Timeout),
    /// `reset_peer`: reset the connection with a TCP RST.
    ResetPeer(ResetPeer),
    /// `slicer`: split chunks into small delayed pieces.
    Slicer(Slicer),
    /// `limit_data`: close after N bytes.
    LimitData(LimitData),
    /// `noop`: do nothing.
    Noop(Noop),
    /// A type this crate does not know, as reported by another server (client side only).
    Other {
        /// The type name.
        type_name: String,
        /// The raw attributes.
        attributes: Value,
    },
}

impl ToxicKind {
    /// The type names this server accepts, in Toxiproxy's registration order.
    pub const TYPES: [&'static str; 8] = [
        "bandwidth",
        "latency",
        "limit_data",
        "noop",
        "reset_peer",
        "slicer",
        "slow_close",
        "timeout",
    ];

    /// The wire name of the type, e.g. `latency`.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Latency(_) => "latency",
            Self::Bandwidth(_) => "bandwidth",
            Self::SlowClose(_) => "slow_close",
            Self::Timeout(_) => "timeout",
            Self::ResetPeer(_) => "reset_peer",
            Self::Slicer(_) => "slicer",
            Self::LimitData(_) => "limit_data",
            Self::Noop(_) => "noop",
            Self::Other { type_name, .. } => type_name,
        }
    }

    /// Builds a known toxic from its type name and attributes; `Ok(None)` for an unknown type.
    ///
    /// Missing attributes are zero, unknown keys are ignored and keys match case-insensitively, as with Go's
    /// `encoding/json`. The error is worded like Go's decoder.
    pub fn from_parts(type_name: &str, attributes: &Map<String, Value>) -> Result<Option<Self>, String> {
        Ok(Some(match type_name {
            "latency" => Self::Latency(decode(Latency::GO_NAME, Latency::FIELDS, attributes)?),
            "bandwidth" => Self::Bandwidth(decode(Bandwidth::GO_NAME, Bandwidth::FIELDS, attributes)?),
            "slow_close" => Self::SlowClose(decode(SlowClose::GO_NAME, SlowClose::FIELDS, attributes)?),
            "timeout" => Self::Timeout(decode(Timeout::GO_NAME, Timeout::FIELDS, attributes)?),
            "reset_peer" => Self::ResetPeer(decode(ResetPeer::GO_NAME, ResetPeer::FIELDS, attributes)?),
            "slicer" => Self::Slicer(decode(Slicer::GO_NAME, Slicer::FIELDS, attributes)?),
            "limit_data" => Self::LimitData(decode(LimitData::GO_NAME, LimitData::FIELDS, attributes)?),
            "noop" => Self::Noop(decode(Noop::GO_NAME, Noop::FIELDS, attributes)?),
            _ => return Ok(None),
        }))
    }

    /// The attributes as a JSON object.
    pub fn attributes(&self) -> Value {
        let value = match self {
            Self::Latency(a) => serde_json::to_value(a),
            Self::Bandwidth(a) => serde_json::to_value(a),
            Self::SlowClose(a) => serde_json::to_value(a),
            Self::Timeout(a) => serde_json::to_value(a),
            Self::ResetPeer(a) => serde_json::to_value(a),
            Self::Slicer(a) => serde_json::to_value(a),
            Self::LimitData(a) => serde_json::to_value(a),
            Self::Noop(a) => serde_json::to_value(a),
            Self::Other { attributes, .. } => Ok(attributes.clone()),
        };
        value.unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Applies a partial update: keys present in `patch` replace the current values, others stay.
    pub fn merged(&self, patch: &Map<String, Value>) -> Result<Self, String> {
        let mut current = match self.attributes() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in patch {
            if value.is_null() {
                continue;
            }
            let existing = current.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
            current.insert(existing.unwrap_or_else(|| key.clone()), value.clone());
        }
        match self {
            Self::Other { type_name, .. } => Ok(Self::Other {
                type_name: type_name.clone(),
                attributes: Value::Object(current),
            }),
            known => Ok(Self::from_parts(known.type_name(), &current)?.unwrap_or_else(|| known.clone())),
        }
    }
}

/// Serialises the attributes only (the `"attributes"` member of a toxic).
impl Serialize for ToxicKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Latency(a) => a.serialize(serializer),
            Self::Bandwidth(a) => a.serialize(serializer),
            Self::SlowClose(a) => a.serialize(serializer),
            Self::Timeout(a) => a.serialize(serializer),
            Self::ResetPeer(a) => a.serialize(serializer),
            Self::Slicer(a) => a.serialize(serializer),
            Self::LimitData(a) => a.serialize(serializer),
            Self::Noop(a) => a.serialize(serializer),
            Self::Other { attributes, .. } => attributes.serialize(serializer),
        }
    }
}

/// Decodes attributes field by field so type errors read like Go's.
fn decode<T: DeserializeOwned>(
    go_name: &str,
    fields: &[Field],
    input: &Map<String, Value>,
) -> Result<T, String> {
    let mut clean = Map::new();
    for (name, go_type) in fields {
        let found = input.get(*name).or_else(|| {
            input
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match found {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.is_i64() => {
                clean.insert((*name).to_owned(), Value::Number(n.clone()));
            }
            Some(other) => {
                let what = match other {
                    Value::Number(n) => format!("number {n}"),
                    Value::Bool(_) => "bool".to_owned(),
                    Value::String(_) => "string".to_owned(),
                    Value::Array(_) => "array".to_owned(),
                    _ => "object".to_owned(),
                };
                return Err(format!(
                    "json: cannot unmarshal {what} into Go struct field {go_name}.attributes.{name} of type {go_type}"
                ));
            }
        }
    }
    serde_json::from_value(Value::Object(clean)).map_err(|e| e.to_string())
}

/// How long a piece waits before it moves on to the next toxic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Moves on at once.
    None,
    /// Moves on at this instant.
    Until(Instant),
    /// Moves on after this long, counted when the wait starts.
    For(Duration),
}

/// A piece of data leaving a toxic.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub(crate) wait: Wait,
    pub(crate) data: Vec<u8>,
}

/// `from + ms` milliseconds, saturating far in the future instead of overflowing; `from` when `ms <= 0`.
pub(crate) fn after_ms(from: Instant, ms: i64) -> Instant {
    if ms <= 0 {
        return from;
    }
    from.checked_add(Duration::from_millis(ms as u64))
        .unwrap_or_else(|| far_future(from))
}

/// An instant far enough away to mean "never" (about 30 years).
pub(crate) fn far_future(from: Instant) -> Instant {
    from.checked_add(Duration::from_secs(86_400 * 365 * 30))
        .unwrap_or(from)
}

/// Serialises a toxicity as Go does for a float32: integral values without a fraction (`1`, not `1.0`).
pub(crate) fn serialize_toxicity<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f32(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn defaults_unknown_keys_and_case() {
        let k = ToxicKind::from_parts("latency", &obj(json!({"LATENCY": 5, "x": "y"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            k,
            ToxicKind::Latency(Latency {
                latency: 5,
                jitter: 0
            })
        );
        assert_eq!(ToxicKind::from_parts("nope", &Map::new()).unwrap(), None);
    }

    #[test]
    fn go_worded_type_errors() {
        let e = ToxicKind::from_parts("latency", &obj(json!({"latency": "x"}))).unwrap_err();
        assert_eq!(e, "json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64");
        let e = ToxicKind::from_parts("slicer", &obj(json!({"delay": 1.5}))).unwrap_err();
        assert!(e.contains("number 1.5") && e.ends_with("of type int"), "{e}");
    }

    #[test]
    fn merge_is_partial() {
        let k = ToxicKind::Latency(Latency {
            latency: 5,
            jitter: 2,
        });
        let m = k.merged(&obj(json!({"jitter": 9, "latency": null}))).unwrap();
        assert_eq!(
            m,
            ToxicKind::Latency(Latency {
                latency: 5,
                jitter: 9
            })
        );
        assert!(k.merged(&obj(json!({"jitter": true}))).is_err());
    }

    #[test]
    fn toxicity_serialises_like_go() {
        #[derive(Serialize)]
        struct T(#[serde(serialize_with = "serialize_toxicity")] f32);
        assert_eq!(serde_json::to_string(&T(1.0)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&T(0.5)).unwrap(), "0.5");
        assert_eq!(serde_json::to_string(&T(0.1)).unwrap(), "0.1");
    }

    #[test]
    fn attributes_serialise_in_go_field_order() {
        let s = ToxicKind::Slicer(Slicer {
            average_size: 1,
            size_variation: 2,
            delay: 3,
        });
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"average_size":1,"size_variation":2,"delay":3}"#
        );
        assert_eq!(serde_json::to_string(&ToxicKind::Noop(Noop {})).unwrap(), "{}");
    }
}
