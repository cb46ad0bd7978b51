//! A provider-neutral view of a chat request and the deterministic answer the fakes give to it.

use crate::content::{answer, chunks, count_tokens, limit_tokens};
use crate::provider::Provider;
use crate::structured::{instance, OutputFormat};
use serde_json::{json, Map, Value};

/// One message: role and its text (parts arrays flattened).
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) role: String,
    pub(crate) text: String,
}

/// A tool (function) the client offered.
#[derive(Debug, Clone)]
pub(crate) struct ToolDef {
    pub(crate) name: String,
    pub(crate) parameters: Value,
}

/// How the client wants tools used.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// The parts of a chat request the fakes act on.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    pub(crate) messages: Vec<Message>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) tools: Vec<ToolDef>,
    pub(crate) tool_choice: ToolChoice,
    pub(crate) temperature: Option<f64>,
    /// What the text must be: prose, any JSON object, or an instance of a schema.
    pub(crate) format: OutputFormat,
}

/// A request problem: which parameter and what is wrong with it.
#[derive(Debug, Clone)]
pub(crate) struct Invalid {
    pub(crate) param: Option<&'static str>,
    pub(crate) message: String,
}

impl Invalid {
    pub(crate) fn new(param: Option<&'static str>, message: impl Into<String>) -> Self {
        Invalid {
            param,
            message: message.into(),
        }
    }
}

/// The text of a message `content`: a string, or the `text` of each part of an array.
pub(crate) fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
        _ => String::new(),
    }
}

/// Parses a message list (OpenAI, GigaChat, Ollama and DashScope all use `{role, content}`).
pub(crate) fn parse_messages(v: Option<&Value>) -> Result<Vec<Message>, Invalid> {
    let Some(v) = v else {
        return Err(Invalid::new(
            Some("messages"),
            "Missing required parameter: 'messages'.",
        ));
    };
    let Some(items) = v.as_array() else {
        return Err(Invalid::new(
            Some("messages"),
            "Invalid type for 'messages': expected an array.",
        ));
    };
    if items.is_empty() {
        return Err(Invalid::new(
            Some("messages"),
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
                Invalid::new(
                    Some("messages"),
                    format!("Missing required parameter: 'messages[{i}].role'."),
                )
            })?;
            Ok(Message {
                role: role.to_string(),
                text: content_text(m.get("content")),
            })
        })
        .collect()
}

fn parse_tools(body: &Map<String, Value>) -> Vec<ToolDef> {
    let from = |list: &Value, nested: bool| -> Vec<ToolDef> {
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|t| {
                        let f = if nested { t.get("function")? } else { t };
                        Some(ToolDef {
                            name: f.get("name")?.as_str()?.to_string(),
                            parameters: f.get("parameters").cloned().unwrap_or(Value::Null),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tools = body.get("tools").map(|t| from(t, true)).unwrap_or_default();
    if tools.is_empty() {
        tools = body.get("functions").map(|t| from(t, false)).unwrap_or_default();
    }
    tools
}

fn parse_choice(v: Option<&Value>) -> ToolChoice {
    match v {
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .or_else(|| o.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.to_string()))
            .unwrap_or(ToolChoice::Auto),
        _ => ToolChoice::Auto,
    }
}

/// `tools`/`functions` must be arrays of objects, `tool_choice`/`function_call` a known string or an object.
fn check_tool_types(body: &Map<String, Value>) -> Result<(), Invalid> {
    use crate::structured::type_name;
    for key in ["tools", "functions"] {
        let param = if key == "tools" { "tools" } else { "functions" };
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if let Some((i, t)) = items.iter().enumerate().find(|(_, t)| !t.is_object()) {
                    return Err(Invalid::new(
                        Some(param),
                        format!(
                            "Invalid type for '{key}[{i}]': expected an object, but got {} instead.",
                            type_name(t)
                        ),
                    ));
                }
            }
            Some(v) => {
                return Err(Invalid::new(
                    Some(param),
                    format!(
                        "Invalid type for '{key}': expected an array, but got {} instead.",
                        type_name(v)
                    ),
                ))
            }
        }
    }
    for key in ["tool_choice", "function_call"] {
        let param = if key == "tool_choice" {
            "tool_choice"
        } else {
            "function_call"
        };
        match body.get(key) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {}
            Some(Value::String(s)) => {
                return Err(Invalid::new(
                    Some(param),
                    format!("Invalid value: '{s}'. Supported values are: 'none', 'auto', and 'required'."),
                ))
            }
            Some(v) => {
                return Err(Invalid::new(
                    Some(param),
                    format!(
                        "Invalid type for '{key}': expected a string or an object, but got {} instead.",
                        type_name(v)
                    ),
                ))
            }
        }
    }
    Ok(())
}

impl ChatRequest {
    /// Reads an OpenAI-shaped body (GigaChat's `functions`/`function_call` and Ollama's `options`
    /// are understood too).
    pub(crate) fn parse(body: &Map<String, Value>, default_stream: bool) -> Result<Self, Invalid> {
        let model = match body.get("model") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) | None => {
                return Err(Invalid::new(Some("model"), "you must provide a model parameter"))
            }
            Some(_) => {
                return Err(Invalid::new(
                    Some("model"),
                    "Invalid type for 'model': expected a string.",
                ))
            }
        };
        let messages = parse_messages(body.get("messages"))?;
        let stream = match body.get("stream") {
            None | Some(Value::Null) => default_stream,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Invalid::new(
                    Some("stream"),
                    "Invalid type for 'stream': expected a boolean.",
                ))
            }
        };
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let options = body.get("options");
        let max_tokens = body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"))
            .or_else(|| options.and_then(|o| o.get("num_predict")))
            .and_then(Value::as_i64)
            .filter(|n| *n > 0)
            .map(|n| n as u64);
        let temperature = match body
            .get("temperature")
            .or_else(|| options.and_then(|o| o.get("temperature")))
        {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| {
                Invalid::new(
                    Some("temperature"),
                    "Invalid type for 'temperature': expected a number.",
                )
            })?),
        };
        check_tool_types(body)?;
        let tool_choice = parse_choice(body.get("tool_choice").or_else(|| body.get("function_call")));
        let format = crate::structured::response_format(body.get("response_format"))?;
        Ok(ChatRequest {
            model,
            messages,
            stream,
            include_usage,
            max_tokens,
            tools: parse_tools(body),
            tool_choice,
            temperature,
            format,
        })
    }

    /// The text the answer responds to: the last user message (or the last message of any role), without the
    /// `<system-reminder>` context that Claude Code and the Claude Agent SDK put before the user's words (a
    /// model reads it as context, not as the question).
    pub(crate) fn prompt(&self) -> &str {
        let text = self
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .or_else(|| self.messages.last())
            .map(|m| m.text.as_str())
            .unwrap_or("");
        const END: &str = "</system-reminder>";
        match text.rfind(END).map(|i| text[i + END.len()..].trim()) {
            Some(rest) if !rest.is_empty() => rest,
            _ => text,
        }
    }

    /// Prompt tokens: every message's text plus a few tokens of framing each.
    pub(crate) fn prompt_tokens(&self) -> u32 {
        self.messages
            .iter()
            .map(|m| count_tokens(&m.text) + 4)
            .sum::<u32>()
            + 3
    }

    /// The tool to call, if the request offers tools and the conversation is not already past a call.
    fn tool_to_call(&self) -> Option<&ToolDef> {
        let last_role = self.messages.last().map(|m| m.role.as_str()).unwrap_or("");
        if self.tools.is_empty()
            || self.tool_choice == ToolChoice::None
            || matches!(last_role, "tool" | "function")
        {
            return None;
        }
        match &self.tool_choice {
            ToolChoice::Named(n) => self.tools.iter().find(|t| &t.name == n),
            _ => self.tools.first(),
        }
    }

    /// The deterministic answer of `provider` to this request.
    pub(crate) fn answer(&self, provider: Provider) -> Answer {
        let prompt_tokens = self.prompt_tokens();
        if let Some(tool) = self.tool_to_call() {
            let args = arguments_for(&tool.parameters, self.prompt());
            let completion_tokens = count_tokens(&args.to_string()) + 5;
            return Answer {
                text: String::new(),
                tool_call: Some((tool.name.clone(), args)),
                finish: Finish::ToolCalls,
                prompt_tokens,
                completion_tokens,
                json: false,
            };
        }
        let structured = match &self.format {
            OutputFormat::Text => None,
            OutputFormat::JsonObject => Some(json!({"answer": answer(provider, self.prompt())})),
            OutputFormat::JsonSchema { schema, .. } => Some(instance(schema, None)),
        };
        if let Some(v) = structured {
            // Structured output is never cut: a partial JSON document helps no one rehearse.
            let text = v.to_string();
            return Answer {
                completion_tokens: count_tokens(&text),
                text,
                tool_call: None,
                finish: Finish::Stop,
                prompt_tokens,
                json: true,
            };
        }
        let full = answer(provider, self.prompt());
        let (text, cut) = limit_tokens(&full, self.max_tokens);
        let completion_tokens = count_tokens(&text);
        Answer {
            text,
            tool_call: None,
            finish: if cut { Finish::Length } else { Finish::Stop },
            prompt_tokens,
            completion_tokens,
            json: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Finish {
    Stop,
    Length,
    ToolCalls,
}

/// The answer to a chat request.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) text: String,
    /// Function name and arguments (an object).
    pub(crate) tool_call: Option<(String, Value)>,
    pub(crate) finish: Finish,
    pub(crate) prompt_tokens: u32,
    pub(crate) completion_tokens: u32,
    /// The text is a JSON document (structured output): streams split it by characters, not words.
    pub(crate) json: bool,
}

impl Answer {
    /// The text as stream pieces: a few words each, or 16 characters each for JSON; joined they give the text.
    pub(crate) fn pieces(&self) -> Vec<String> {
        if !self.json {
            return chunks(&self.text);
        }
        let chars: Vec<char> = self.text.chars().collect();
        chars.chunks(16).map(|c| c.iter().collect()).collect()
    }

    /// OpenAI's `finish_reason` for it.
    pub(crate) fn openai_finish(&self) -> &'static str {
        match self.finish {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolCalls => "tool_calls",
        }
    }

    pub(crate) fn total_tokens(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Arguments for a tool call: an instance of the tool's `parameters` schema whose free-form strings echo the start
/// of the prompt.
///
/// Only the `required` properties are given when the schema lists them, as a model calls a tool: an agent's
/// optional switches (Claude Code's `run_in_background`, Codex's `yield_time_ms`, ...) keep their defaults. A
/// strict schema lists every property as required, so it still gets them all.
pub(crate) fn arguments_for(schema: &Value, prompt: &str) -> Value {
    let snippet: String = prompt.chars().take(40).collect();
    let Value::Object(mut args) = instance(schema, Some(&snippet)) else {
        return json!({});
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        args.retain(|k, _| required.iter().any(|r| r.as_str() == Some(k.as_str())));
    }
    Value::Object(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> Result<ChatRequest, Invalid> {
        ChatRequest::parse(v.as_object().unwrap(), false)
    }

    #[test]
    fn parses_parts_and_finds_prompt() {
        let r = req(
            json!({"model":"m","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hello"}]}]}),
        )
        .unwrap();
        assert_eq!(r.prompt(), "hello");
        assert!(r.prompt_tokens() > 8);
    }

    #[test]
    fn missing_messages_and_model_are_named() {
        assert_eq!(req(json!({"model":"m"})).unwrap_err().param, Some("messages"));
        assert_eq!(
            req(json!({"messages":[{"role":"user","content":"x"}]}))
                .unwrap_err()
                .param,
            Some("model")
        );
        assert_eq!(
            req(json!({"model":"m","messages":[]})).unwrap_err().param,
            Some("messages")
        );
    }

    #[test]
    fn system_reminders_are_not_the_prompt() {
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nAs you answer the user\n</system-reminder>"},
            {"type": "text", "text": "echo hi"}]}]}))
        .unwrap();
        assert_eq!(r.prompt(), "echo hi");
        let only = req(json!({"model": "m", "messages": [{"role": "user", "content": "<system-reminder>x</system-reminder>"}]}))
            .unwrap();
        assert_eq!(only.prompt(), "<system-reminder>x</system-reminder>");
    }

    #[test]
    fn tool_call_until_tool_result() {
        let tools = json!([{"type":"function","function":{"name":"get_weather","parameters":{
            "type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}}}]);
        let r = req(
            json!({"model":"m","tools":tools,"messages":[{"role":"user","content":"Weather in Paris?"}]}),
        )
        .unwrap();
        let a = r.answer(Provider::OpenAi);
        let (name, args) = a.tool_call.unwrap();
        assert_eq!(name, "get_weather");
        assert_eq!(args, json!({"city":"Weather in Paris?","days":1}));
        let r = req(
            json!({"model":"m","tools":tools,"messages":[{"role":"user","content":"x"},
            {"role":"tool","content":"sunny","tool_call_id":"c"}]}),
        )
        .unwrap();
        assert!(r.answer(Provider::OpenAi).tool_call.is_none());
    }

    #[test]
    fn tool_fields_of_the_wrong_type_are_named() {
        let m = json!([{"role": "user", "content": "x"}]);
        for (k, v) in [
            ("tools", json!({})),
            ("tools", json!([1])),
            ("functions", json!("f")),
            ("tool_choice", json!(3)),
            ("tool_choice", json!("always")),
            ("function_call", json!([])),
        ] {
            let mut b = json!({"model": "m", "messages": m});
            b[k] = v;
            assert_eq!(req(b).unwrap_err().param, Some(k));
        }
    }

    #[test]
    fn structured_answers_are_json_in_character_pieces() {
        let r = req(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object",
            "properties": {"title": {"type": "string"}, "n": {"type": "integer"}}}}}})).unwrap();
        let a = r.answer(Provider::OpenAi);
        assert_eq!(a.text, r#"{"n":1,"title":"example title"}"#);
        assert_eq!(a.finish, Finish::Stop, "never cut");
        assert!(a.pieces().len() > 1);
        assert_eq!(a.pieces().concat(), a.text);
    }

    #[test]
    fn max_tokens_cuts_with_length() {
        let r = req(json!({"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}]})).unwrap();
        assert_eq!(r.answer(Provider::OpenAi).finish, Finish::Length);
    }
}
