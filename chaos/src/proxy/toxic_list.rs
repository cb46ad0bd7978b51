//! The toxics of one proxy, per direction in insertion order, published to its live links through `watch`.

use std::sync::Arc;

use serde::{Serialize, Serializer};
use tokio::sync::watch;

use crate::model::{Stream, ToxicWire};
use crate::toxics::stage::{Chain, ChainToxic};
use crate::toxics::ToxicKind;

/// One toxic as stored by the server.
#[derive(Debug, Clone)]
pub(crate) struct ToxicEntry {
    pub(crate) name: String,
    /// The stream as the client sent it (Toxiproxy stores it verbatim, e.g. `UpStream`).
    pub(crate) stream_text: String,
    pub(crate) stream: Stream,
    pub(crate) toxicity: f32,
    pub(crate) kind: ToxicKind,
    revision: u64,
}

impl Serialize for ToxicEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ToxicWire {
            attributes: &self.kind,
            name: &self.name,
            type_name: self.kind.type_name(),
            stream: &self.stream_text,
            toxicity: self.toxicity,
        }
        .serialize(serializer)
    }
}

/// Both chains of a proxy.
#[derive(Debug)]
pub(crate) struct ToxicList {
    entries: [Vec<ToxicEntry>; 2],
    chains: [watch::Sender<Arc<Chain>>; 2],
    next_revision: u64,
}

impl Default for ToxicList {
    fn default() -> Self {
        let chain = || watch::channel(Arc::new(Chain::new())).0;
        Self {
            entries: [Vec::new(), Vec::new()],
            chains: [chain(), chain()],
            next_revision: 1,
        }
    }
}

impl ToxicList {
    /// Receivers for the links of a new connection.
    pub(crate) fn subscribe(&self) -> [watch::Receiver<Arc<Chain>>; 2] {
        [self.chains[0].subscribe(), self.chains[1].subscribe()]
    }

    /// All toxics, upstream first, each direction in insertion order.
    pub(crate) fn all(&self) -> Vec<&ToxicEntry> {
        self.entries.iter().flatten().collect()
    }

    /// The toxic named `name`, in either direction.
    pub(crate) fn find(&self, name: &str) -> Option<&ToxicEntry> {
        self.entries.iter().flatten().find(|t| t.name == name)
    }

    /// Appends a toxic (the name must be free) and returns it.
    pub(crate) fn add(
        &mut self,
        name: String,
        stream_text: String,
        stream: Stream,
        toxicity: f32,
        kind: ToxicKind,
    ) -> ToxicEntry {
        let revision = self.bump();
        let entry = ToxicEntry {
            name,
            stream_text,
            stream,
            toxicity,
            kind,
            revision,
        };
        self.entries[stream.index()].push(entry.clone());
        self.publish(stream);
        entry
    }

    /// Replaces the attributes and toxicity of `name`; `None` if there is no such toxic.
    pub(crate) fn update(&mut self, name: &str, kind: ToxicKind, toxicity: f32) -> Option<ToxicEntry> {
        let revision = self.bump();
        let entry = self.entries.iter_mut().flatten().find(|t| t.name == name)?;
        entry.kind = kind;
        entry.toxicity = toxicity;
        entry.revision = revision;
        let updated = entry.clone();
        self.publish(updated.stream);
        Some(updated)
    }

    /// Removes `name`; `false` if there is no such toxic.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        for stream in Stream::ALL {
            let list = &mut self.entries[stream.index()];
            if let Some(at) = list.iter().position(|t| t.name == name) {
                list.remove(at);
                self.publish(stream);
                return true;
            }
        }
        false
    }

    /// Removes every toxic in both directions.
    pub(crate) fn clear(&mut self) {
        for stream in Stream::ALL {
            if !self.entries[stream.index()].is_empty() {
                self.entries[stream.index()].clear();
                self.publish(stream);
            }
        }
    }

    fn bump(&mut self) -> u64 {
        self.next_revision += 1;
        self.next_revision
    }

    fn publish(&self, stream: Stream) {
        let chain: Chain = self.entries[stream.index()]
            .iter()
            .map(|t| ChainToxic {
                name: t.name.clone(),
                revision: t.revision,
                toxicity: t.toxicity,
                kind: t.kind.clone(),
            })
            .collect();
        self.chains[stream.index()].send_replace(Arc::new(chain));
    }
}
