//! Entry points for the criterion benchmarks in `benches/` (not a stable API): each adapter's own translation
//! of a request and parse of an answer (the production code, through [`Adapter::wire_body`] and
//! [`Adapter::parse_chat`], without HTTP), the stream decoders, and a synthetic offline corpus for the lookup
//! benchmark.

use std::sync::OnceLock;

use crate::canonical::{ChatRequest, ChatResponse};
use crate::config::Config;
use crate::offline::{Entry, ManifestInfo, OfflineStore, Package};
use crate::providers::stream::{Decoder, Framing};
pub use crate::providers::Read;
use crate::providers::{Adapter, ErrorClass, ProviderError};

/// A wire format the gateway translates to and from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI.
    OpenAi,
    /// Moonshot Kimi.
    Kimi,
    /// DashScope native.
    QwenNative,
    /// GigaChat.
    GigaChat,
    /// Ollama native.
    Ollama,
}

impl Wire {
    /// Every wire format.
    pub const ALL: [Wire; 5] = [
        Wire::OpenAi,
        Wire::Kimi,
        Wire::QwenNative,
        Wire::GigaChat,
        Wire::Ollama,
    ];

    /// The provider of the bench config that speaks it.
    fn provider(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Kimi => "kimi",
            Wire::QwenNative => "qwen",
            Wire::GigaChat => "gigachat",
            Wire::Ollama => "ollama",
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Kimi => "kimi",
            Wire::QwenNative => "qwen_native",
            Wire::GigaChat => "gigachat",
            Wire::Ollama => "ollama",
        }
    }
}

/// The five adapters, built once from a config (building an HTTP client is costly and not part of a translation;
/// nothing is sent).
fn adapters() -> &'static [(Wire, Adapter)] {
    static ADAPTERS: OnceLock<Vec<(Wire, Adapter)>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let text = r#"
models: { default: { openai: m, kimi: m, qwen: m, gigachat: m, ollama: m } }
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:1/v1" }
  kimi: { kind: kimi, base_url: "http://127.0.0.1:1/v1" }
  qwen: { kind: qwen, api: native, base_url: "http://127.0.0.1:1/api/v1" }
  gigachat: { kind: gigachat, base_url: "http://127.0.0.1:1/api/v1", auth: { url: "http://127.0.0.1:1/oauth" } }
  ollama: { kind: ollama, base_url: "http://127.0.0.1:1" }
fallback_policy: { order: [openai, kimi, qwen, gigachat, ollama] }
"#;
        let Ok(cfg) = Config::from_yaml(text, &|_| None) else {
            return Vec::new();
        };
        let client = reqwest::Client::new();
        let redactor = std::sync::Arc::new(crate::providers::redact::Redactor::from_config(&cfg));
        Wire::ALL
            .iter()
            .filter_map(|w| {
                let pc = cfg.providers.get(w.provider())?;
                Some((*w, Adapter::with_client(pc, client.clone(), redactor.clone()).ok()?))
            })
            .collect()
    })
}

fn adapter(wire: Wire) -> Option<&'static Adapter> {
    adapters().iter().find(|(w, _)| *w == wire).map(|(_, a)| a)
}

/// Canonical request -> the provider's JSON body, as the bytes sent upstream (the adapter's own translation).
pub fn request_body(wire: Wire, req: &ChatRequest, model: &str, stream: bool) -> Vec<u8> {
    adapter(wire)
        .map(|a| a.wire_body(req, model, stream))
        .unwrap_or_default()
}

/// The provider's JSON answer -> canonical response (the adapter's own parse of a non-stream answer).
pub fn parse_response(
    wire: Wire,
    body: &[u8],
    model: &str,
    read: Read,
) -> Result<ChatResponse, ProviderError> {
    match adapter(wire) {
        Some(a) => a.parse_chat(body.to_vec(), model, read),
        None => Err(ProviderError::new(ErrorClass::Malformed, "no adapter")),
    }
}

/// Decodes a whole SSE (`ndjson: false`) or NDJSON body fed in `piece`-byte pieces; returns the number of
/// events.
pub fn decode(body: &[u8], ndjson: bool, piece: usize) -> Result<usize, ProviderError> {
    let mut d = Decoder::new(if ndjson { Framing::Ndjson } else { Framing::Sse });
    let mut n = 0;
    for part in body.chunks(piece.max(1)) {
        n += d.push(part)?.len();
    }
    Ok(n + d.finish()?.len())
}

const RU: [&str; 40] = [
    "сделай",
    "покажи",
    "посчитай",
    "построй",
    "найди",
    "сравни",
    "выгрузи",
    "отфильтруй",
    "сгруппируй",
    "объясни",
    "продажи",
    "выручку",
    "заказы",
    "клиентов",
    "возвраты",
    "маржу",
    "остатки",
    "конверсию",
    "отток",
    "средний чек",
    "по регионам",
    "по месяцам",
    "по неделям",
    "по каналам",
    "по менеджерам",
    "по категориям",
    "за квартал",
    "за год",
    "за вчера",
    "в динамике",
    "sql",
    "дашборд",
    "график",
    "таблицу",
    "отчет",
    "прогноз",
    "топ",
    "долю",
    "медиану",
    "сумму",
];
const EN: [&str; 40] = [
    "make",
    "show",
    "count",
    "build",
    "find",
    "compare",
    "export",
    "filter",
    "group",
    "explain",
    "sales",
    "revenue",
    "orders",
    "customers",
    "returns",
    "margin",
    "stock",
    "conversion",
    "churn",
    "basket",
    "by region",
    "by month",
    "by week",
    "by channel",
    "by manager",
    "by category",
    "last quarter",
    "last year",
    "yesterday",
    "trend",
    "sql",
    "dashboard",
    "chart",
    "table",
    "report",
    "forecast",
    "top",
    "share",
    "median",
    "total",
];

fn lcg(state: &mut u64) -> usize {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) as usize
}

/// Entity names (products, regions, tables) made of syllables, as real prompts name things.
fn entities(count: usize, seed: &mut u64) -> Vec<String> {
    const SYL: [&str; 24] = [
        "ка", "ро", "ми", "на", "те", "ла", "со", "ви", "ду", "ре", "па", "зо", "ko", "ra", "mi", "ne", "to",
        "la", "su", "vi", "de", "ro", "pa", "zo",
    ];
    (0..count)
        .map(|_| (0..3).map(|_| SYL[lcg(seed) % SYL.len()]).collect::<String>())
        .collect()
}

/// `n` synthetic analytics entries in one package: three task words from a 40-word vocabulary (half the entries
/// Russian, half English) plus two entity names from 400 (products, regions, tables); and `n` queries: inflected,
/// upper-cased or reordered variants of entries, one in ten unrelated (a miss).
pub fn offline_corpus(n: usize, threshold: f32) -> (OfflineStore, Vec<String>) {
    let mut seed = 42u64;
    let names = entities(400, &mut seed);
    let mut entries = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::new();
    while entries.len() < n {
        let vocab = if entries.len() % 2 == 0 { &RU } else { &EN };
        let mut words: Vec<&str> = (0..3).map(|_| vocab[lcg(&mut seed) % vocab.len()]).collect();
        for _ in 0..2 {
            words.push(&names[lcg(&mut seed) % names.len()]);
        }
        let prompt = words.join(" ");
        if !seen.insert(crate::offline::text::normalize(&prompt)) {
            continue;
        }
        let i = entries.len();
        entries.push(Entry {
            id: format!("e{i}"),
            prompts: vec![prompt],
            answer: format!("answer {i}"),
            tags: Vec::new(),
            embedding: None,
        });
    }
    let queries = (0..n)
        .map(|q| {
            if q % 10 == 9 {
                return "Write a haiku about a network outage".to_string();
            }
            let p = &entries[lcg(&mut seed) % n].prompts[0];
            match q % 3 {
                0 => format!("{p}, пожалуйста!"),
                1 => format!("{}s", p.to_uppercase()),
                _ => p.split(' ').rev().collect::<Vec<_>>().join(" "),
            }
        })
        .collect();
    let manifest = ManifestInfo {
        name: "bench".into(),
        version: "1".into(),
        created: "2026-01-01".into(),
        description: None,
        checksum: String::new(),
        checksum_ok: None,
        embeddings: None,
    };
    let package = Package {
        manifest,
        dir: std::path::PathBuf::new(),
        entries,
        skipped: 0,
    };
    (
        OfflineStore::from_packages(vec![package], threshold, Vec::new()),
        queries,
    )
}
