//! What must be true for an action to make sense, checked by the executor on a fresh read
//! right before a disruptive or destructive action runs, whoever recommended it. A brain can
//! be wrong about the cause; the premise stops its remedy from running on a cluster where the
//! remedy cannot help (restarting a node that serves, resetting a counter that agrees).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Expectation, ToolCall, fill_args};

/// One precondition of an action. It holds when any of its checks holds: a restart is the
/// remedy of several causes (a crashed process, a stopped one, a slow one), and any one of
/// them makes it sensible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Premise {
    /// What the action presumes, in words: "the node is not serving normally".
    pub description: String,
    pub any_of: Vec<Probe>,
}

/// One question put to the cluster, shared by premises and runbooks: call `tool` with `args`,
/// read `pointer` in its answer, compare. String values in `args` may hold placeholders: an
/// action's `{param.NAME}` for a premise, a ticket's `{target}` or `{evidence.NAME}` for a
/// runbook's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub description: String,
    pub tool: String,
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
    /// A JSON pointer (RFC 6901) into the tool's answer.
    #[serde(default)]
    pub pointer: String,
    pub expect: Expectation,
}

impl Probe {
    pub fn new(
        description: &str,
        tool: &str,
        args: serde_json::Value,
        pointer: &str,
        expect: Expectation,
    ) -> Self {
        Self {
            description: description.into(),
            tool: tool.into(),
            args: serde_json::from_value(args).unwrap_or_default(),
            pointer: pointer.into(),
            expect,
        }
    }

    /// The tool call with `{param.NAME}` filled from the action's parameters.
    pub fn call(&self, params: &BTreeMap<String, serde_json::Value>) -> ToolCall {
        self.call_with(&|name| params.get(name.strip_prefix("param.")?).cloned())
    }

    /// The tool call with its placeholders filled by `lookup`.
    pub fn call_with(&self, lookup: &dyn Fn(&str) -> Option<serde_json::Value>) -> ToolCall {
        ToolCall {
            tool: self.tool.clone(),
            args: fill_args(&self.args, lookup),
        }
    }

    /// Whether the check holds on the tool's answer, and what was found there, for a person.
    pub fn judge(&self, answer: &Result<serde_json::Value, String>) -> (bool, String) {
        match answer {
            Ok(value) => {
                let found = value.pointer(&self.pointer);
                let shown = found.map_or("nothing".to_string(), |v| v.to_string());
                (self.expect.holds(found), shown)
            }
            // A premise that cannot be read is not established.
            Err(error) => (false, format!("{} failed: {error}", self.tool)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_check_reads_its_pointer_and_an_unreadable_answer_does_not_hold() {
        let check = Probe::new(
            "the process has exited",
            "node_detail",
            json!({ "node": "{param.node}", "store": "store-{param.id}", "lines": 3 }),
            "/process/state",
            Expectation::Equals {
                value: json!("exited"),
            },
        );
        let params = BTreeMap::from([
            ("node".to_string(), json!("node-2")),
            ("id".to_string(), json!(4)),
        ]);
        let call = check.call(&params);
        assert_eq!(call.args["node"], "node-2");
        assert_eq!(call.args["store"], "store-4");
        assert_eq!(call.args["lines"], 3);
        assert_eq!(
            check.judge(&Ok(json!({ "process": { "state": "exited" } }))),
            (true, "\"exited\"".to_string())
        );
        assert_eq!(
            check.judge(&Ok(json!({ "process": { "state": "running" } }))),
            (false, "\"running\"".to_string())
        );
        let (holds, found) = check.judge(&Err("connection refused".into()));
        assert!(!holds);
        assert!(found.contains("connection refused"), "{found}");
    }
}
