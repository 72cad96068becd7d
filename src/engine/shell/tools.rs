//! What a brain is handed by the shell: the subject's read-only tools, and a sink that streams
//! its reasoning to the front ends while keeping the transcript for the store.

use std::sync::{Arc, Mutex};

use operator_protocol::{
    BoxFuture, ContractResult, DeploymentTarget, ReasoningEvent, ReasoningSink, Subject, ToolBox,
    ToolCall, ToolSpec,
};
use tokio::sync::broadcast;

use crate::events::{EngineEvent, ReasoningFor};

/// The subject's read-only tools, as brains see them.
pub struct SubjectTools(pub Arc<dyn Subject>, pub Arc<dyn DeploymentTarget>);

impl ToolBox for SubjectTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.0.tools()
    }

    fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        self.0.call_tool(call, &*self.1)
    }
}

/// Streams reasoning to front ends and keeps the transcript for the store.
pub struct EventSink {
    pub about: ReasoningFor,
    pub events: broadcast::Sender<EngineEvent>,
    pub transcript: Mutex<String>,
}

impl EventSink {
    pub fn new(about: ReasoningFor, events: broadcast::Sender<EngineEvent>) -> Self {
        Self {
            about,
            events,
            transcript: Mutex::new(String::new()),
        }
    }

    pub fn into_transcript(self) -> String {
        self.transcript
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
    }
}

impl ReasoningSink for EventSink {
    fn emit(&self, event: ReasoningEvent) {
        if let ReasoningEvent::Text { text } = &event {
            self.transcript
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_str(text);
        }
        // No receiver is fine: headless runs may not listen.
        let _ = self.events.send(EngineEvent::Reasoning {
            about: self.about,
            event,
        });
    }
}
