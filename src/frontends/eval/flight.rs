//! The flight recorder: what a brain saw and said for each ticket (its context, every tool
//! call with its result, the diagnosis), saved so the same ticket can be put to another brain
//! later without a cluster.

use std::sync::{Arc, Mutex};

use operator_protocol::{
    BoxFuture, Brain, ContractError, ContractResult, Diagnosis, DiagnosisContext, QuestionContext,
    ReasoningSink, ToolBox, ToolCall, ToolSpec,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolExchange {
    pub call: ToolCall,
    pub result: Result<serde_json::Value, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flight {
    pub brain: String,
    pub context: DiagnosisContext,
    pub tools: Vec<ToolExchange>,
    pub diagnosis: Result<Diagnosis, String>,
}

struct RecordingTools<'a> {
    inner: &'a dyn ToolBox,
    log: Mutex<Vec<ToolExchange>>,
}

impl ToolBox for RecordingTools<'_> {
    fn specs(&self) -> Vec<ToolSpec> {
        self.inner.specs()
    }

    fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            let result = self.inner.call(call).await;
            let exchange = ToolExchange {
                call: call.clone(),
                result: result.clone().map_err(|e| e.to_string()),
            };
            self.log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(exchange);
            result
        })
    }
}

/// Wraps a brain and keeps a flight for every diagnosis it makes.
pub struct RecordingBrain {
    pub inner: Arc<dyn Brain>,
    pub flights: Arc<Mutex<Vec<Flight>>>,
}

impl Brain for RecordingBrain {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn measures_its_confidence(&self) -> bool {
        self.inner.measures_its_confidence()
    }

    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            let recording = RecordingTools {
                inner: tools,
                log: Mutex::new(Vec::new()),
            };
            let diagnosis = self.inner.diagnose(context, &recording, sink).await;
            let flight = Flight {
                brain: self.inner.name(),
                context: context.clone(),
                tools: recording
                    .log
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner()),
                diagnosis: diagnosis.clone().map_err(|e| e.to_string()),
            };
            self.flights
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(flight);
            diagnosis
        })
    }

    fn ask<'a>(
        &'a self,
        context: &'a QuestionContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<String>> {
        self.inner.ask(context, tools, sink)
    }
}

/// Answers tool calls from a flight: the cluster as it was when the flight was recorded.
pub struct ReplayedTools {
    pub specs: Vec<ToolSpec>,
    pub exchanges: Vec<ToolExchange>,
}

impl ToolBox for ReplayedTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.specs.clone()
    }

    fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            match self.exchanges.iter().find(|e| e.call == *call) {
                Some(ToolExchange { result: Ok(v), .. }) => Ok(v.clone()),
                Some(ToolExchange { result: Err(e), .. }) => {
                    Err(ContractError::Permanent(e.clone()))
                }
                None => Err(ContractError::NotFound(format!(
                    "{} {} was not called when this flight was recorded, so its answer is unknown",
                    call.tool,
                    serde_json::to_string(&call.args).unwrap_or_default()
                ))),
            }
        })
    }
}
