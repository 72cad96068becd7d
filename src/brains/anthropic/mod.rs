//! The Claude brain: the Messages API streamed over SSE, in an agent loop. The model gathers
//! evidence with the subject's read-only tools, then submits its diagnosis through the
//! `submit_diagnosis` tool. Text and thinking stream to the reasoning sink as they arrive.
//! Everything it returns is untrusted: schema-checked here, validated again by the engine.
//! Over budget, or with the API unavailable after retries, the rules brain answers instead and
//! the diagnosis says so.

mod retry;
pub mod wire;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use operator_protocol::{
    BoxFuture, Brain, ContractError, ContractResult, Cost, Diagnosis, DiagnosisContext,
    ReasoningEvent, ReasoningSink, ToolBox, ToolCall,
};
use serde_json::{Value, json};

use super::RulesBrain;
use super::prompt::{self, SUBMIT_DIAGNOSIS};
use wire::{Shown, StreamEvent, Turn};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// A current Sonnet id (reference §5); `--model` or OPERATOR_MODEL picks another.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// Per-ticket limits; past any of them the rules brain answers.
#[derive(Debug, Clone)]
pub struct Budget {
    pub max_tool_calls: u32,
    pub max_tokens: u64,
    pub max_wall: Duration,
    pub max_turns: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_tool_calls: 12,
            max_tokens: 80_000,
            max_wall: Duration::from_secs(90),
            max_turns: 10,
        }
    }
}

#[derive(Clone)]
pub struct AnthropicConfig {
    pub base_url: String,
    api_key: String,
    pub model: String,
    pub max_tokens: u32,
    pub budget: Budget,
}

impl std::fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl AnthropicConfig {
    pub fn new(base_url: &str, api_key: &str, model: &str) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            max_tokens: 2048,
            budget: Budget::default(),
        }
    }

    /// The key from ANTHROPIC_API_KEY, the base URL from ANTHROPIC_BASE_URL.
    pub fn from_env(model: Option<String>) -> Result<Self, String> {
        let api_key = std::env::var("ANTHROPIC_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or("the anthropic brain needs an API key: set ANTHROPIC_API_KEY (or use --brain rules)")?;
        Ok(Self {
            base_url: std::env::var("ANTHROPIC_BASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            api_key,
            model: model.unwrap_or_else(|| DEFAULT_MODEL.into()),
            max_tokens: 2048,
            budget: Budget::default(),
        })
    }
}

/// Why the loop stopped without a diagnosis.
enum Failure {
    /// Over budget: the rules brain answers.
    Budget(String),
    /// The API could not be used (overloaded, down) after retries: the rules brain answers.
    Unavailable(String),
    /// The model's output or the request itself is unusable: the ticket escalates with this.
    Refused(String),
}

pub struct AnthropicBrain {
    config: AnthropicConfig,
    http: reqwest::Client,
}

impl AnthropicBrain {
    pub fn new(config: AnthropicConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { config, http })
    }

    fn body(&self, context: &DiagnosisContext, messages: &[Value]) -> Value {
        let tools: Vec<Value> = prompt::tool_definitions(&context.tools)
            .into_iter()
            .map(|(name, description, schema)| json!({ "name": name, "description": description, "input_schema": schema }))
            .collect();
        json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": prompt::system_prompt(context),
            "messages": messages,
            "tools": tools,
            "stream": true,
        })
    }

    /// One assistant turn, streamed. Retries only before the stream produced anything.
    async fn stream_turn(&self, body: &Value, sink: &dyn ReasoningSink) -> Result<Turn, Failure> {
        let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
        let mut last = String::new();
        for attempt in 0..=retry::MAX_RETRIES {
            if attempt > 0 {
                tracing::info!(attempt, reason = %last, "retrying the Anthropic request");
            }
            let sent = self
                .http
                .post(&url)
                .header("x-api-key", &self.config.api_key)
                .header("anthropic-version", "2023-06-01")
                .header("x-stainless-retry-count", attempt.to_string())
                .json(body)
                .send()
                .await;
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = format!("cannot reach {url}: {e}");
                    tokio::time::sleep(retry::retry_delay(
                        attempt,
                        &Default::default(),
                        fastrand::f64(),
                    ))
                    .await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            if status != 200 {
                let headers = response.headers().clone();
                let text = response.text().await.unwrap_or_default();
                let detail = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        Some(format!(
                            "{} {}",
                            v["error"]["type"].as_str()?,
                            v["error"]["message"].as_str()?
                        ))
                    })
                    .unwrap_or_else(|| text.chars().take(200).collect());
                if status == 401 {
                    return Err(Failure::Refused(format!(
                        "Anthropic rejected the API key (401 {detail}): check ANTHROPIC_API_KEY"
                    )));
                }
                last = format!("Anthropic answered {status} {detail}");
                if !retry::should_retry(status, &headers) {
                    return Err(Failure::Refused(last));
                }
                if attempt < retry::MAX_RETRIES {
                    tokio::time::sleep(retry::retry_delay(attempt, &headers, fastrand::f64()))
                        .await;
                }
                continue;
            }
            match self.read_stream(response, sink).await {
                Ok(turn) => return Ok(turn),
                // Nothing reached the screen or the agent yet: safe to send again.
                Err((false, why)) => last = why,
                Err((true, why)) => return Err(Failure::Unavailable(why)),
            }
        }
        Err(Failure::Unavailable(format!(
            "{last} (after {} attempts)",
            retry::MAX_RETRIES + 1
        )))
    }

    /// Reads one SSE response; on failure says whether output had already been produced.
    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &dyn ReasoningSink,
    ) -> Result<Turn, (bool, String)> {
        let mut events = response.bytes_stream().eventsource();
        let mut turn = Turn::default();
        while let Some(next) = events.next().await {
            let produced = !turn.blocks.is_empty();
            let event = next.map_err(|e| (produced, format!("the stream broke: {e}")))?;
            let parsed: StreamEvent = serde_json::from_str(&event.data).map_err(|e| {
                (
                    produced,
                    format!(
                        "a stream event is not valid JSON ({e}): {}",
                        event.data.chars().take(120).collect::<String>()
                    ),
                )
            })?;
            match turn.apply(parsed) {
                Ok(Some(Shown::Text(text))) => sink.emit(ReasoningEvent::Text { text }),
                Ok(Some(Shown::Thinking(text))) => sink.emit(ReasoningEvent::Thinking { text }),
                Ok(None) => {}
                Err(error) => {
                    return Err((
                        produced,
                        format!(
                            "Anthropic reported {} mid-stream: {}",
                            error.kind, error.message
                        ),
                    ));
                }
            }
            if turn.stopped {
                return Ok(turn);
            }
        }
        Err((
            !turn.blocks.is_empty(),
            "the stream ended before message_stop".into(),
        ))
    }

    async fn agent_loop(
        &self,
        context: &DiagnosisContext,
        tools: &dyn ToolBox,
        sink: &dyn ReasoningSink,
        cost: &mut Cost,
    ) -> Result<Diagnosis, Failure> {
        let budget = &self.config.budget;
        let started = Instant::now();
        let mut messages =
            vec![json!({ "role": "user", "content": prompt::ticket_message(context) })];
        let mut nudged = false;
        for _ in 0..budget.max_turns {
            if started.elapsed() > budget.max_wall {
                return Err(Failure::Budget(format!(
                    "over the {} s time budget",
                    budget.max_wall.as_secs()
                )));
            }
            if cost.input_tokens + cost.output_tokens > budget.max_tokens {
                return Err(Failure::Budget(format!(
                    "over the {} token budget",
                    budget.max_tokens
                )));
            }
            let turn = self
                .stream_turn(&self.body(context, &messages), sink)
                .await?;
            cost.input_tokens += turn.input_tokens;
            cost.output_tokens += turn.output_tokens;
            messages.push(turn.to_message());
            let calls = turn.tool_calls();
            match turn.stop_reason.as_deref() {
                Some("refusal") => {
                    let why = turn
                        .stop_details
                        .as_ref()
                        .and_then(|d| d["explanation"].as_str())
                        .unwrap_or("no reason given");
                    return Err(Failure::Refused(format!(
                        "the model refused to answer: {why}"
                    )));
                }
                Some("max_tokens") if calls.iter().any(|(_, _, input)| input.is_err()) => {
                    return Err(Failure::Refused("the model ran out of tokens (max_tokens) inside a tool call; nothing ran on it".into()));
                }
                _ => {}
            }
            if calls.is_empty() {
                if nudged {
                    return Err(Failure::Refused(
                        "the model stopped without submitting a diagnosis".into(),
                    ));
                }
                nudged = true;
                messages.push(json!({ "role": "user", "content": format!("Call {SUBMIT_DIAGNOSIS} now with your conclusion.") }));
                continue;
            }
            let mut results = Vec::new();
            for (id, name, input) in calls {
                let input = input.map_err(Failure::Refused)?;
                if name == SUBMIT_DIAGNOSIS {
                    let mut diagnosis: Diagnosis = serde_json::from_value(input).map_err(|e| {
                        Failure::Refused(format!(
                            "the submitted diagnosis does not match the schema: {e}"
                        ))
                    })?;
                    diagnosis.cost = cost.clone();
                    return Ok(diagnosis);
                }
                cost.tool_calls += 1;
                if cost.tool_calls > budget.max_tool_calls {
                    return Err(Failure::Budget(format!(
                        "over the budget of {} tool calls",
                        budget.max_tool_calls
                    )));
                }
                let args = match &input {
                    Value::Object(map) => map.clone().into_iter().collect(),
                    _ => Default::default(),
                };
                let call = ToolCall {
                    tool: name.clone(),
                    args,
                };
                sink.emit(ReasoningEvent::ToolCall {
                    tool: name.clone(),
                    args: input.clone(),
                });
                let (content, is_error) = match tools.call(&call).await {
                    Ok(value) => (prompt::tool_result_text(&name, &value), false),
                    Err(e) => (format!("the tool failed: {e}"), true),
                };
                sink.emit(ReasoningEvent::ToolResult {
                    tool: name.clone(),
                    ok: !is_error,
                    summary: content.chars().take(200).collect(),
                });
                results.push(json!({ "type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error }));
            }
            messages.push(json!({ "role": "user", "content": results }));
        }
        Err(Failure::Budget(format!(
            "no diagnosis after {} turns",
            budget.max_turns
        )))
    }
}

impl Brain for AnthropicBrain {
    fn name(&self) -> String {
        format!("anthropic {}", self.config.model)
    }

    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            let mut spent = Cost::default();
            let why = match self.agent_loop(context, tools, sink, &mut spent).await {
                Ok(diagnosis) => return Ok(diagnosis),
                Err(Failure::Refused(why)) => return Err(ContractError::new(why)),
                Err(Failure::Budget(why) | Failure::Unavailable(why)) => why,
            };
            sink.emit(ReasoningEvent::Text {
                text: format!(
                    "\n[{}: {why}; the rules brain answers instead]\n",
                    self.name()
                ),
            });
            let mut diagnosis = RulesBrain.diagnose(context, tools, sink).await?;
            diagnosis.summary = format!(
                "[rules brain, because {}: {why}] {}",
                self.name(),
                diagnosis.summary
            );
            diagnosis.cost.tool_calls += spent.tool_calls;
            diagnosis.cost.input_tokens = spent.input_tokens;
            diagnosis.cost.output_tokens = spent.output_tokens;
            Ok(diagnosis)
        })
    }
}
