//! The OpenAI-compatible dialect: Chat Completions streamed as `data:` chunks, for OpenAI,
//! Ollama, llama.cpp's server and vLLM. Normalised as the reference's §6.8 says: `[DONE]` or
//! EOF ends a stream, tool calls are accumulated by index whether they arrive in fragments
//! (OpenAI) or whole (Ollama), errors are read in every server's shape, reasoning text comes
//! from `reasoning_content` or `reasoning`.

use std::collections::BTreeMap;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use operator_protocol::{BoxFuture, ReasoningEvent, ReasoningSink};
use serde_json::{Value, json};

use super::llm::{
    AttemptError, Budget, Conversation, Dialect, LlmBrain, Stop, TurnOutcome, error_detail,
    http_client, retry, send,
};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

#[derive(Clone)]
pub struct OpenAiConfig {
    /// Up to and including `/v1`, e.g. http://localhost:11434/v1 for Ollama.
    pub base_url: String,
    api_key: Option<String>,
    pub model: String,
    pub max_tokens: u32,
    pub budget: Budget,
}

impl OpenAiConfig {
    pub fn new(base_url: &str, api_key: Option<&str>, model: &str) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.map(String::from),
            model: model.into(),
            max_tokens: 2048,
            budget: Budget::default(),
        }
    }

    /// OPENAI_BASE_URL (default the public API) and OPENAI_API_KEY (optional for local servers).
    pub fn from_env(model: Option<String>) -> Self {
        let base = std::env::var("OPENAI_BASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let key = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        Self::new(
            &base,
            key.as_deref(),
            model.as_deref().unwrap_or(DEFAULT_MODEL),
        )
    }
}

pub struct OpenAi {
    config: OpenAiConfig,
    http: reqwest::Client,
}

pub type OpenAiBrain = LlmBrain<OpenAi>;

impl LlmBrain<OpenAi> {
    pub fn new(config: OpenAiConfig) -> Result<Self, String> {
        let http = http_client(Duration::from_secs(120))?;
        let budget = config.budget.clone();
        Ok(LlmBrain {
            dialect: OpenAi { config, http },
            budget,
        })
    }
}

#[derive(Default)]
struct PendingCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// One streamed turn as it accumulates.
#[derive(Default)]
struct Chunks {
    text: String,
    calls: BTreeMap<u64, PendingCall>,
    finish_reason: Option<String>,
    refusal: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    done: bool,
}

impl Chunks {
    fn produced(&self) -> bool {
        !self.text.is_empty() || !self.calls.is_empty()
    }

    /// Applies one chunk; an `error` object inside the stream is returned as an error.
    fn apply(&mut self, chunk: &Value, sink: &dyn ReasoningSink) -> Result<(), String> {
        if chunk.get("error").is_some() || chunk["object"] == "error" {
            return Err(format!(
                "the server reported an error mid-stream: {}",
                error_detail(&chunk.to_string())
            ));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.prompt_tokens = usage["prompt_tokens"]
                .as_u64()
                .unwrap_or(self.prompt_tokens);
            self.completion_tokens = usage["completion_tokens"]
                .as_u64()
                .unwrap_or(self.completion_tokens);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return Ok(());
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            sink.emit(ReasoningEvent::Text {
                text: text.to_string(),
            });
        }
        if let Some(thinking) = delta["reasoning_content"]
            .as_str()
            .or(delta["reasoning"].as_str())
            .filter(|t| !t.is_empty())
        {
            sink.emit(ReasoningEvent::Thinking {
                text: thinking.to_string(),
            });
        }
        if let Some(refusal) = delta["refusal"].as_str() {
            self.refusal.push_str(refusal);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(self.calls.len() as u64);
            let pending = self.calls.entry(index).or_default();
            if let Some(id) = call["id"].as_str() {
                pending.id = Some(id.to_string());
            }
            if let Some(name) = call["function"]["name"].as_str() {
                pending.name = name.to_string();
            }
            if let Some(arguments) = call["function"]["arguments"].as_str() {
                pending.arguments.push_str(arguments);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_string());
        }
        Ok(())
    }

    fn outcome(self) -> TurnOutcome {
        let cut = self.finish_reason.as_deref() == Some("length");
        let calls: Vec<(String, String, Result<Value, String>)> = self
            .calls
            .iter()
            .map(|(index, c)| {
                let id = c.id.clone().unwrap_or_else(|| format!("call_{index}"));
                let input = if c.arguments.trim().is_empty() {
                    Ok(json!({}))
                } else {
                    serde_json::from_str(&c.arguments).map_err(|e| {
                        if cut {
                            format!(
                                "the {} call was cut off before its input was complete",
                                c.name
                            )
                        } else {
                            format!("the {} call's arguments are not JSON: {e}", c.name)
                        }
                    })
                };
                (id, c.name.clone(), input)
            })
            .collect();
        let tool_calls: Vec<Value> = self
            .calls
            .iter()
            .map(|(index, c)| json!({ "id": c.id.clone().unwrap_or_else(|| format!("call_{index}")), "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
            .collect();
        let mut message = json!({ "role": "assistant", "content": if self.text.is_empty() { Value::Null } else { json!(self.text) } });
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        let stop = match self.finish_reason.as_deref() {
            _ if !self.refusal.is_empty() => Stop::Refusal(self.refusal.clone()),
            Some("content_filter") => {
                Stop::Refusal("the server's content filter stopped the answer".into())
            }
            Some("length") => Stop::MaxTokens,
            _ => Stop::Normal,
        };
        TurnOutcome {
            text: self.text,
            calls,
            stop,
            message,
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
        }
    }
}

impl OpenAi {
    fn body(&self, conversation: &Conversation, messages: &[Value]) -> Value {
        let tools: Vec<Value> = conversation
            .tools
            .iter()
            .map(|(name, description, parameters)| json!({ "type": "function", "function": { "name": name, "description": description, "parameters": parameters } }))
            .collect();
        let mut all = vec![json!({ "role": "system", "content": conversation.system })];
        all.extend(messages.iter().cloned());
        json!({
            "model": self.config.model,
            "messages": all,
            "tools": tools,
            "tool_choice": "auto",
            "stream": true,
            "stream_options": { "include_usage": true },
            "max_tokens": self.config.max_tokens,
        })
    }

    async fn read_stream(
        &self,
        response: reqwest::Response,
        sink: &dyn ReasoningSink,
    ) -> Result<Chunks, (bool, String)> {
        let mut events = response.bytes_stream().eventsource();
        let mut chunks = Chunks::default();
        while let Some(next) = events.next().await {
            let event = next.map_err(|e| (chunks.produced(), format!("the stream broke: {e}")))?;
            let data = event.data.trim();
            if data.starts_with("[DONE]") {
                chunks.done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data).map_err(|e| {
                (
                    chunks.produced(),
                    format!(
                        "a stream chunk is not JSON ({e}): {}",
                        data.chars().take(120).collect::<String>()
                    ),
                )
            })?;
            chunks
                .apply(&chunk, sink)
                .map_err(|why| (chunks.produced(), why))?;
        }
        // Some servers close without [DONE]; a finish reason is enough.
        if !chunks.done && chunks.finish_reason.is_none() {
            return Err((
                chunks.produced(),
                "the stream ended before a finish reason".into(),
            ));
        }
        Ok(chunks)
    }
}

impl Dialect for OpenAi {
    fn label(&self) -> String {
        format!("openai-compatible {}", self.config.model)
    }

    fn attempt<'a>(
        &'a self,
        conversation: &'a Conversation,
        messages: &'a [Value],
        attempt: u32,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, Result<TurnOutcome, AttemptError>> {
        Box::pin(async move {
            let url = format!(
                "{}/chat/completions",
                self.config.base_url.trim_end_matches('/')
            );
            let mut request = self
                .http
                .post(&url)
                .json(&self.body(conversation, messages));
            if let Some(key) = &self.config.api_key {
                request = request.bearer_auth(key);
            }
            let response = send(request, attempt, "OPENAI_API_KEY").await?;
            match self.read_stream(response, sink).await {
                Ok(chunks) => Ok(chunks.outcome()),
                Err((false, why)) => Err(AttemptError::Retry {
                    why,
                    delay: retry::retry_delay(attempt, &Default::default(), fastrand::f64()),
                }),
                Err((true, why)) => Err(AttemptError::Unavailable(why)),
            }
        })
    }

    fn tool_results(&self, results: Vec<(String, String, bool)>) -> Vec<Value> {
        results.into_iter().map(|(id, content, _)| json!({ "role": "tool", "tool_call_id": id, "content": content })).collect()
    }
}
