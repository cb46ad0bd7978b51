//! The route table of every fake and the dispatch from a route to its provider module.
//!
//! Each provider module answers its own paths in its own formats; the OpenAI-shaped surface shared by
//! OpenAI, Kimi, Qwen compatible mode and Ollama's `/v1` lives in `openai_*` with a [`Dialect`] per
//! provider.

pub(crate) mod dashscope;
pub(crate) mod gigachat;
pub(crate) mod ollama;
pub(crate) mod openai_chat;
pub(crate) mod openai_errors;
pub(crate) mod openai_misc;
pub(crate) mod responses;
pub(crate) mod shared;

use crate::provider::Provider;
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
pub(crate) use openai_errors::{Dialect, Problem};

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// OpenAI-shaped chat completions in a dialect.
    Chat(Dialect),
    /// OpenAI's Responses API (`POST /v1/responses`) in a dialect (OpenAI, Ollama `/v1`).
    Responses(Dialect),
    /// OpenAI-shaped embeddings.
    Embeddings(Dialect),
    /// OpenAI-shaped model list.
    Models(Dialect),
    /// One OpenAI-shaped model.
    Model(Dialect),
    /// Moonshot's `/v1/users/me/balance`.
    KimiBalance,
    /// DashScope native text generation.
    QwenGeneration,
    /// DashScope native text embedding.
    QwenEmbedding,
    /// GigaChat OAuth token endpoint.
    GigaOAuth,
    /// GigaChat `/api/v1/...` routes.
    Giga(gigachat::Route),
    /// Ollama native `/api/...` routes.
    Ollama(ollama::Route),
}

impl Endpoint {
    /// Whether faults apply: only inference routes (chat, generation, embeddings) are hit, so cheap
    /// probes such as model lists keep working while a provider "fails".
    pub(crate) fn is_inference(self) -> bool {
        match self {
            Endpoint::Chat(_)
            | Endpoint::Responses(_)
            | Endpoint::Embeddings(_)
            | Endpoint::QwenGeneration
            | Endpoint::QwenEmbedding => true,
            Endpoint::Giga(r) => r.is_inference(),
            Endpoint::Ollama(r) => r.is_inference(),
            _ => false,
        }
    }
}

/// How a route's path is matched.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathMatch {
    /// Exactly this path.
    Exact(&'static str),
    /// This prefix followed by one non-empty segment (e.g. `/v1/models/{id}`).
    Param(&'static str),
}

impl PathMatch {
    pub(crate) fn matches(self, path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => path == p,
            PathMatch::Param(prefix) => path
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        }
    }

    /// The parameter segment, percent-decoded (for `Param` routes).
    pub(crate) fn param(path: &str) -> String {
        let seg = path.rsplit('/').next().unwrap_or("");
        percent_decode(seg)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One route of a fake.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: PathMatch,
    pub(crate) endpoint: Endpoint,
}

const fn route(method: &'static str, path: PathMatch, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// The OpenAI-shaped paths under a prefix: chat, embeddings, models, models/.
type FamilyPaths = [&'static str; 4];
const V1: FamilyPaths = [
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/models",
    "/v1/models/",
];
const COMPAT: FamilyPaths = [
    "/compatible-mode/v1/chat/completions",
    "/compatible-mode/v1/embeddings",
    "/compatible-mode/v1/models",
    "/compatible-mode/v1/models/",
];

fn openai_family(paths: FamilyPaths, d: Dialect) -> Vec<Route> {
    use PathMatch::*;
    vec![
        route("POST", Exact(paths[0]), Endpoint::Chat(d)),
        route("POST", Exact(paths[1]), Endpoint::Embeddings(d)),
        route("GET", Exact(paths[2]), Endpoint::Models(d)),
        route("GET", Param(paths[3]), Endpoint::Model(d)),
    ]
}

/// Every route of `provider`'s fake.
pub(crate) fn routes(provider: Provider) -> Vec<Route> {
    use PathMatch::*;
    match provider {
        Provider::OpenAi => {
            let mut r = openai_family(V1, Dialect::OpenAi);
            r.push(route(
                "POST",
                Exact("/v1/responses"),
                Endpoint::Responses(Dialect::OpenAi),
            ));
            r
        }
        Provider::Kimi => {
            let mut r = openai_family(V1, Dialect::Kimi);
            r.push(route("GET", Exact("/v1/users/me/balance"), Endpoint::KimiBalance));
            r
        }
        Provider::Qwen => {
            let mut r = openai_family(COMPAT, Dialect::QwenCompat);
            r.push(route(
                "POST",
                Exact("/api/v1/services/aigc/text-generation/generation"),
                Endpoint::QwenGeneration,
            ));
            r.push(route(
                "POST",
                Exact("/api/v1/services/embeddings/text-embedding/text-embedding"),
                Endpoint::QwenEmbedding,
            ));
            r
        }
        Provider::GigaChat => gigachat::routes(),
        Provider::Ollama => {
            let mut r = ollama::routes();
            r.extend(openai_family(V1, Dialect::OllamaV1));
            r.push(route(
                "POST",
                Exact("/v1/responses"),
                Endpoint::Responses(Dialect::OllamaV1),
            ));
            r
        }
    }
}

/// Default delay of the `slow` fault.
pub(crate) use shared::DEFAULT_SLOW_MS;

/// The answer to a body above [`crate::server::MAX_BODY_BYTES`], in the provider's own shape.
pub(crate) fn too_large(state: &State) -> ResponseTemplate {
    let msg = "Request body too large: the limit is 32 MiB.";
    match state.provider() {
        Provider::GigaChat => crate::http::json(
            413,
            &serde_json::json!({"status": 413, "message": "Payload too large"}),
        ),
        Provider::Ollama => crate::http::json(413, &serde_json::json!({"error": msg})),
        Provider::Kimi => crate::http::json(
            413,
            &serde_json::json!({"error": {"type": "invalid_request_error", "message": msg}}),
        ),
        _ => crate::http::json(
            413,
            &serde_json::json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": null}}),
        ),
    }
}

/// Finds the route of a request.
pub(crate) fn find(routes: &[Route], method: &str, path: &str) -> Option<Route> {
    routes
        .iter()
        .copied()
        .find(|r| r.method == method && r.path.matches(path))
}

/// Whether the request carries the credentials this provider needs (so it may be hit by a fault).
pub(crate) fn has_credentials(state: &State, req: &Request) -> bool {
    match state.provider() {
        Provider::Ollama => true,
        Provider::GigaChat => crate::http::bearer(req).is_some_and(|t| state.token_valid(&t)),
        _ => crate::http::bearer(req).is_some(),
    }
}

/// Answers one request on `endpoint`, with the fault the gate chose for it.
pub(crate) fn handle(
    state: &State,
    endpoint: Endpoint,
    req: &Request,
    faults: &Faults<'_>,
) -> ResponseTemplate {
    match endpoint {
        Endpoint::Chat(d) => openai_chat::chat(state, d, req, faults),
        Endpoint::Responses(d) => responses::responses(state, d, req, faults),
        Endpoint::Embeddings(d) => openai_misc::embeddings(state, d, req, faults),
        Endpoint::Models(d) => openai_misc::models(state, d, req),
        Endpoint::Model(d) => openai_misc::model(state, d, req),
        Endpoint::KimiBalance => openai_misc::kimi_balance(state, req),
        Endpoint::QwenGeneration => dashscope::generation(state, req, faults),
        Endpoint::QwenEmbedding => dashscope::embedding_route(state, req, faults),
        Endpoint::GigaOAuth => gigachat::oauth(state, req),
        Endpoint::Giga(r) => gigachat::handle(state, r, req, faults),
        Endpoint::Ollama(r) => ollama::handle(state, r, req, faults),
    }
}

/// The answer to a path no route matched, in the provider's own shape.
pub(crate) fn not_found(state: &State, req: &Request) -> ResponseTemplate {
    let path = req.url.path();
    match state.provider() {
        Provider::OpenAi => openai_errors::render(
            state,
            Dialect::OpenAi,
            &Problem::UnknownUrl(req.method.to_string(), path.into()),
        ),
        Provider::Kimi => crate::http::json(
            404,
            &serde_json::json!({"code":5,"error":"url.not_found","message":"没找到对象","method":req.method.as_str(),
                "scode":"0x5","status":false,"ua":crate::http::header(req, "user-agent").unwrap_or(""),"url":path}),
        ),
        Provider::Qwen if path.starts_with("/compatible-mode/") => openai_errors::render(
            state,
            Dialect::QwenCompat,
            &Problem::UnknownUrl(req.method.to_string(), path.into()),
        ),
        Provider::Qwen => dashscope::not_found(state, req),
        Provider::GigaChat => gigachat::not_found(),
        Provider::Ollama => crate::http::raw(404, "404 page not found", "text/plain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_paths_match_one_segment() {
        let p = PathMatch::Param("/v1/models/");
        assert!(p.matches("/v1/models/gpt-4o"));
        assert!(!p.matches("/v1/models/"));
        assert!(!p.matches("/v1/models/a/b"));
        assert_eq!(
            PathMatch::param("/v1/models/llama3.2%3Alatest"),
            "llama3.2:latest"
        );
    }

    #[test]
    fn every_provider_has_routes_without_duplicates() {
        for p in Provider::ALL {
            let r = routes(p);
            for (i, a) in r.iter().enumerate() {
                for b in &r[i + 1..] {
                    if let (PathMatch::Exact(x), PathMatch::Exact(y)) = (a.path, b.path) {
                        assert!(!(a.method == b.method && x == y), "{p}: duplicate {x}");
                    }
                }
            }
        }
    }
}
