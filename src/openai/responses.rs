//! The Responses API's request body (`POST /v1/responses`). `input` and `tools` stay JSON
//! values — their items come in many shapes (messages, function calls and their outputs,
//! reasoning, item references; function, custom and provider-hosted tools) — and every
//! field Warden does not model stays in `extra`, so nothing the client sent is lost on
//! the way to the provider. This module names the tools a request offers: function and
//! custom tools by name, provider-hosted tools (`web_search`, `file_search`, `mcp`, …) by
//! type as `builtin:{type}`, so a policy can allow or deny each.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::request::valid_tool_name;
use super::sse::Event;

/// How a provider-hosted tool is named for policy: `builtin:web_search`. The colon
/// cannot occur in a function name, so the two never collide.
pub const BUILTIN_PREFIX: &str = "builtin:";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string, or an array of input items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResponsesRequest {
    /// Refuses what Warden cannot govern: a background response is answered before it is
    /// generated (its usage and answer never pass Warden), a `conversation` object lives
    /// at the provider outside the response chain Warden tracks, and an
    /// `item_reference` names a stored item whose owner Warden does not know.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.extra.get("background").and_then(Value::as_bool) == Some(true) {
            return Err(ApiError::invalid(
                "'background': true is not supported through Warden: a background response's \
                 answer and usage never pass the gateway.",
            )
            .with_param("background"));
        }
        if self.extra.get("conversation").is_some_and(|c| !c.is_null()) {
            return Err(ApiError::invalid(
                "'conversation' is not supported through Warden; continue a conversation with \
                 'previous_response_id'.",
            )
            .with_param("conversation"));
        }
        if let Some(input) = &self.input
            && !(input.is_string() || input.is_array())
        {
            return Err(
                ApiError::invalid("'input' must be a string or an array of input items.")
                    .with_param("input"),
            );
        }
        // An item reference names an item of any conversation kept under the provider
        // account every tenant shares; ownership is known per response, not per item.
        if let Some(Value::Array(items)) = &self.input
            && items
                .iter()
                .any(|i| i.get("type").and_then(Value::as_str) == Some("item_reference"))
        {
            return Err(ApiError::invalid(
                "Input items of type 'item_reference' are not supported through Warden; \
                 send the item itself, or continue with 'previous_response_id'.",
            )
            .with_param("input"));
        }
        if let Some(id) = &self.previous_response_id
            && id.trim().is_empty()
        {
            return Err(
                ApiError::invalid("'previous_response_id' must not be empty.")
                    .with_param("previous_response_id"),
            );
        }
        Ok(())
    }

    /// Whether the provider keeps the response (`store`, its default), so it can be
    /// read again and continued.
    pub fn stored(&self) -> bool {
        self.store != Some(false)
    }

    /// Every tool the model could use, named for policy (see the module's comment). A
    /// tool Warden cannot name makes the request invalid.
    pub fn offered_tools(&self, names: &mut Vec<String>) -> Result<(), ApiError> {
        for tool in self.tools.iter().flatten() {
            tool_name(tool, names, "tools")?;
        }
        if let Some(choice) = &self.tool_choice {
            chosen(choice, names)?;
        }
        Ok(())
    }
}

/// The text of a message's `content`: the string, or its parts' texts joined by newlines
/// (chat's `text` parts, the Responses API's `input_text` and `output_text`).
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The types of the event that ends a Responses stream, as `[DONE]` ends chat's.
const FINAL_EVENTS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// Whether `event` ends a Responses stream: named so, or (unnamed) data of that type.
pub fn ends_stream(event: &Event) -> bool {
    match &event.event {
        Some(name) => FINAL_EVENTS.contains(&name.as_str()),
        None => {
            #[derive(serde::Deserialize)]
            struct Typed<'a> {
                #[serde(borrow, rename = "type")]
                kind: Option<std::borrow::Cow<'a, str>>,
            }
            // Only data naming a final type anywhere is parsed.
            FINAL_EVENTS.iter().any(|t| event.data.contains(t))
                && serde_json::from_str::<Typed<'_>>(&event.data)
                    .ok()
                    .and_then(|t| t.kind)
                    .is_some_and(|k| FINAL_EVENTS.contains(&k.as_ref()))
        }
    }
}

/// The policy name of one tool definition (or a tool named inside `tool_choice`).
fn tool_name(tool: &Value, names: &mut Vec<String>, param: &str) -> Result<(), ApiError> {
    let bad = |what: &str| {
        ApiError::invalid(format!("Each entry of '{param}' {what}.")).with_param(param)
    };
    let kind = tool
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("must have a string 'type'"))?;
    let name = match kind {
        "function" | "custom" => {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("of type function or custom must have a name"))?;
            if !valid_tool_name(name) {
                return Err(bad("must have a name matching ^[a-zA-Z0-9_-]{1,64}$"));
            }
            name.to_string()
        }
        other => {
            let known = (1..=64).contains(&other.len())
                && other
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !known {
                return Err(bad(
                    "must have a type of lower-case letters, digits and '_'",
                ));
            }
            format!("{BUILTIN_PREFIX}{other}")
        }
    };
    if !names.contains(&name) {
        names.push(name);
    }
    Ok(())
}

/// The tools a Responses `tool_choice` names: a mode (`auto`, `none`, `required`), a
/// tool (`{type: function, name}`, `{type: web_search}`, `{type: mcp, server_label}`) or
/// `{type: allowed_tools, tools: […]}`.
fn chosen(choice: &Value, names: &mut Vec<String>) -> Result<(), ApiError> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => Ok(()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("allowed_tools") => o
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ApiError::invalid("'tool_choice' of type allowed_tools must list 'tools'.")
                    .with_param("tool_choice")
            })?
            .iter()
            .try_for_each(|t| tool_name(t, names, "tool_choice")),
        Value::Object(_) => tool_name(choice, names, "tool_choice"),
        _ => Err(
            ApiError::invalid("'tool_choice' names no tool Warden can identify.")
                .with_param("tool_choice"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn tools(v: Value) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        parse(v).offered_tools(&mut names)?;
        Ok(names)
    }

    #[test]
    fn names_function_custom_and_hosted_tools() {
        let names = tools(json!({"model": "m", "input": "x",
            "tools": [
                {"type": "function", "name": "lookup_order", "parameters": {}},
                {"type": "custom", "name": "sql"},
                {"type": "web_search"},
                {"type": "mcp", "server_label": "crm", "server_url": "https://crm.example"}
            ],
            "tool_choice": {"type": "allowed_tools", "mode": "auto",
                "tools": [{"type": "function", "name": "refund_order"}, {"type": "file_search"}]}
        }))
        .unwrap();
        assert_eq!(
            names,
            [
                "lookup_order",
                "sql",
                "builtin:web_search",
                "builtin:mcp",
                "refund_order",
                "builtin:file_search"
            ]
        );
        let forced = tools(json!({"model": "m",
            "tool_choice": {"type": "code_interpreter"}}))
        .unwrap();
        assert_eq!(forced, ["builtin:code_interpreter"]);
    }

    #[test]
    fn tools_warden_cannot_name_are_refused() {
        for bad in [
            json!({"tools": [{"name": "no_type"}]}),
            json!({"tools": [{"type": "function"}]}),
            json!({"tools": [{"type": "function", "name": "refund order"}]}),
            json!({"tools": [{"type": "Web Search"}]}),
            json!({"tool_choice": "sometimes"}),
            json!({"tool_choice": {"type": "allowed_tools"}}),
            json!({"tool_choice": 3}),
        ] {
            let mut body = bad.clone();
            body["model"] = "m".into();
            assert!(tools(body).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_final_events_end_a_stream() {
        let named = |n: &str| Event {
            event: Some(n.into()),
            ..Event::data("{}".into())
        };
        assert!(ends_stream(&named("response.completed")));
        assert!(ends_stream(&named("response.failed")));
        assert!(!ends_stream(&named("response.output_text.delta")));
        assert!(ends_stream(&Event::data(
            r#"{"type":"response.incomplete","response":{}}"#.into()
        )));
        assert!(!ends_stream(&Event::data(
            r#"{"type":"response.output_text.delta","delta":""type":"response.completed""}"#.into()
        )));
    }

    #[test]
    fn what_warden_cannot_govern_is_refused() {
        for (bad, param) in [
            (json!({"background": true}), "background"),
            (json!({"conversation": "conv_1"}), "conversation"),
            (json!({"input": 3}), "input"),
            (json!({"previous_response_id": " "}), "previous_response_id"),
            (
                json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
                "input",
            ),
        ] {
            let mut body = bad.clone();
            body["model"] = "m".into();
            let err = parse(body).validate().unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{bad}");
        }
        parse(json!({"model": "m", "background": false, "conversation": null}))
            .validate()
            .unwrap();
    }
}
