//! Checks of a canonical chat request that serde's types cannot make: message content of the right shape for
//! its role, a prompt that is not empty, parameters the gateway can honour. Every surface's request passes here
//! (the pipeline calls it), so no adapter is ever handed a prompt it would turn into `""`.

use serde_json::Value;

use super::{ChatRequest, Message, Role};

/// What kind of refusal: the client's error code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// A value of the wrong type or out of range (`invalid_request`).
    Request,
    /// A parameter the gateway cannot honour across its providers (`unsupported_parameter`).
    Parameter,
    /// A content part no adapter can carry (`unsupported_content`).
    Content,
}

/// Why a request is refused, and the JSON path of the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Kind.
    pub kind: InvalidKind,
    /// JSON path, e.g. `messages[0].content`.
    pub param: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(kind: InvalidKind, param: String, message: impl Into<String>) -> Invalid {
    Invalid {
        kind,
        param,
        message: message.into(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks one content part; returns whether it carries something (text or an image).
fn part(p: &Value, path: &str) -> Result<bool, Invalid> {
    let Some(obj) = p.as_object() else {
        return Err(invalid(
            InvalidKind::Request,
            path.to_string(),
            format!("{path} must be a content part object, not {}", type_name(p)),
        ));
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("text") => match obj.get("text") {
            Some(Value::String(t)) => Ok(!t.trim().is_empty()),
            other => Err(invalid(
                InvalidKind::Request,
                format!("{path}.text"),
                format!(
                    "{path}.text must be a string, not {}",
                    other.map_or("missing", type_name)
                ),
            )),
        },
        Some("image_url") => {
            let url = obj
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str);
            match url {
                Some(u) if !u.trim().is_empty() => Ok(true),
                _ => Err(invalid(
                    InvalidKind::Request,
                    format!("{path}.image_url"),
                    format!("{path}.image_url must be {{\"url\": \"https://... or data:...\"}}"),
                )),
            }
        }
        Some(other) => Err(invalid(
            InvalidKind::Content,
            format!("{path}.type"),
            format!("content part type {other:?} is not supported by this gateway (text and image_url are)"),
        )),
        None => Err(invalid(
            InvalidKind::Request,
            format!("{path}.type"),
            format!("{path} needs a \"type\" (text or image_url)"),
        )),
    }
}

/// Checks one message's content; returns whether the message carries anything.
fn message(m: &Message, i: usize) -> Result<bool, Invalid> {
    let path = format!("messages[{i}].content");
    let calls = m.tool_calls.as_ref().is_some_and(|c| !c.is_empty()) || m.extra.contains_key("function_call");
    match &m.content {
        Some(Value::String(s)) => Ok(!s.trim().is_empty() || calls),
        Some(Value::Array(parts)) => {
            let mut carries = calls;
            for (j, p) in parts.iter().enumerate() {
                carries |= part(p, &format!("{path}[{j}]"))?;
            }
            Ok(carries)
        }
        None | Some(Value::Null) if m.role == Role::Assistant && calls => Ok(true),
        None | Some(Value::Null) => Err(invalid(
            InvalidKind::Request,
            path.clone(),
            format!(
                "{path} is required for a {} message (a string or an array of content parts)",
                role_name(m.role)
            ),
        )),
        Some(other) => Err(invalid(
            InvalidKind::Request,
            path.clone(),
            format!(
                "{path} must be a string or an array of content parts, not {}",
                type_name(other)
            ),
        )),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        Role::Function => "function",
    }
}

/// Checks a chat request; the first problem found, with its path.
pub fn chat(req: &ChatRequest) -> Result<(), Invalid> {
    if req.messages.is_empty() {
        return Err(invalid(
            InvalidKind::Request,
            "messages".into(),
            "'messages' is required and must be a non-empty array",
        ));
    }
    let mut carries = false;
    for (i, m) in req.messages.iter().enumerate() {
        carries |= message(m, i)?;
    }
    if !carries {
        return Err(invalid(
            InvalidKind::Request,
            "messages".into(),
            "the prompt is empty: no message has text (other than white space), an image or a tool call",
        ));
    }
    for (key, v) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if v == Some(0) {
            return Err(invalid(
                InvalidKind::Request,
                key.into(),
                format!("{key} must be at least 1"),
            ));
        }
    }
    match req.extra.get("n") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 1) => {
            return Err(invalid(
                InvalidKind::Parameter,
                "n".into(),
                "n > 1 is not supported: the gateway returns one choice (send n requests instead)",
            ))
        }
        Some(other) => {
            return Err(invalid(
                InvalidKind::Request,
                "n".into(),
                format!("n must be a positive integer, not {other}"),
            ))
        }
    }
    if let Some(rf) = req.extra.get("response_format") {
        let kind = rf.get("type").and_then(Value::as_str);
        match kind {
            Some("text" | "json_object") => {}
            Some("json_schema") if rf.pointer("/json_schema/schema").is_some_and(Value::is_object) => {}
            Some("json_schema") => {
                return Err(invalid(
                    InvalidKind::Request,
                    "response_format.json_schema.schema".into(),
                    "response_format json_schema needs json_schema.schema, a JSON Schema object",
                ))
            }
            _ => {
                return Err(invalid(
                    InvalidKind::Request,
                    "response_format.type".into(),
                    "response_format.type must be text, json_object or json_schema",
                ))
            }
        }
    }
    for (key, v, max) in [("temperature", req.temperature, 2.0), ("top_p", req.top_p, 1.0)] {
        if let Some(x) = v.filter(|x| !(0.0..=max).contains(x)) {
            return Err(invalid(
                InvalidKind::Request,
                key.into(),
                format!("{key} must be between 0 and {max}, not {x}"),
            ));
        }
    }
    match &req.stop {
        None | Some(Value::Null | Value::String(_)) => {}
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => {}
        Some(other) => {
            return Err(invalid(
                InvalidKind::Request,
                "stop".into(),
                format!("stop must be a string or an array of at most 4 strings, not {other}"),
            ))
        }
    }
    if let Some(so) = req.extra.get("stream_options") {
        if !(so.is_null() || so.is_object()) {
            return Err(invalid(
                InvalidKind::Request,
                "stream_options".into(),
                format!("stream_options must be an object such as {{\"include_usage\": true}}, not {so}"),
            ));
        }
    }
    match &req.tool_choice {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if matches!(s.as_str(), "none" | "auto" | "required") => {}
        Some(Value::Object(o))
            if o.get("type").and_then(Value::as_str) == Some("function")
                && o.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty()) => {}
        Some(other) => {
            return Err(invalid(
                InvalidKind::Request,
                "tool_choice".into(),
                format!(
                    "tool_choice must be \"none\", \"auto\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, not {other}"
                ),
            ))
        }
    }
    if let Some(tools) = &req.tools {
        for (i, t) in tools.iter().enumerate() {
            let ok = t.get("type").and_then(Value::as_str).unwrap_or("function") == "function"
                && t.pointer("/function/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
            if !ok {
                return Err(invalid(
                    InvalidKind::Request,
                    format!("tools[{i}]"),
                    format!("tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn check(messages: Value) -> Result<(), Invalid> {
        chat(&req(json!({"model": "m", "messages": messages})))
    }

    #[test]
    fn wrong_content_types_name_their_path() {
        for bad in [json!(42), json!(true), json!({"x": 1}), Value::Null] {
            let e = check(json!([{"role": "user", "content": bad}])).unwrap_err();
            assert_eq!(e.param, "messages[0].content", "{bad}");
            assert_eq!(e.kind, InvalidKind::Request);
        }
        let e = check(json!([{"role": "system", "content": "s"}, {"role": "user"}])).unwrap_err();
        assert_eq!(e.param, "messages[1].content");
        let e = check(json!([{"role": "user", "content": [{"type": "text", "text": 5}]}])).unwrap_err();
        assert_eq!(e.param, "messages[0].content[0].text");
        let e = check(json!([{"role": "user", "content": [7]}])).unwrap_err();
        assert_eq!(e.param, "messages[0].content[0]");
        let e = check(json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]))
            .unwrap_err();
        assert_eq!(
            (e.kind, e.param.as_str()),
            (InvalidKind::Content, "messages[0].content[0].type")
        );
    }

    #[test]
    fn an_empty_prompt_is_refused_and_tool_turns_are_not() {
        assert!(check(json!([{"role": "user", "content": ""}])).is_err());
        assert!(check(json!([{"role": "user", "content": []}])).is_err());
        // White space only is no prompt either (the upstream would answer to nothing).
        assert!(check(json!([{"role": "user", "content": " \n\t "}])).is_err());
        assert!(check(json!([{"role": "user", "content": [{"type": "text", "text": "  "}]}])).is_err());
        assert!(
            check(json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": " "}]))
                .is_ok()
        );
        assert!(check(json!([{"role": "user", "content": "hi"}])).is_ok());
        assert!(check(json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}])).is_ok());
        let turn = json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "sunny"}
        ]);
        assert!(check(turn).is_ok());
        let e = check(json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null}]))
            .unwrap_err();
        assert_eq!(e.param, "messages[1].content");
    }

    #[test]
    fn sampling_stop_stream_options_and_tool_choice_are_checked() {
        let with = |k: &str, v: Value| {
            let mut r = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            r[k] = v;
            chat(&req(r))
        };
        for (k, v) in [
            ("temperature", json!(2.5)),
            ("temperature", json!(-1)),
            ("top_p", json!(1.5)),
            ("stop", json!(5)),
            ("stop", json!(["a", "b", "c", "d", "e"])),
            ("stop", json!([1])),
            ("stream_options", json!("x")),
            ("tool_choice", json!(5)),
            ("tool_choice", json!("always")),
            ("tool_choice", json!({"type": "function"})),
        ] {
            assert_eq!(with(k, v.clone()).unwrap_err().param, k, "{k}: {v}");
        }
        for (k, v) in [
            ("temperature", json!(0)),
            ("temperature", json!(2)),
            ("top_p", json!(0.9)),
            ("stop", json!("\n")),
            ("stop", json!(["a", "b"])),
            ("stream_options", json!({"include_usage": true})),
            ("tool_choice", json!("required")),
            (
                "tool_choice",
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            assert!(with(k, v.clone()).is_ok(), "{k}: {v}");
        }
    }

    #[test]
    fn n_and_max_tokens() {
        let base = json!([{"role": "user", "content": "hi"}]);
        let with = |k: &str, v: Value| {
            let mut r = json!({"model": "m", "messages": base.clone()});
            r[k] = v;
            chat(&req(r))
        };
        assert!(with("n", json!(1)).is_ok());
        assert_eq!(with("n", json!(1000)).unwrap_err().kind, InvalidKind::Parameter);
        assert_eq!(with("n", json!(0)).unwrap_err().kind, InvalidKind::Request);
        assert_eq!(with("n", json!("2")).unwrap_err().kind, InvalidKind::Request);
        assert_eq!(with("max_tokens", json!(0)).unwrap_err().param, "max_tokens");
        assert_eq!(
            with("max_completion_tokens", json!(0)).unwrap_err().param,
            "max_completion_tokens"
        );
        assert!(with("max_tokens", json!(1)).is_ok());
        assert_eq!(
            with("response_format", json!({"type": "json_schema"}))
                .unwrap_err()
                .param,
            "response_format.json_schema.schema"
        );
        assert_eq!(
            with("tools", json!([{"type": "function"}])).unwrap_err().param,
            "tools[0]"
        );
    }
}
