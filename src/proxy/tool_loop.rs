//! `settings.tools.execution: gateway`: Warden runs the model's tool calls itself. After
//! the request's own stages (authorize, offer, redact, admit), the loop
//!
//! 1. calls the model (`provider::dispatch`), stream or not as the client asked;
//! 2. reads the answer: when it calls registry tools only, those calls run through the
//!    same governance as `POST /v1/tools/{name}/invoke` (`invoke::permit` and
//!    `invoke::perform`: policy, schema, limits, approval, caps, backend, result
//!    redaction) — independent calls at once, identical calls once — with the
//!    placeholders the model was shown restored in their arguments; the answer and the
//!    results are appended to the conversation and the model is called again;
//! 3. otherwise (a final answer, a call to one of the client's own tools, or the last
//!    step `max_steps` allows) the answer goes to the client through the request's answer
//!    chain, streamed as it arrives when the client asked for a stream.
//!
//! Every model call is admitted, settled and recorded as a request of its own, with the
//! id `{request id}.{step}`; every tool call likewise (`{request id}.{step}.{call}`). The
//! client's request carries the final call's admission and usage, and the names of every
//! tool the loop ran. The loop has one deadline; a tool call that started finishes within
//! its own timeout so its record is never lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;
use serde_json::{Map, Value, json};

use super::context::{RequestCtx, Upstream};
use super::invoke::{self, Called};
use super::redaction::Redaction;
use super::rescue::{Failure, rescue};
use super::{Gateway, admission, answer, report, respond};
use crate::idempotency::{Begin, Stored};
use crate::limits::subject_id;
use crate::openai::request::Endpoint;
use crate::openai::{ApiRequest, sse};
use crate::pii::response::Answer;
use crate::policy::{Execution, PolicySet};
use crate::provider::dispatch::{Call, dispatch};
use crate::provider::{ModelRoute, Reply};
use crate::telemetry::trace::Stage;

/// The loop's bounds for one request.
pub struct Plan {
    pub max_steps: u32,
    pub deadline: Duration,
}

/// The loop's plan when the request's rule runs tools in the gateway: a chat request
/// asking for one choice.
pub fn plan(gw: &Gateway, ctx: &RequestCtx, request: &ApiRequest) -> Option<Plan> {
    let tools = ctx.decision()?.settings.tools.as_ref()?;
    if tools.execution != Some(Execution::Gateway)
        || !matches!(request, ApiRequest::Chat(_))
        || request.choices() > 1
    {
        return None;
    }
    let bounds = gw
        .config
        .tools
        .as_ref()
        .map(|t| t.gateway_loop.clone())
        .unwrap_or_default();
    Some(Plan {
        max_steps: tools.max_steps.unwrap_or(bounds.max_steps).clamp(1, 32),
        deadline: Duration::from_secs(bounds.deadline_seconds),
    })
}

/// What the stages before the loop produced.
pub struct Prepared<'a> {
    pub request: ApiRequest,
    /// The client's body, and whether the stages changed it.
    pub raw: &'a Bytes,
    pub body_changed: bool,
    pub model: &'a ModelRoute,
    pub redaction: Redaction,
    pub client_ip: Option<&'a str>,
}

/// A model answer the loop goes on from: the assistant message and its calls.
struct Turn {
    message: Value,
    calls: Vec<ToolCallText>,
}

struct ToolCallText {
    id: String,
    name: String,
    arguments: String,
}

/// What a model call's answer is.
enum Read {
    /// Registry tool calls to run.
    Tools(Turn),
    /// The answer for the client.
    Answer(Reply),
}

pub async fn run(
    gw: &Arc<Gateway>,
    session: &mut Session,
    ctx: &mut RequestCtx,
    plan: Plan,
    prepared: Prepared<'_>,
) -> Result<(), Failure> {
    let Prepared {
        request,
        raw,
        body_changed,
        model,
        redaction,
        client_ip,
    } = prepared;
    let deadline = tokio::time::Instant::now() + plan.deadline;
    let set = gw
        .policy
        .as_ref()
        .map(|p| p.current())
        .ok_or(Failure::Internal)?;
    let mut conversation: Value =
        serde_json::from_slice(&request.to_json()).map_err(|_| Failure::Internal)?;
    let mut next = Some(request);
    for step in 1..=plan.max_steps {
        let last = step == plan.max_steps;
        let mut model_call = child(gw, ctx, format!("{}.{step}", ctx.request_id), ctx.route);
        let request = match next.take() {
            // The first call was admitted with the client's request.
            Some(first) => {
                model_call.admission.ticket = ctx.admission.ticket.take();
                model_call.estimate = ctx.estimate.take();
                first
            }
            None => {
                let bytes = serde_json::to_vec(&conversation).map_err(|_| Failure::Internal)?;
                let request = ApiRequest::parse(Endpoint::ChatCompletions, &bytes)?;
                let demand = admission::estimate(gw, &mut model_call, &request, model);
                let admitted =
                    admission::admit(gw, &mut model_call, client_ip, demand, false).await;
                if let Err(failure) = admitted {
                    return Err(close(gw, &mut model_call, failure));
                }
                request
            }
        };
        let original = match step {
            1 => raw.clone(),
            _ => Bytes::new(),
        };
        let call_id = model_call.request_id.clone();
        model_call.stage(Stage::Dispatch);
        let call = Call {
            request: &request,
            original: &original,
            body_changed: body_changed || step > 1,
            request_id: &call_id,
            trace: model_call.carrier(),
        };
        let runnable = |name: &str| set.tools.get(name).is_some();
        let answered = tokio::time::timeout_at(deadline, async {
            let mut dispatched = dispatch(&gw.upstreams, model, &gw.config.retry, call).await;
            model_call.upstream = Upstream::taken(&mut dispatched);
            model_call.traced(std::mem::take(&mut dispatched.spans));
            let reply = dispatched.reply?;
            let read = read(reply, &mut model_call, &runnable, last).await?;
            Ok::<_, Failure>((read, dispatched.usage_injected))
        })
        .await
        .unwrap_or(Err(Failure::ToolLoopTimeout));
        let (read, usage_injected) = match answered {
            Ok(answered) => answered,
            Err(failure) => return Err(close(gw, &mut model_call, failure)),
        };
        let turn = match read {
            Read::Tools(turn) => turn,
            Read::Answer(reply) => {
                // The client's request carries the call that answers it.
                ctx.admission.ticket = model_call.admission.ticket.take();
                ctx.estimate = model_call.estimate.take();
                ctx.upstream = std::mem::take(&mut model_call.upstream);
                model_call.unreported = None;
                let chain = answer::Chain::for_request(usage_injected, redaction.answer);
                respond::reply(session, ctx, reply, chain).await;
                return Ok(());
            }
        };
        model_call.answered.status = 200;
        merge_tool_calls(ctx, &model_call);
        report::finish(gw, &mut model_call);
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::ToolLoopTimeout);
        }
        let results = run_calls(
            gw,
            ctx,
            &set,
            &turn.calls,
            redaction.answer.as_ref(),
            client_ip,
            step,
        )
        .await;
        append(&mut conversation, turn, results);
    }
    // `max_steps` ≥ 1 and the last step always answers.
    Err(Failure::Internal)
}

/// A request of the loop's own, for the report: the client's principal, decision and
/// facts under a new id.
fn child(gw: &Gateway, parent: &RequestCtx, request_id: String, route: &'static str) -> RequestCtx {
    RequestCtx {
        request_id,
        started: Instant::now(),
        started_at: SystemTime::now(),
        route,
        unreported: Some(report::Unreported::new(gw.audit.clone())),
        body_read: true,
        principal: parent.principal.clone(),
        parsed: parent.parsed.clone(),
        authorized: parent.authorized.clone(),
        trace: parent
            .trace
            .as_ref()
            .map(|t| t.nested(Instant::now(), SystemTime::now())),
        ..RequestCtx::new()
    }
}

/// Ends a model call of the loop that failed — its record says how, its admission is
/// settled — and returns the same error for the client's request.
fn close(gw: &Arc<Gateway>, ctx: &mut RequestCtx, failure: Failure) -> Failure {
    let err = rescue(failure);
    ctx.answered.status = err.status().as_u16();
    ctx.answered.error_code = err.code.clone();
    report::finish(gw, ctx);
    Failure::Protocol(err)
}

/// Reads a model call's answer: its tool calls when they all name registry tools (and
/// this is not the last step), else the answer for the client. A stream is read only as
/// far as it takes to tell: an answer that starts with text is handed on with what was
/// read put back.
async fn read(
    reply: Reply,
    ctx: &mut RequestCtx,
    runnable: &(dyn Fn(&str) -> bool + Sync),
    last: bool,
) -> Result<Read, Failure> {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            if last || !status.is_success() {
                return Ok(Read::Answer(Reply::Full {
                    status,
                    headers,
                    body,
                }));
            }
            let _ = answer::Chain::readers().body(body.clone(), ctx);
            let turn = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| whole_turn(&v))
                .filter(|t| runs_all(t, runnable));
            Ok(match turn {
                Some(turn) => Read::Tools(turn),
                None => Read::Answer(Reply::Full {
                    status,
                    headers,
                    body,
                }),
            })
        }
        Reply::Stream(up) if last => Ok(Read::Answer(Reply::Stream(up))),
        Reply::Stream(mut up) => {
            let mut readers = answer::Chain::readers();
            let mut seen = BytesMut::new();
            let mut parser = sse::Parser::default();
            let mut events = Vec::new();
            let mut turn = StreamTurn::default();
            let mut pending = up.first.take();
            loop {
                let chunk = match pending.take() {
                    Some(chunk) => chunk,
                    None => match up.next_chunk().await.map_err(Failure::Stream)? {
                        Some(chunk) => chunk,
                        None => break,
                    },
                };
                seen.extend_from_slice(&chunk);
                if seen.len() > crate::idempotency::MAX_STORED {
                    // Tool calls are small: a long answer is for the client.
                    up.first = Some(seen.freeze());
                    return Ok(Read::Answer(Reply::Stream(up)));
                }
                parser
                    .feed(&chunk, &mut events)
                    .map_err(|_| Failure::EventTooLarge)?;
                for event in events.drain(..) {
                    if event.is_done() {
                        continue;
                    }
                    if let Ok(v) = serde_json::from_str::<Value>(&event.data)
                        && !turn.add(&v)
                    {
                        up.first = Some(seen.freeze());
                        return Ok(Read::Answer(Reply::Stream(up)));
                    }
                    readers.event(event, ctx);
                }
            }
            readers.end(true, ctx);
            match turn.finish().filter(|t| runs_all(t, runnable)) {
                Some(turn) => Ok(Read::Tools(turn)),
                None => {
                    // Read to its end: the client gets it all from what was kept.
                    up.first = Some(seen.freeze());
                    Ok(Read::Answer(Reply::Stream(up)))
                }
            }
        }
    }
}

/// Whether the loop runs every call of the turn (each names a registry tool).
fn runs_all(turn: &Turn, runnable: &(dyn Fn(&str) -> bool + Sync)) -> bool {
    !turn.calls.is_empty() && turn.calls.iter().all(|c| runnable(&c.name))
}

/// The first choice's message of a whole answer, when it calls tools.
fn whole_turn(answer: &Value) -> Option<Turn> {
    let choices = answer.get("choices")?.as_array()?;
    if choices.len() != 1 {
        return None;
    }
    let message = choices.first()?.get("message")?.clone();
    let calls = message
        .get("tool_calls")?
        .as_array()?
        .iter()
        .map(|c| {
            Some(ToolCallText {
                id: c.get("id")?.as_str()?.to_string(),
                name: c.pointer("/function/name")?.as_str()?.to_string(),
                arguments: c
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_string(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Turn { message, calls })
}

/// A streamed message put together from its deltas.
#[derive(Default)]
struct StreamTurn {
    content: String,
    /// By the delta's `index`: id, name, arguments.
    calls: Vec<(String, String, String)>,
}

impl StreamTurn {
    /// Adds one event; false once the stream shows an answer for the client (text, or
    /// more than one choice).
    fn add(&mut self, event: &Value) -> bool {
        let Some(choices) = event.get("choices").and_then(Value::as_array) else {
            return true; // the usage chunk
        };
        for choice in choices {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                return false;
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                if self.calls.is_empty() {
                    return false;
                }
                self.content.push_str(text);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                if i > 127 {
                    return false;
                }
                if self.calls.len() <= i {
                    self.calls.resize_with(i + 1, Default::default);
                }
                let Some(slot) = self.calls.get_mut(i) else {
                    return false;
                };
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    slot.0 = id.to_string();
                }
                if let Some(name) = call.pointer("/function/name").and_then(Value::as_str) {
                    slot.1.push_str(name);
                }
                if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
                    slot.2.push_str(args);
                }
            }
        }
        true
    }

    fn finish(self) -> Option<Turn> {
        if self.calls.is_empty() || self.calls.iter().any(|c| c.0.is_empty() || c.1.is_empty()) {
            return None;
        }
        let tool_calls: Vec<Value> = self
            .calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}})
            })
            .collect();
        let content = (!self.content.is_empty()).then_some(self.content);
        Some(Turn {
            message: json!({"role": "assistant", "content": content, "tool_calls": tool_calls}),
            calls: self
                .calls
                .into_iter()
                .map(|(id, name, arguments)| ToolCallText {
                    id,
                    name,
                    arguments,
                })
                .collect(),
        })
    }
}

/// Adds the names of the tools a model call of the loop called to the client's request.
fn merge_tool_calls(ctx: &mut RequestCtx, step: &RequestCtx) {
    for (name, n) in &step.answered.tool_calls {
        if ctx.answered.tool_calls.len() < crate::audit::record::MAX_LIST
            || ctx.answered.tool_calls.contains_key(name)
        {
            *ctx.answered.tool_calls.entry(name.clone()).or_default() += n;
        } else {
            ctx.answered.tool_calls_cut += n;
        }
    }
    ctx.answered.tool_calls_cut += step.answered.tool_calls_cut;
}

/// Runs a turn's calls — independent ones at once, identical ones (same tool, same
/// arguments) once — and returns each call's result text, in the turn's order.
async fn run_calls(
    gw: &Arc<Gateway>,
    parent: &RequestCtx,
    set: &PolicySet,
    calls: &[ToolCallText],
    vault: Option<&Answer>,
    client_ip: Option<&str>,
    step: u32,
) -> Vec<String> {
    let restored: Vec<String> = calls
        .iter()
        .map(|c| match vault {
            Some(answer) => answer.restore_arguments(&c.arguments).into_owned(),
            None => c.arguments.clone(),
        })
        .collect();
    let mut first_of: HashMap<(String, String), usize> = HashMap::new();
    let mut unique: Vec<(usize, &ToolCallText, &str)> = Vec::new();
    let owner: Vec<usize> = calls
        .iter()
        .zip(&restored)
        .enumerate()
        .map(|(i, (c, args))| {
            let key = (c.name.clone(), canonical(args));
            *first_of.entry(key).or_insert_with(|| {
                unique.push((i, c, args));
                i
            })
        })
        .collect();
    let runs = unique.iter().map(|&(i, call, args)| {
        let id = format!("{}.{step}.{}", parent.request_id, i + 1);
        one_call(gw, parent, set, id, &call.name, args, client_ip)
    });
    let results: Vec<String> = futures_util::future::join_all(runs).await;
    let by_call: HashMap<usize, String> =
        unique.into_iter().map(|(i, _, _)| i).zip(results).collect();
    owner
        .iter()
        .map(|i| by_call.get(i).cloned().unwrap_or_default())
        .collect()
}

/// Arguments in canonical form when they are JSON (to know identical calls).
fn canonical(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| serde_jcs::to_string(&v).ok())
        .unwrap_or_else(|| arguments.to_string())
}

/// One tool call as a request of its own: governed, recorded, and turned into the text
/// the model reads — the redacted result, a pending approval, or the error.
async fn one_call(
    gw: &Arc<Gateway>,
    parent: &RequestCtx,
    set: &PolicySet,
    request_id: String,
    name: &str,
    arguments: &str,
    client_ip: Option<&str>,
) -> String {
    let mut ctx = child(gw, parent, request_id, "tools_invoke");
    ctx.parsed = None;
    ctx.authorized = None;
    let called = governed(gw, &mut ctx, set, name, arguments, client_ip).await;
    let (status, text) = match called {
        Ok(Called::Ran { result, .. }) => (200, result.to_string()),
        Ok(Called::Waiting(pending)) => (202, pending.to_string()),
        Err(failure) => {
            let err = rescue(failure);
            ctx.answered.error_code = err.code.clone();
            (
                err.status().as_u16(),
                String::from_utf8_lossy(&err.to_json()).into_owned(),
            )
        }
    };
    ctx.answered.status = status;
    report::finish(gw, &mut ctx);
    text
}

/// A model's call through the invoke stages. A `write` or `high` call's redacted result
/// is kept under its derived idempotency key: a repeat within the key's lifetime gets it
/// without running again, and one made while the first still runs waits for it.
async fn governed(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    set: &PolicySet,
    name: &str,
    arguments: &str,
    client_ip: Option<&str>,
) -> Result<Called, Failure> {
    let tool = invoke::find(ctx, set, name)?;
    let args: Map<String, Value> = serde_json::from_str(arguments).map_err(|_| {
        Failure::ToolArguments(format!(
            "The arguments of the call to tool `{}` are not a JSON object.",
            tool.def.name
        ))
    })?;
    invoke::permit(ctx, set, &tool, &args)?;
    if tool.idempotency.is_none() || !gw.idempotency.usable() {
        return invoke::perform(gw, ctx, set, &tool, &args, None, client_ip).await;
    }
    let principal = ctx.principal.clone().ok_or(Failure::Internal)?;
    let tenant = principal.tenant.as_deref();
    let key = invoke::derived_key(tenant, &principal.subject, &tool, &args);
    let subject = subject_id(&principal.subject);
    let scope = format!("tools_loop:{name}");
    let body = serde_jcs::to_vec(&Value::Object(args.clone())).unwrap_or_default();
    // An identical call another request is running is waited for, up to the tool's timeout.
    let wait = Duration::from_millis(tool.def.timeout_ms);
    let begun = gw
        .idempotency
        .begin_waiting((tenant, &subject), &scope, &key, &body, wait)
        .await
        .map_err(|_| Failure::Idempotency(super::replay::Refusal::Unavailable))?;
    match begun {
        Begin::Run(claim) => {
            let called =
                invoke::perform(gw, ctx, set, &tool, &args, Some(key.clone()), client_ip).await;
            let kept = match &called {
                Ok(Called::Ran {
                    result,
                    is_error: false,
                }) => Some(Stored {
                    status: 200,
                    content_type: "application/json".into(),
                    body: result.to_string().into_bytes(),
                }),
                _ => None,
            };
            let done = match kept {
                Some(stored) => gw.idempotency.complete(claim, stored).await,
                None => gw.idempotency.release(claim).await,
            };
            if done.is_err() {
                tracing::warn!(request_id = %ctx.request_id, "tool loop: a result could not be kept");
            }
            called
        }
        Begin::Replay(stored) => {
            if let Some(run) = ctx.tool.as_mut() {
                run.outcome = Some("replayed");
            }
            let result = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
            Ok(Called::Ran {
                result,
                is_error: false,
            })
        }
        Begin::InFlight => Err(Failure::Idempotency(super::replay::Refusal::InFlight)),
        Begin::Mismatch => Err(Failure::Idempotency(super::replay::Refusal::Mismatch)),
    }
}

/// The conversation after a turn: the model's message, then one `tool` message per call.
fn append(conversation: &mut Value, turn: Turn, results: Vec<String>) {
    let Some(body) = conversation.as_object_mut() else {
        return;
    };
    // A forced choice would call tools forever: after the first turn the model decides.
    if body
        .get("tool_choice")
        .is_some_and(|c| c.is_object() || c == "required")
    {
        body.insert("tool_choice".into(), Value::from("auto"));
    }
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    messages.push(turn.message);
    for (call, content) in turn.calls.into_iter().zip(results) {
        messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(d: Value) -> Value {
        json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]})
    }

    #[test]
    fn a_streamed_turn_is_put_together_from_its_deltas() {
        let mut t = StreamTurn::default();
        assert!(t.add(&delta(json!({"role": "assistant", "content": ""}))));
        assert!(t.add(&delta(json!({"tool_calls": [{"index": 0, "id": "c1",
            "function": {"name": "get_price", "arguments": "{\"product"}}]}))));
        assert!(t.add(&delta(json!({"tool_calls": [{"index": 1, "id": "c2",
            "function": {"name": "check_inventory", "arguments": "{}"}}]}))));
        assert!(t.add(&delta(json!({"tool_calls": [{"index": 0,
            "function": {"arguments": "_id\":\"P1\"}"}}]}))));
        assert!(t.add(&json!({"choices": [], "usage": {"prompt_tokens": 1}})));
        let turn = t.finish().unwrap();
        assert_eq!(turn.calls.len(), 2);
        assert_eq!(turn.calls[0].arguments, "{\"product_id\":\"P1\"}");
        assert_eq!(
            turn.message["tool_calls"][1]["function"]["name"],
            "check_inventory"
        );
        assert_eq!(turn.message["content"], Value::Null);
    }

    #[test]
    fn text_first_or_a_second_choice_is_the_clients_answer() {
        let mut t = StreamTurn::default();
        assert!(!t.add(&delta(json!({"content": "Hello"}))));
        let mut t = StreamTurn::default();
        let second = json!({"choices": [{"index": 1, "delta": {"content": ""}}]});
        assert!(!t.add(&second));
        assert!(StreamTurn::default().finish().is_none());
    }

    #[test]
    fn whole_answers_with_calls_are_turns_and_a_forced_choice_is_released() {
        let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant",
            "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_price", "arguments": "{}"}}]}}]});
        let turn = whole_turn(&answer).unwrap();
        assert_eq!(turn.calls[0].name, "get_price");
        assert!(whole_turn(&json!({"choices": [{"message": {"content": "hi"}}]})).is_none());

        let mut conversation = json!({"model": "m", "tool_choice": "required",
            "messages": [{"role": "user", "content": "q"}]});
        append(&mut conversation, turn, vec!["{\"price\":1}".into()]);
        assert_eq!(conversation["tool_choice"], "auto");
        let messages = conversation["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2]["role"], "tool");
        assert_eq!(messages[2]["tool_call_id"], "c1");
        assert_eq!(messages[2]["content"], "{\"price\":1}");
    }

    #[test]
    fn identical_arguments_are_known_in_any_order() {
        assert_eq!(
            canonical("{\"b\":1,\"a\":2}"),
            canonical("{ \"a\": 2, \"b\": 1 }")
        );
        assert_eq!(canonical("not json"), "not json");
    }
}
