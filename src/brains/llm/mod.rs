//! What the LLM brains share: the agent loop (gather evidence with tools, then submit the
//! diagnosis through `submit_diagnosis`), per-ticket budgets, the SDK retry policy around each
//! streamed turn, and the fallback to the rules brain. A `Dialect` is one wire format.

pub mod retry;

use std::time::{Duration, Instant};

use operator_protocol::{
    BoxFuture, Brain, ContractError, ContractResult, Cost, Diagnosis, DiagnosisContext,
    QuestionContext, ReasoningEvent, ReasoningSink, ToolBox, ToolCall,
};
use serde_json::{Value, json};

use super::prompt::{self, SUBMIT_DIAGNOSIS};
use super::{NarratedTools, RulesBrain};

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

/// Why a loop stopped without a diagnosis.
pub enum Failure {
    /// Over budget: the rules brain answers.
    Budget(String),
    /// The API could not be used (overloaded, down) after retries: the rules brain answers.
    Unavailable(String),
    /// The model's output or the request itself is unusable: the ticket escalates with this.
    Refused(String),
}

/// How a turn ended, in either dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The model asked for tools (or is done talking); look at the calls.
    Normal,
    /// Cut off by the output limit.
    MaxTokens,
    Refusal(String),
}

/// What a model is told, and the tools it may call, for one conversation.
pub struct Conversation {
    pub system: String,
    /// (name, description, JSON schema of the input).
    pub tools: Vec<(String, String, Value)>,
}

/// One assistant turn, parsed.
pub struct TurnOutcome {
    /// The turn's visible text.
    pub text: String,
    /// (id, tool name, input or why it is unusable).
    pub calls: Vec<(String, String, Result<Value, String>)>,
    pub stop: Stop,
    /// The assistant message to send back next time, in the dialect's shape.
    pub message: Value,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why one attempt at a turn failed, and whether sending it again is allowed.
pub enum AttemptError {
    /// Nothing was produced yet (or the status says so): retry after `delay`.
    Retry {
        why: String,
        delay: Duration,
    },
    /// Output already reached the sink, or retrying cannot help.
    Unavailable(String),
    Refused(String),
}

/// One wire format: how to ask for a turn and how to read it.
pub trait Dialect: Send + Sync {
    /// "anthropic claude-sonnet-4-5"
    fn label(&self) -> String;
    /// One streamed attempt at a turn; `attempt` counts from 0.
    fn attempt<'a>(
        &'a self,
        conversation: &'a Conversation,
        messages: &'a [Value],
        attempt: u32,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, Result<TurnOutcome, AttemptError>>;
    /// The tool results, as the messages that follow the assistant turn.
    fn tool_results(&self, results: Vec<(String, String, bool)>) -> Vec<Value>;
}

async fn turn(
    dialect: &dyn Dialect,
    conversation: &Conversation,
    messages: &[Value],
    sink: &dyn ReasoningSink,
) -> Result<TurnOutcome, Failure> {
    let mut last = String::new();
    for attempt in 0..=retry::MAX_RETRIES {
        match dialect.attempt(conversation, messages, attempt, sink).await {
            Ok(outcome) => return Ok(outcome),
            Err(AttemptError::Refused(why)) => return Err(Failure::Refused(why)),
            Err(AttemptError::Unavailable(why)) => return Err(Failure::Unavailable(why)),
            Err(AttemptError::Retry { why, delay }) => {
                tracing::info!(attempt, reason = %why, "retrying {}", dialect.label());
                last = why;
                if attempt < retry::MAX_RETRIES {
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    Err(Failure::Unavailable(format!(
        "{last} (after {} attempts)",
        retry::MAX_RETRIES + 1
    )))
}

async fn agent_loop(
    dialect: &dyn Dialect,
    budget: &Budget,
    context: &DiagnosisContext,
    tools: &dyn ToolBox,
    sink: &dyn ReasoningSink,
    cost: &mut Cost,
) -> Result<Diagnosis, Failure> {
    let started = Instant::now();
    let conversation = Conversation {
        system: prompt::system_prompt(context),
        tools: prompt::tool_definitions(&context.tools),
    };
    let mut messages = vec![json!({ "role": "user", "content": prompt::ticket_message(context) })];
    let reads = NarratedTools::new(tools, Some(sink));
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
        let outcome = turn(dialect, &conversation, &messages, sink).await?;
        cost.input_tokens += outcome.input_tokens;
        cost.output_tokens += outcome.output_tokens;
        messages.push(outcome.message);
        match &outcome.stop {
            Stop::Refusal(why) => {
                return Err(Failure::Refused(format!(
                    "the model refused to answer: {why}"
                )));
            }
            Stop::MaxTokens if outcome.calls.iter().any(|(_, _, input)| input.is_err()) => {
                return Err(Failure::Refused("the model ran out of tokens (max_tokens) inside a tool call; nothing ran on it".into()));
            }
            _ => {}
        }
        if outcome.calls.is_empty() {
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
        for (id, name, input) in outcome.calls {
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
            let (content, is_error) = run_tool(&reads, &name, input).await;
            results.push((id, content, is_error));
        }
        messages.extend(dialect.tool_results(results));
    }
    Err(Failure::Budget(format!(
        "no diagnosis after {} turns",
        budget.max_turns
    )))
}

/// Runs one read-only tool for the model; its answer goes back as data.
async fn run_tool(reads: &NarratedTools<'_>, name: &str, input: Value) -> (String, bool) {
    let args = match input {
        Value::Object(map) => map.into_iter().collect(),
        _ => Default::default(),
    };
    let call = ToolCall {
        tool: name.to_string(),
        args,
    };
    match reads.call(&call).await {
        Ok(value) => (prompt::tool_result_text(name, &value), false),
        Err(e) => (format!("the tool failed: {e}"), true),
    }
}

/// A question: the model may call tools, and its final text is the answer.
async fn question_loop(
    dialect: &dyn Dialect,
    budget: &Budget,
    context: &QuestionContext,
    tools: &dyn ToolBox,
    sink: &dyn ReasoningSink,
) -> Result<String, Failure> {
    let conversation = Conversation {
        system: prompt::question_system_prompt(context),
        tools: prompt::tool_definitions(&context.tools)
            .into_iter()
            .filter(|(name, _, _)| name != SUBMIT_DIAGNOSIS)
            .collect(),
    };
    let mut messages =
        vec![json!({ "role": "user", "content": prompt::question_message(context) })];
    let reads = NarratedTools::new(tools, Some(sink));
    let mut calls_made = 0;
    for _ in 0..budget.max_turns {
        let outcome = turn(dialect, &conversation, &messages, sink).await?;
        messages.push(outcome.message);
        if let Stop::Refusal(why) = &outcome.stop {
            return Err(Failure::Refused(format!(
                "the model refused to answer: {why}"
            )));
        }
        if outcome.calls.is_empty() {
            return Ok(outcome.text);
        }
        let mut results = Vec::new();
        for (id, name, input) in outcome.calls {
            calls_made += 1;
            if calls_made > budget.max_tool_calls {
                return Err(Failure::Budget(format!(
                    "over the budget of {} tool calls",
                    budget.max_tool_calls
                )));
            }
            let (content, is_error) = match input {
                Ok(input) => run_tool(&reads, &name, input).await,
                Err(why) => (why, true),
            };
            results.push((id, content, is_error));
        }
        messages.extend(dialect.tool_results(results));
    }
    Err(Failure::Budget(format!(
        "no answer after {} turns",
        budget.max_turns
    )))
}

/// An LLM brain in a given dialect; the rules brain answers when it cannot.
pub struct LlmBrain<D: Dialect> {
    pub dialect: D,
    pub budget: Budget,
}

impl<D: Dialect> Brain for LlmBrain<D> {
    fn name(&self) -> String {
        self.dialect.label()
    }

    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            let mut spent = Cost::default();
            let why = match agent_loop(
                &self.dialect,
                &self.budget,
                context,
                tools,
                sink,
                &mut spent,
            )
            .await
            {
                Ok(diagnosis) => return Ok(diagnosis),
                Err(Failure::Refused(why)) => return Err(ContractError::Refused(why)),
                Err(Failure::Budget(why) | Failure::Unavailable(why)) => why,
            };
            let label = self.dialect.label();
            sink.emit(ReasoningEvent::Text {
                text: format!("\n[{label}: {why}; the rules brain answers instead]\n"),
            });
            let mut diagnosis = RulesBrain.diagnose(context, tools, sink).await?;
            diagnosis.summary = format!(
                "[rules brain, because {label}: {why}] {}",
                diagnosis.summary
            );
            diagnosis.cost.tool_calls += spent.tool_calls;
            diagnosis.cost.input_tokens = spent.input_tokens;
            diagnosis.cost.output_tokens = spent.output_tokens;
            Ok(diagnosis)
        })
    }

    fn answers_questions(&self) -> bool {
        true
    }

    fn ask<'a>(
        &'a self,
        context: &'a QuestionContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<String>> {
        Box::pin(async move {
            question_loop(&self.dialect, &self.budget, context, tools, sink)
                .await
                .map_err(|failure| match failure {
                    Failure::Budget(why) | Failure::Unavailable(why) | Failure::Refused(why) => {
                        ContractError::Refused(why)
                    }
                })
        })
    }
}

/// The HTTP client an LLM dialect uses; `read` bounds the wait between stream chunks.
pub fn http_client(read: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(read)
        .build()
        .map_err(|e| e.to_string())
}

/// Reads an error body in either dialect's shape: `{"error": {"type", "message"}}`, vLLM's
/// legacy `{"object": "error", "message"}`, or plain text.
pub fn error_detail(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let from_json = parsed.and_then(|v| {
        let e = if v["error"].is_object() {
            &v["error"]
        } else {
            &v
        };
        let message = e["message"].as_str()?;
        Some(match e["type"].as_str() {
            Some(kind) => format!("{kind}: {message}"),
            None => message.to_string(),
        })
    });
    from_json.unwrap_or_else(|| text.chars().take(200).collect())
}

/// Sends one request; classifies a failure to get a 200 by the SDK retry rules.
pub async fn send(
    request: reqwest::RequestBuilder,
    attempt: u32,
    key_variable: &str,
) -> Result<reqwest::Response, AttemptError> {
    let response = match request
        .header("x-stainless-retry-count", attempt.to_string())
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Err(AttemptError::Retry {
                why: format!("cannot reach the model's API: {e}"),
                delay: retry::retry_delay(attempt, &Default::default(), fastrand::f64()),
            });
        }
    };
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let detail = error_detail(&response.text().await.unwrap_or_default());
    if status == 401 {
        return Err(AttemptError::Refused(format!(
            "the API rejected the key (401 {detail}): check {key_variable}"
        )));
    }
    let why = format!("the API answered {status} {detail}");
    if retry::should_retry(status, &headers) {
        Err(AttemptError::Retry {
            why,
            delay: retry::retry_delay(attempt, &headers, fastrand::f64()),
        })
    } else {
        Err(AttemptError::Refused(why))
    }
}
