//! The Toxiproxy data model as clients see it: proxies, toxics, streams and the request bodies that change them.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::toxics::{serialize_toxicity, ToxicKind};

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// Client to server.
    Upstream,
    /// Server to client (Toxiproxy's default).
    Downstream,
}

impl Stream {
    /// Both directions, upstream first (Toxiproxy's listing order).
    pub const ALL: [Stream; 2] = [Stream::Upstream, Stream::Downstream];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
        }
    }

    /// Parses a stream name case-insensitively, as Toxiproxy does.
    pub fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("upstream") {
            Some(Self::Upstream)
        } else if text.eq_ignore_ascii_case("downstream") {
            Some(Self::Downstream)
        } else {
            None
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Self::Upstream => 0,
            Self::Downstream => 1,
        }
    }
}

impl Serialize for Stream {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stream {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Stream::parse(&text).ok_or_else(|| D::Error::custom(format!("unknown stream {text:?}")))
    }
}

/// A toxic as a server reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique per proxy across both directions.
    pub name: String,
    /// Direction it applies to.
    pub stream: Stream,
    /// Probability in `[0, 1]` that a connection is affected.
    pub toxicity: f32,
    /// Type and attributes.
    pub kind: ToxicKind,
}

#[derive(Deserialize)]
struct RawToxic {
    #[serde(default)]
    attributes: Option<Map<String, Value>>,
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    stream: Stream,
    toxicity: f32,
}

impl<'de> Deserialize<'de> for Toxic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawToxic::deserialize(deserializer)?;
        let attributes = raw.attributes.unwrap_or_default();
        let kind = match ToxicKind::from_parts(&raw.type_name, &attributes).map_err(D::Error::custom)? {
            Some(kind) => kind,
            None => ToxicKind::Other {
                type_name: raw.type_name,
                attributes: Value::Object(attributes),
            },
        };
        Ok(Toxic {
            name: raw.name,
            stream: raw.stream,
            toxicity: raw.toxicity,
            kind,
        })
    }
}

impl Serialize for Toxic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ToxicWire {
            attributes: &self.kind,
            name: &self.name,
            type_name: self.kind.type_name(),
            stream: self.stream.as_str(),
            toxicity: self.toxicity,
        }
        .serialize(serializer)
    }
}

/// A toxic on the wire, fields in Toxiproxy's order.
#[derive(Serialize)]
pub(crate) struct ToxicWire<'a> {
    pub(crate) attributes: &'a ToxicKind,
    pub(crate) name: &'a str,
    #[serde(rename = "type")]
    pub(crate) type_name: &'a str,
    pub(crate) stream: &'a str,
    #[serde(serialize_with = "serialize_toxicity")]
    pub(crate) toxicity: f32,
}

/// A proxy as a server reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proxy {
    /// Unique name.
    pub name: String,
    /// Address it listens on; after start, the real bound address (port 0 comes back real).
    pub listen: String,
    /// Address it forwards to.
    pub upstream: String,
    /// Whether it accepts connections.
    pub enabled: bool,
    /// Its toxics, upstream first.
    #[serde(default)]
    pub toxics: Vec<Toxic>,
}

/// Body of `POST /proxies` and one element of `POST /populate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProxy {
    /// Unique name.
    pub name: String,
    /// `host:port` to listen on; port 0 picks a free port.
    pub listen: String,
    /// `host:port` to forward to.
    pub upstream: String,
    /// Start enabled (the server's default is `true`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enabled: Option<bool>,
}

impl NewProxy {
    /// A proxy named `name` from `listen` to `upstream`, enabled.
    pub fn new(name: impl Into<String>, listen: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            listen: listen.into(),
            upstream: upstream.into(),
            enabled: None,
        }
    }
}

/// Body of a proxy update: only the fields set are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProxyUpdate {
    /// New listen address (restarts the proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// New upstream (restarts the proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Enable or disable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Body of `POST /proxies/{p}/toxics`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewToxic {
    /// Name; the server defaults it to `<type>_<stream>`.
    pub name: Option<String>,
    /// Direction; the server defaults it to downstream.
    pub stream: Option<Stream>,
    /// Probability; the server defaults it to 1.
    pub toxicity: Option<f32>,
    /// Type and attributes.
    pub kind: ToxicKind,
}

impl NewToxic {
    /// A toxic of this kind with the server's defaults.
    pub fn new(kind: ToxicKind) -> Self {
        Self {
            name: None,
            stream: None,
            toxicity: None,
            kind,
        }
    }

    /// Sets the name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the direction.
    pub fn stream(mut self, stream: Stream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sets the toxicity.
    pub fn toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = Some(toxicity);
        self
    }
}

impl Serialize for NewToxic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = Map::new();
        body.insert("type".into(), Value::String(self.kind.type_name().to_owned()));
        body.insert("attributes".into(), self.kind.attributes());
        if let Some(name) = &self.name {
            body.insert("name".into(), Value::String(name.clone()));
        }
        if let Some(stream) = self.stream {
            body.insert("stream".into(), Value::String(stream.as_str().to_owned()));
        }
        if let Some(t) = self.toxicity {
            body.insert("toxicity".into(), serde_json::json!(t));
        }
        body.serialize(serializer)
    }
}

/// Body of a toxic update: attributes are merged into the current ones; toxicity is kept when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToxicUpdate {
    /// Attributes to change (partial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    /// New toxicity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f32>,
}

impl ToxicUpdate {
    /// Replaces all attributes with those of `kind`.
    pub fn attributes_of(kind: &ToxicKind) -> Self {
        let attributes = match kind.attributes() {
            Value::Object(map) => Some(map),
            _ => None,
        };
        Self {
            attributes,
            toxicity: None,
        }
    }
}
