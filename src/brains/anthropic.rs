//! The Claude dialect: the Messages API streamed over SSE. Text and thinking deltas go to the
//! reasoning sink as they arrive; tool calls are assembled from their JSON fragments. The agent
//! loop, budgets, retries and fallback are shared with the other LLM brains (`llm`).

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use operator_protocol::{BoxFuture, ReasoningEvent, ReasoningSink};
use serde_json::{Value, json};

use super::anthropic_wire::{Shown, StreamEvent, Turn};
use super::llm::{
    AttemptError, Budget, Conversation, Dialect, LlmBrain, Stop, TurnOutcome, http_client, retry,
    send,
};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// A current Sonnet id (reference §5); `--model` or OPERATOR_MODEL picks another.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

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

pub struct Anthropic {
    config: AnthropicConfig,
    http: reqwest::Client,
}

/// The Claude brain: the shared agent loop speaking the Messages API.
pub type AnthropicBrain = LlmBrain<Anthropic>;

impl LlmBrain<Anthropic> {
    pub fn new(config: AnthropicConfig) -> Result<Self, String> {
        let http = http_client(Duration::from_secs(60))?;
        let budget = config.budget.clone();
        Ok(LlmBrain {
            dialect: Anthropic { config, http },
            budget,
        })
    }
}

impl Anthropic {
    fn body(&self, conversation: &Conversation, messages: &[Value]) -> Value {
        let tools: Vec<Value> = conversation
            .tools
            .iter()
            .map(|(name, description, schema)| json!({ "name": name, "description": description, "input_schema": schema }))
            .collect();
        json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "system": conversation.system,
            "messages": messages,
            "tools": tools,
            "stream": true,
        })
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
}

impl Dialect for Anthropic {
    fn label(&self) -> String {
        format!("anthropic {}", self.config.model)
    }

    fn attempt<'a>(
        &'a self,
        conversation: &'a Conversation,
        messages: &'a [Value],
        attempt: u32,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, Result<TurnOutcome, AttemptError>> {
        Box::pin(async move {
            let url = format!("{}/v1/messages", self.config.base_url.trim_end_matches('/'));
            let request = self
                .http
                .post(&url)
                .header("x-api-key", &self.config.api_key)
                .header("anthropic-version", "2023-06-01")
                .json(&self.body(conversation, messages));
            let response = send(request, attempt, "ANTHROPIC_API_KEY").await?;
            let turn = match self.read_stream(response, sink).await {
                Ok(turn) => turn,
                // Nothing reached the screen or the agent yet: safe to send again.
                Err((false, why)) => {
                    return Err(AttemptError::Retry {
                        why,
                        delay: retry::retry_delay(attempt, &Default::default(), fastrand::f64()),
                    });
                }
                Err((true, why)) => return Err(AttemptError::Unavailable(why)),
            };
            let stop = match turn.stop_reason.as_deref() {
                Some("refusal") => Stop::Refusal(
                    turn.stop_details
                        .as_ref()
                        .and_then(|d| d["explanation"].as_str())
                        .unwrap_or("no reason given")
                        .to_string(),
                ),
                Some("max_tokens") => Stop::MaxTokens,
                _ => Stop::Normal,
            };
            Ok(TurnOutcome {
                text: turn.text(),
                calls: turn.tool_calls(),
                stop,
                message: turn.to_message(),
                input_tokens: turn.input_tokens,
                output_tokens: turn.output_tokens,
            })
        })
    }

    fn tool_results(&self, results: Vec<(String, String, bool)>) -> Vec<Value> {
        let blocks: Vec<Value> = results
            .into_iter()
            .map(|(id, content, is_error)| json!({ "type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error }))
            .collect();
        vec![json!({ "role": "user", "content": blocks })]
    }
}
