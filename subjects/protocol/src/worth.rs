//! What an action buys against what it destroys, each as how long it lasts, declared with the
//! action in its catalog. The engine reads the measured spans right before the action runs
//! and weighs them: a reset that destroys a key's count for the rest of its window buys
//! nothing a wait would not (the drift ends with the window too); a restart of a dead process
//! buys an end to an outage that would otherwise last until someone acts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ToolCall, fill_args};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worth {
    /// What running it buys, in words: "the node serving again".
    pub buys: String,
    /// How long the trouble it ends would last without it.
    pub trouble_lasts: Span,
    /// How long what it destroys (`ActionSpec::destroys`) stays lost.
    pub loss_lasts: Span,
}

impl Worth {
    pub fn new(buys: &str, trouble_lasts: Span, loss_lasts: Span) -> Self {
        Self {
            buys: buys.into(),
            trouble_lasts,
            loss_lasts,
        }
    }
}

/// How long something lasts, as declared or as read from a tool right before the action runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Span {
    /// Over as it happens: a cache that refills, a request in flight that is retried.
    Moment,
    /// Until something acts: a dead process stays dead, a data loss stays lost.
    UntilActedOn,
    /// The milliseconds at `pointer` in `tool`'s answer (args and `ends` may hold
    /// `{param.NAME}`): "the drift on {param.key} ends with its window".
    Measured {
        ends: String,
        tool: String,
        #[serde(default)]
        args: BTreeMap<String, serde_json::Value>,
        pointer: String,
    },
}

impl Span {
    pub fn measured(ends: &str, tool: &str, args: serde_json::Value, pointer: &str) -> Self {
        Span::Measured {
            ends: ends.into(),
            tool: tool.into(),
            args: serde_json::from_value(args).unwrap_or_default(),
            pointer: pointer.into(),
        }
    }

    /// The call that measures it, with `{param.NAME}` filled; `None` for a declared span.
    pub fn call(&self, params: &BTreeMap<String, serde_json::Value>) -> Option<ToolCall> {
        let Span::Measured { tool, args, .. } = self else {
            return None;
        };
        Some(ToolCall {
            tool: tool.clone(),
            args: fill_args(args, &param_lookup(params)),
        })
    }

    /// What ends when a measured span does, in words with its parameters filled.
    pub fn ends(&self, params: &BTreeMap<String, serde_json::Value>) -> Option<String> {
        let Span::Measured { ends, .. } = self else {
            return None;
        };
        let text = BTreeMap::from([(String::new(), serde_json::Value::String(ends.clone()))]);
        fill_args(&text, &param_lookup(params))
            .remove("")
            .and_then(|v| v.as_str().map(String::from))
    }

    /// The milliseconds a measuring tool's answer holds at the span's pointer.
    pub fn read(&self, answer: &serde_json::Value) -> Result<u64, String> {
        let Span::Measured { pointer, tool, .. } = self else {
            return Err("a declared span is not read".into());
        };
        let found = answer.pointer(pointer);
        found
            .and_then(|v| v.as_f64())
            .filter(|ms| ms.is_finite())
            .map(|ms| ms.max(0.0) as u64)
            .ok_or_else(|| {
                format!(
                    "{tool} gave {} at {pointer}, not a number of milliseconds",
                    found.map_or("nothing".to_string(), |v| v.to_string())
                )
            })
    }
}

fn param_lookup(
    params: &BTreeMap<String, serde_json::Value>,
) -> impl Fn(&str) -> Option<serde_json::Value> + '_ {
    |name| params.get(name.strip_prefix("param.")?).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn window() -> Span {
        Span::measured(
            "the drift on {param.key} ends with its window",
            "redis_key",
            json!({ "key": "{param.key}" }),
            "/redis/window_ends_in_ms",
        )
    }

    #[test]
    fn a_measured_span_names_its_call_and_what_ends_with_the_parameters_filled() {
        let params = BTreeMap::from([("key".to_string(), json!("demo-1"))]);
        let span = window();
        let call = span.call(&params).unwrap();
        assert_eq!(call.tool, "redis_key");
        assert_eq!(call.args["key"], "demo-1");
        assert_eq!(
            span.ends(&params).as_deref(),
            Some("the drift on demo-1 ends with its window")
        );
        assert_eq!(Span::Moment.call(&params), None);
    }

    #[test]
    fn a_span_reads_milliseconds_and_refuses_anything_else() {
        let span = window();
        assert_eq!(
            span.read(&json!({ "redis": { "window_ends_in_ms": 3200 } })),
            Ok(3200)
        );
        assert_eq!(
            span.read(&json!({ "redis": { "window_ends_in_ms": -5 } })),
            Ok(0)
        );
        let error = span
            .read(&json!({ "redis": { "window_ends_in_ms": "soon" } }))
            .unwrap_err();
        assert!(error.contains("\"soon\""), "{error}");
        assert!(span.read(&json!({})).unwrap_err().contains("nothing"));
    }
}
