//! What each provider model can serve faithfully: vision, tools, structured output, context window, and for
//! embeddings its vector space (model and dimension) and input forms. The router skips a candidate that cannot
//! serve a request (`skipped_capability`) instead of letting the fallback change what the client asked for.
//!
//! Defaults come from [`defaults`] (the models of the shipped configs and their close relatives); every value can
//! be set per model in config (`models.<logical>.<provider>: { model, vision, tools, structured_output,
//! context_window, dimensions, space }`). Unknown models get the conservative answer: no vision, no JSON schema.

use serde::Serialize;

use crate::config::{ProviderKind, QwenApi};

/// Which images a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vision {
    /// None: a request with an image is never sent to it.
    None,
    /// Inline `data:` URLs only (Ollama takes base64 images; the gateway never fetches a remote URL for it).
    DataUrls,
    /// Remote and inline URLs.
    Any,
}

/// Which `response_format` a model honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Structured {
    /// Neither: the adapter has no way to ask for JSON.
    #[default]
    None,
    /// `json_object` only.
    JsonObject,
    /// `json_schema` (and `json_object`).
    JsonSchema,
}

impl Structured {
    /// Parses a config value.
    pub fn parse(s: &str) -> Option<Structured> {
        match s {
            "none" | "false" => Some(Structured::None),
            "json_object" => Some(Structured::JsonObject),
            "json_schema" | "true" => Some(Structured::JsonSchema),
            _ => None,
        }
    }
}

/// The capabilities of one provider model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caps {
    /// Images.
    pub vision: Vision,
    /// Function tools.
    pub tools: bool,
    /// `response_format`.
    pub structured: Structured,
    /// Context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Most tokens one answer may have, when known: a request's `max_tokens` above it is lowered to it for this
    /// model (agents ask for 32,000-64,000 whatever the model; a provider would refuse the request).
    pub max_output_tokens: Option<u32>,
    /// Embeddings: the vector space (vectors of two spaces never mix); by default the model name.
    pub space: String,
    /// Embeddings: the vector size, when known.
    pub dimensions: Option<u32>,
    /// Embeddings: honours the request's `dimensions`.
    pub dimensions_param: bool,
    /// Embeddings: takes token-id input (arrays of integers).
    pub token_input: bool,
}

/// A model name without Ollama's `:latest` tag.
pub fn bare(model: &str) -> &str {
    model.strip_suffix(":latest").unwrap_or(model)
}

fn starts(model: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| model.starts_with(p))
}

/// Known vector sizes of embeddings models.
pub fn embedding_dimensions(model: &str) -> Option<u32> {
    Some(match bare(model) {
        "text-embedding-3-large" => 3072,
        "text-embedding-3-small" | "text-embedding-ada-002" | "text-embedding-v1" | "text-embedding-v2" => {
            1536
        }
        "text-embedding-v3" | "text-embedding-v4" | "Embeddings" | "mxbai-embed-large" | "bge-m3" => 1024,
        "EmbeddingsGigaR" => 2560,
        "nomic-embed-text" => 768,
        "all-minilm" => 384,
        _ => return None,
    })
}

/// The defaults for `model` at a provider of `kind`.
pub fn defaults(kind: ProviderKind, qwen_api: QwenApi, model: &str) -> Caps {
    let m = bare(model);
    let lower = m.to_ascii_lowercase();
    let (vision, tools, structured, context_window) = match kind {
        ProviderKind::OpenAi => {
            let vision = if starts(
                &lower,
                &["gpt-4o", "gpt-4.1", "gpt-4-turbo", "gpt-5", "o1", "o3", "o4"],
            ) && !lower.starts_with("o1-mini")
                && !lower.starts_with("o3-mini")
            {
                Vision::Any
            } else {
                Vision::None
            };
            let structured = if lower.starts_with("gpt-3.5") {
                Structured::JsonObject
            } else {
                Structured::JsonSchema
            };
            let window = match lower.as_str() {
                w if w.starts_with("gpt-4.1") => Some(1_047_576),
                w if w.starts_with("gpt-4o") || w.starts_with("gpt-4-turbo") => Some(128_000),
                w if w.starts_with("gpt-5") => Some(400_000),
                w if starts(w, &["o1", "o3", "o4"]) => Some(200_000),
                w if w.starts_with("gpt-3.5") => Some(16_385),
                _ => None,
            };
            (vision, true, structured, window)
        }
        ProviderKind::Kimi => {
            let vision =
                if lower.contains("vision") || lower == "kimi-latest" || lower.starts_with("kimi-k2.5") {
                    Vision::Any
                } else {
                    Vision::None
                };
            let window = match lower.as_str() {
                "moonshot-v1-8k" | "moonshot-v1-8k-vision-preview" => Some(8_192),
                "moonshot-v1-32k" | "moonshot-v1-32k-vision-preview" => Some(32_768),
                "moonshot-v1-128k"
                | "moonshot-v1-128k-vision-preview"
                | "moonshot-v1-auto"
                | "kimi-latest" => Some(131_072),
                w if w.starts_with("kimi-k2") => Some(262_144),
                _ => None,
            };
            (vision, true, Structured::JsonObject, window)
        }
        ProviderKind::Qwen => {
            // The native API's text-generation endpoint takes no image parts (those go to another endpoint).
            let vision = if qwen_api == QwenApi::Compatible
                && (lower.contains("-vl") || lower.starts_with("qvq") || lower.contains("omni"))
            {
                Vision::Any
            } else {
                Vision::None
            };
            let window = match lower.as_str() {
                "qwen-plus" | "qwen-plus-latest" => Some(131_072),
                "qwen-turbo" | "qwen-turbo-latest" => Some(1_000_000),
                "qwen-max" | "qwen-max-latest" => Some(32_768),
                "qwen-long" => Some(10_000_000),
                w if w.starts_with("qwen3-max") => Some(262_144),
                _ => None,
            };
            let structured = if qwen_api == QwenApi::Compatible {
                Structured::JsonObject
            } else {
                Structured::None
            };
            (vision, true, structured, window)
        }
        ProviderKind::GigaChat => {
            // GigaChat takes images only as uploaded files, and has no response_format: neither is offered.
            let window = if m.starts_with("GigaChat-2") {
                Some(131_072)
            } else if m.starts_with("GigaChat") {
                Some(32_768)
            } else {
                None
            };
            (Vision::None, true, Structured::None, window)
        }
        ProviderKind::Ollama => {
            let vision = if starts(
                &lower,
                &[
                    "llava",
                    "llama3.2-vision",
                    "gemma3",
                    "qwen2.5vl",
                    "minicpm-v",
                    "moondream",
                    "bakllava",
                ],
            ) {
                Vision::DataUrls
            } else {
                Vision::None
            };
            let tools = starts(
                &lower,
                &[
                    "llama3.1",
                    "llama3.2",
                    "llama3.3",
                    "qwen2.5",
                    "qwen3",
                    "mistral",
                    "mixtral",
                    "command-r",
                    "firefunction",
                ],
            ) && !lower.starts_with("llama3.2-vision");
            let window = match lower.as_str() {
                w if starts(w, &["llama3.1", "llama3.2", "llama3.3"]) => Some(131_072),
                w if starts(w, &["qwen2.5", "mistral"]) => Some(32_768),
                _ => None,
            };
            (vision, tools, Structured::JsonSchema, window)
        }
    };
    let dimensions_param = match kind {
        ProviderKind::OpenAi => lower.starts_with("text-embedding-3"),
        ProviderKind::Qwen => matches!(lower.as_str(), "text-embedding-v3" | "text-embedding-v4"),
        ProviderKind::Ollama => true,
        ProviderKind::Kimi | ProviderKind::GigaChat => false,
    };
    Caps {
        vision,
        tools,
        structured,
        context_window,
        max_output_tokens: output_limit(kind, &lower),
        space: m.to_string(),
        dimensions: embedding_dimensions(m),
        dimensions_param,
        token_input: kind == ProviderKind::OpenAi,
    }
}

/// The most output tokens a known model gives in one answer (the providers' model pages), else `None`.
fn output_limit(kind: ProviderKind, lower: &str) -> Option<u32> {
    match kind {
        ProviderKind::OpenAi => match lower {
            m if starts(m, &["gpt-4.1"]) => Some(32_768),
            m if starts(m, &["gpt-4o"]) => Some(16_384),
            m if starts(m, &["gpt-5", "o1", "o3", "o4"]) => Some(100_000),
            m if starts(m, &["gpt-4-turbo", "gpt-3.5"]) => Some(4_096),
            _ => None,
        },
        ProviderKind::Qwen => match lower {
            m if starts(m, &["qwen-max", "qwen-plus", "qwen-turbo", "qwen-vl"]) => Some(8_192),
            _ => None,
        },
        ProviderKind::Kimi => match lower {
            m if starts(m, &["kimi-k2"]) => Some(32_768),
            _ => None,
        },
        ProviderKind::GigaChat | ProviderKind::Ollama => None,
    }
}

/// What a request needs of a candidate (computed once per request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Image parts, and whether any is a remote (non-`data:`) URL: the first such part's JSON path.
    pub images: Option<ImageNeed>,
    /// Function tools offered.
    pub tools: bool,
    /// `response_format` asked for.
    pub structured: Structured,
    /// A cheap estimate of the prompt's tokens (a lower bound for common tokenizers).
    pub prompt_tokens: u32,
    /// Embeddings: the vector space and size the answer must come from.
    pub space: Option<Space>,
    /// Embeddings: token-id input.
    pub token_input: bool,
    /// Embeddings: the request's `dimensions`.
    pub dimensions: Option<u32>,
}

/// The images of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNeed {
    /// Path of the first image part, e.g. `messages[1].content[0]`.
    pub path: String,
    /// Some part is a remote URL (not `data:`).
    pub remote: bool,
}

/// An embeddings vector space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// Its name (by default the primary's model name).
    pub name: String,
    /// Its vector size, when known.
    pub dimensions: Option<u32>,
}

/// The kind of capability a request needs (the client's error code follows from it when no candidate has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Image parts.
    Images,
    /// Function tools.
    Tools,
    /// `response_format`.
    Structured,
    /// A context window large enough.
    Context,
    /// Embeddings: token-id input or the request's `dimensions`.
    Input,
    /// Embeddings: the vector space.
    Space,
}

/// Why a model cannot serve a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What it lacks.
    pub need: Need,
    /// Said for `error.attempts`.
    pub message: String,
}

fn refusal(need: Need, message: String) -> Option<Refusal> {
    Some(Refusal { need, message })
}

impl Caps {
    /// Why this model cannot serve `needs` faithfully, if it cannot.
    pub fn refuses(&self, needs: &Needs) -> Option<Refusal> {
        if let Some(img) = &needs.images {
            match self.vision {
                Vision::None => {
                    return refusal(Need::Images, format!("model takes no images ({})", img.path))
                }
                Vision::DataUrls if img.remote => {
                    return refusal(
                        Need::Images,
                        format!("model takes inline data: images only ({})", img.path),
                    )
                }
                _ => {}
            }
        }
        if needs.tools && !self.tools {
            return refusal(Need::Tools, "model does not take function tools".into());
        }
        if needs.structured > self.structured {
            let asked = match needs.structured {
                Structured::JsonSchema => "json_schema",
                _ => "json_object",
            };
            return refusal(
                Need::Structured,
                format!("model does not honour response_format {asked}"),
            );
        }
        if let Some(w) = self.context_window {
            if needs.prompt_tokens > w {
                let msg = format!(
                    "prompt of about {} tokens exceeds the context window of {w}",
                    needs.prompt_tokens
                );
                return refusal(Need::Context, msg);
            }
        }
        if needs.token_input && !self.token_input {
            return refusal(Need::Input, "model takes text input only, not token ids".into());
        }
        if let Some(space) = &needs.space {
            if space.name != self.space {
                let msg = format!(
                    "vector space {:?} is not the request's {:?}",
                    self.space, space.name
                );
                return refusal(Need::Space, msg);
            }
            if let (Some(a), Some(b)) = (space.dimensions, self.dimensions) {
                if a != b {
                    return refusal(Need::Space, format!("vectors of {b} dimensions, not {a}"));
                }
            }
        }
        if let Some(d) = needs.dimensions {
            if self.dimensions != Some(d) && !self.dimensions_param {
                return refusal(Need::Input, format!("model does not honour dimensions {d}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_models_have_known_capabilities() {
        let c = |k, m| defaults(k, QwenApi::Compatible, m);
        assert_eq!(c(ProviderKind::OpenAi, "gpt-4o-mini").vision, Vision::Any);
        assert_eq!(
            c(ProviderKind::OpenAi, "gpt-4o-mini").context_window,
            Some(128_000)
        );
        assert_eq!(c(ProviderKind::Kimi, "moonshot-v1-8k").vision, Vision::None);
        assert_eq!(
            c(ProviderKind::Kimi, "moonshot-v1-8k").context_window,
            Some(8_192)
        );
        assert_eq!(c(ProviderKind::GigaChat, "GigaChat").vision, Vision::None);
        assert_eq!(c(ProviderKind::GigaChat, "GigaChat").structured, Structured::None);
        assert!(c(ProviderKind::GigaChat, "GigaChat").tools);
        assert_eq!(c(ProviderKind::Ollama, "llama3.2").vision, Vision::None);
        assert!(c(ProviderKind::Ollama, "llama3.2:latest").tools);
        assert_eq!(
            c(ProviderKind::OpenAi, "text-embedding-3-small").dimensions,
            Some(1536)
        );
        assert_eq!(c(ProviderKind::Qwen, "text-embedding-v3").dimensions, Some(1024));
        assert_eq!(c(ProviderKind::GigaChat, "Embeddings").dimensions, Some(1024));
        assert_eq!(c(ProviderKind::Ollama, "all-minilm:latest").dimensions, Some(384));
        assert!(c(ProviderKind::OpenAi, "text-embedding-3-small").token_input);
        assert!(!c(ProviderKind::Qwen, "text-embedding-v3").token_input);
        assert_eq!(c(ProviderKind::Ollama, "all-minilm:latest").space, "all-minilm");
    }

    #[test]
    fn same_size_different_space_is_refused() {
        let qwen = defaults(ProviderKind::Qwen, QwenApi::Compatible, "text-embedding-v3");
        let giga = defaults(ProviderKind::GigaChat, QwenApi::Compatible, "Embeddings");
        let needs = Needs {
            space: Some(Space {
                name: qwen.space.clone(),
                dimensions: qwen.dimensions,
            }),
            ..Needs::default()
        };
        assert_eq!(qwen.refuses(&needs), None);
        assert!(giga.refuses(&needs).unwrap().message.contains("vector space"));
    }

    #[test]
    fn each_need_names_its_reason() {
        let giga = defaults(ProviderKind::GigaChat, QwenApi::Compatible, "GigaChat");
        let img = Needs {
            images: Some(ImageNeed {
                path: "messages[0].content[1]".into(),
                remote: true,
            }),
            ..Needs::default()
        };
        assert!(giga
            .refuses(&img)
            .unwrap()
            .message
            .contains("messages[0].content[1]"));
        let schema = Needs {
            structured: Structured::JsonSchema,
            ..Needs::default()
        };
        assert!(giga.refuses(&schema).unwrap().message.contains("json_schema"));
        let long = Needs {
            prompt_tokens: 40_000,
            ..Needs::default()
        };
        assert_eq!(giga.refuses(&long).unwrap().need, Need::Context);
        let llava = defaults(ProviderKind::Ollama, QwenApi::Compatible, "llava");
        assert!(llava.refuses(&img).unwrap().message.contains("data:"));
        let inline = Needs {
            images: Some(ImageNeed {
                path: "messages[0].content[1]".into(),
                remote: false,
            }),
            ..Needs::default()
        };
        assert_eq!(llava.refuses(&inline), None);
    }
}
