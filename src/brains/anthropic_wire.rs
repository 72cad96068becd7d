//! The Messages API's streaming events, and the accumulation of one assistant turn from them
//! (what the official SDKs do in `accumulate_event`). Pure: events in, a turn out.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        index: usize,
        content_block: Value,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<Usage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ApiError,
    },
    /// "We may add new event types": anything else is ignored.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub struct MessageStart {
    #[serde(default)]
    pub usage: Usage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct MessageDeltaBody {
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_details: Option<Value>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

/// One content block as it accumulates.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Text(String),
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        json: String,
        closed: bool,
    },
    /// Blocks this client does not use, kept verbatim to echo back.
    Other(Value),
}

/// What a piece of a turn means for the reasoning shown on screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Text(String),
    Thinking(String),
}

#[derive(Debug, Default)]
pub struct Turn {
    pub blocks: Vec<Block>,
    pub stop_reason: Option<String>,
    pub stop_details: Option<Value>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub started: bool,
    pub stopped: bool,
}

impl Turn {
    /// Applies one event; returns text to show now, or the API's error inside the stream.
    pub fn apply(&mut self, event: StreamEvent) -> Result<Option<Shown>, ApiError> {
        match event {
            StreamEvent::MessageStart { message } => {
                self.started = true;
                self.set_usage(message.usage);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block["type"].as_str() {
                    Some("text") => Block::Text(
                        content_block["text"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    Some("thinking") => Block::Thinking {
                        thinking: content_block["thinking"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        signature: content_block["signature"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    },
                    Some("tool_use") => Block::ToolUse {
                        id: content_block["id"].as_str().unwrap_or_default().to_string(),
                        name: content_block["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        json: String::new(),
                        closed: false,
                    },
                    _ => Block::Other(content_block),
                };
                // Blocks arrive in index order; a gap would be a protocol error we tolerate.
                if index >= self.blocks.len() {
                    self.blocks.resize(index, Block::Other(Value::Null));
                    self.blocks.push(block);
                } else {
                    self.blocks[index] = block;
                }
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                match (self.blocks.get_mut(index), delta) {
                    (Some(Block::Text(text)), Delta::Text { text: piece }) => {
                        text.push_str(&piece);
                        return Ok(Some(Shown::Text(piece)));
                    }
                    (
                        Some(Block::Thinking { thinking, .. }),
                        Delta::Thinking { thinking: piece },
                    ) => {
                        thinking.push_str(&piece);
                        return Ok(Some(Shown::Thinking(piece)));
                    }
                    (
                        Some(Block::Thinking { signature, .. }),
                        Delta::Signature { signature: s },
                    ) => *signature = s,
                    (Some(Block::ToolUse { json, .. }), Delta::InputJson { partial_json }) => {
                        json.push_str(&partial_json)
                    }
                    _ => {}
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if let Some(Block::ToolUse { closed, .. }) = self.blocks.get_mut(index) {
                    *closed = true;
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                self.stop_reason = delta.stop_reason;
                self.stop_details = delta.stop_details;
                if let Some(usage) = usage {
                    self.set_usage(usage);
                }
            }
            StreamEvent::MessageStop => self.stopped = true,
            StreamEvent::Ping | StreamEvent::Unknown => {}
            StreamEvent::Error { error } => return Err(error),
        }
        Ok(None)
    }

    /// Usage is cumulative in the stream: assign, never add.
    fn set_usage(&mut self, usage: Usage) {
        if let Some(n) = usage.input_tokens {
            self.input_tokens = n;
        }
        if let Some(n) = usage.output_tokens {
            self.output_tokens = n;
        }
    }

    /// The turn's visible text, all text blocks together.
    pub fn text(&self) -> String {
        self.blocks
            .iter()
            .filter_map(|b| {
                if let Block::Text(t) = b {
                    Some(t.as_str())
                } else {
                    None
                }
            })
            .collect()
    }

    /// The tool calls of the turn: (id, name, input), or an error for one cut off mid-input.
    pub fn tool_calls(&self) -> Vec<(String, String, Result<Value, String>)> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse {
                    id,
                    name,
                    json,
                    closed,
                } => {
                    let input = if !closed {
                        Err(format!(
                            "the {name} call was cut off before its input was complete"
                        ))
                    } else if json.trim().is_empty() {
                        Ok(Value::Object(Default::default()))
                    } else {
                        serde_json::from_str(json)
                            .map_err(|e| format!("the {name} call's input is not JSON: {e}"))
                    };
                    Some((id.clone(), name.clone(), input))
                }
                _ => None,
            })
            .collect()
    }

    /// The assistant turn to send back on the next request, every block as it came.
    pub fn to_message(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text(text) if text.is_empty() => None,
                Block::Text(text) => Some(serde_json::json!({ "type": "text", "text": text })),
                Block::Thinking { thinking, signature } => Some(serde_json::json!({ "type": "thinking", "thinking": thinking, "signature": signature })),
                Block::ToolUse { id, name, json, .. } => {
                    let input: Value = serde_json::from_str(json).unwrap_or_else(|_| Value::Object(Default::default()));
                    Some(serde_json::json!({ "type": "tool_use", "id": id, "name": name, "input": input }))
                }
                Block::Other(Value::Null) => None,
                Block::Other(v) => Some(v.clone()),
            })
            .collect();
        serde_json::json!({ "role": "assistant", "content": content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> StreamEvent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_tool_call_is_assembled_from_json_fragments_and_usage_is_assigned() {
        let mut turn = Turn::default();
        for e in [
            r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":10,"output_tokens":1}}      }"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t1","name":"node_detail","input":{},"caller":{"type":"direct"}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"no"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"de\": \"n2\"}"}}"#,
            r#"{"type":"content_block_stop","index":0   }"#,
            r#"{"type":"brand_new_event","stuff":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            turn.apply(event(e)).unwrap();
        }
        assert_eq!(
            turn.tool_calls(),
            vec![(
                "t1".into(),
                "node_detail".into(),
                Ok(serde_json::json!({"node": "n2"}))
            )]
        );
        assert_eq!(
            (
                turn.input_tokens,
                turn.output_tokens,
                turn.stop_reason.as_deref()
            ),
            (10, 40, Some("tool_use"))
        );
        assert!(turn.stopped);
    }

    #[test]
    fn a_tool_call_cut_off_by_max_tokens_is_never_complete() {
        let mut turn = Turn::default();
        turn.apply(event(r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"submit_diagnosis","input":{}}}"#)).unwrap();
        turn.apply(event(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"summary\": \"Redis"}}"#)).unwrap();
        turn.apply(event(r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":5}}"#)).unwrap();
        assert!(
            turn.tool_calls()[0]
                .2
                .as_ref()
                .unwrap_err()
                .contains("cut off")
        );
    }

    #[test]
    fn an_error_event_inside_a_200_stream_is_an_error() {
        let mut turn = Turn::default();
        let err = turn.apply(event(r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#)).unwrap_err();
        assert_eq!(err.kind, "overloaded_error");
    }
}
