//! What a request needs of a candidate, computed once per request: its images, tools, structured output and
//! prompt size (chat), its vector space and input form (embeddings).

use serde_json::Value;

use crate::api::AppState;
use crate::canonical::{ChatRequest, EmbeddingInput, EmbeddingsRequest};
use crate::providers::capabilities::{ImageNeed, Needs, Space, Structured};

/// Characters per token of the estimate. Tokenizers give 3 to 4 characters a token for English and fewer for
/// most other scripts, so dividing by 4 stays at or under the real count: a candidate is skipped only when the
/// prompt surely does not fit.
const CHARS_PER_TOKEN: usize = 4;

/// What a chat request needs.
pub(super) fn chat(req: &ChatRequest) -> Needs {
    let mut images: Option<ImageNeed> = None;
    let mut chars = 0usize;
    for (i, m) in req.messages.iter().enumerate() {
        match &m.content {
            Some(Value::String(s)) => chars += s.chars().count(),
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    match p.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            chars += p
                                .get("text")
                                .and_then(Value::as_str)
                                .map_or(0, |t| t.chars().count());
                        }
                        Some("image_url") => {
                            let url = p
                                .get("image_url")
                                .and_then(|u| u.get("url").or(Some(u)))
                                .and_then(Value::as_str)
                                .unwrap_or("");
                            let remote = !url.trim_start().starts_with("data:");
                            match images.as_mut() {
                                Some(n) => n.remote |= remote,
                                None => {
                                    images = Some(ImageNeed {
                                        path: format!("messages[{i}].content[{j}]"),
                                        remote,
                                    })
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        for c in m.tool_calls.iter().flatten() {
            chars += c.function.arguments.chars().count() + c.function.name.len();
        }
    }
    let tool_choice_none = req.tool_choice.as_ref().and_then(Value::as_str) == Some("none");
    let tools = !tool_choice_none && req.tools.as_ref().is_some_and(|t| !t.is_empty());
    let structured = match req
        .extra
        .get("response_format")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_schema") => Structured::JsonSchema,
        Some("json_object") => Structured::JsonObject,
        _ => Structured::None,
    };
    Needs {
        images,
        tools,
        structured,
        prompt_tokens: u32::try_from(chars / CHARS_PER_TOKEN).unwrap_or(u32::MAX),
        ..Needs::default()
    }
}

/// What an embeddings request needs: vectors of the space of the model's primary provider (the one
/// `X-LLM-Provider` names, else the first of the fallback order that serves the model, whatever the mode and
/// health), token-id input when it sends token ids, and its `dimensions` honoured.
pub(super) fn embeddings(state: &AppState, req: &EmbeddingsRequest, preferred: Option<&str>) -> Needs {
    let space = state
        .router
        .planner()
        .primary(&req.model, preferred)
        .map(|caps| Space {
            name: caps.space,
            dimensions: caps.dimensions,
        });
    Needs {
        space,
        token_input: matches!(req.input, EmbeddingInput::Tokens(_)),
        dimensions: req.dimensions,
        ..Needs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn needs(v: Value) -> Needs {
        chat(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn images_tools_and_json_are_seen() {
        let n = needs(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
        ], "tools": [{"type": "function", "function": {"name": "f"}}],
           "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}));
        assert_eq!(
            n.images,
            Some(ImageNeed {
                path: "messages[0].content[1]".into(),
                remote: true
            })
        );
        assert!(n.tools);
        assert_eq!(n.structured, Structured::JsonSchema);
        let none = needs(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}),
        );
        assert!(!none.tools && none.images.is_none() && none.structured == Structured::None);
    }

    #[test]
    fn the_prompt_estimate_is_a_quarter_of_its_characters() {
        let text = "x".repeat(900_000);
        let n = needs(json!({"model": "m", "messages": [{"role": "user", "content": text}]}));
        assert_eq!(n.prompt_tokens, 225_000);
    }
}
