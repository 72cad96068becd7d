//! The subject's read-only tools as every reader in the engine uses them: the rules brain, an
//! LLM's tool loop and the executor's premise gate. Each distinct call is made once and its
//! answer reused (a runbook asks one node's detail for several checks; a model may ask twice),
//! and each call actually made is narrated to the reasoning sink when there is one: the call,
//! then what came back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use operator_protocol::{ReasoningEvent, ReasoningSink, ToolBox, ToolCall};
use serde_json::Value;

pub struct NarratedTools<'a> {
    tools: &'a dyn ToolBox,
    sink: Option<&'a dyn ReasoningSink>,
    answers: Mutex<Vec<(ToolCall, Result<Value, String>)>>,
    made: AtomicU32,
}

impl<'a> NarratedTools<'a> {
    pub fn new(tools: &'a dyn ToolBox, sink: Option<&'a dyn ReasoningSink>) -> Self {
        Self {
            tools,
            sink,
            answers: Mutex::new(Vec::new()),
            made: AtomicU32::new(0),
        }
    }

    /// The tool's answer, or its error in words; asked of the subject once per distinct call.
    pub async fn call(&self, call: &ToolCall) -> Result<Value, String> {
        if let Some((_, answer)) = self.lock().iter().find(|(asked, _)| asked == call) {
            return answer.clone();
        }
        self.made.fetch_add(1, Ordering::Relaxed);
        self.narrate(ReasoningEvent::ToolCall {
            tool: call.tool.clone(),
            args: serde_json::to_value(&call.args).unwrap_or_default(),
        });
        let answer = self.tools.call(call).await.map_err(|e| e.to_string());
        self.narrate(ReasoningEvent::ToolResult {
            tool: call.tool.clone(),
            ok: answer.is_ok(),
            summary: match &answer {
                Ok(value) => summary(value),
                Err(error) => error.clone(),
            },
        });
        self.lock().push((call.clone(), answer.clone()));
        answer
    }

    /// Calls made of the subject (answers reused do not count).
    pub fn calls_made(&self) -> u32 {
        self.made.load(Ordering::Relaxed)
    }

    fn narrate(&self, event: ReasoningEvent) {
        if let Some(sink) = self.sink {
            sink.emit(event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(ToolCall, Result<Value, String>)>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the reasoning pane shows of an answer: its first 200 characters.
fn summary(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use operator_protocol::{BoxFuture, ContractError, ContractResult, ToolSpec};
    use serde_json::json;

    use super::*;

    struct Counting(Mutex<u32>);

    impl ToolBox for Counting {
        fn specs(&self) -> Vec<ToolSpec> {
            Vec::new()
        }
        fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<Value>> {
            *self.0.lock().unwrap() += 1;
            let answer = match call.tool.as_str() {
                "node_detail" => Ok(json!({ "state": "running", "long": "x".repeat(300) })),
                _ => Err(ContractError::NotFound(format!("no tool {}", call.tool))),
            };
            Box::pin(async move { answer })
        }
    }

    #[derive(Default)]
    struct Heard(Mutex<Vec<ReasoningEvent>>);

    impl ReasoningSink for Heard {
        fn emit(&self, event: ReasoningEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    fn call(tool: &str) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            args: [("node".to_string(), json!("n1"))].into_iter().collect(),
        }
    }

    #[tokio::test]
    async fn each_distinct_call_is_made_and_narrated_once_and_errors_are_answers_too() {
        let tools = Counting(Mutex::new(0));
        let heard = Heard::default();
        let narrated = NarratedTools::new(&tools, Some(&heard));
        let first = narrated.call(&call("node_detail")).await.unwrap();
        let again = narrated.call(&call("node_detail")).await.unwrap();
        assert_eq!(first, again);
        let missing = narrated.call(&call("nope")).await.unwrap_err();
        assert!(missing.contains("no tool nope"), "{missing}");
        assert!(narrated.call(&call("nope")).await.is_err());
        assert_eq!(*tools.0.lock().unwrap(), 2);
        assert_eq!(narrated.calls_made(), 2);
        let events = heard.0.lock().unwrap();
        assert_eq!(events.len(), 4, "a call and a result per call made");
        let ReasoningEvent::ToolResult { ok, summary, .. } = &events[1] else {
            panic!("{:?}", events[1]);
        };
        assert!(ok);
        assert!(
            summary.ends_with('…') && summary.chars().count() == 201,
            "{summary}"
        );
    }

    #[tokio::test]
    async fn without_a_sink_it_only_caches() {
        let tools = Counting(Mutex::new(0));
        let quiet = NarratedTools::new(&tools, None);
        quiet.call(&call("node_detail")).await.unwrap();
        quiet.call(&call("node_detail")).await.unwrap();
        assert_eq!(*tools.0.lock().unwrap(), 1);
    }
}
