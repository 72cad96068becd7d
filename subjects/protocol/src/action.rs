//! The catalog of what may be done to a subject, and requests to do it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::named_enum!(
    /// How much an action can hurt, which decides its gates.
    Risk {
        ReadOnly => "read_only",
        Safe => "safe",
        /// Takes capacity away while it runs (a restart, a drain): one at a time, never a
        /// majority.
        Disruptive => "disruptive",
        /// Loses or gives away something that cannot be taken back (every key's count, a
        /// client's quota): the strictest gate, and one at a time like a disruptive action.
        Destructive => "destructive",
    }
);

impl Risk {
    /// Disruptive or destructive: the executor re-checks its premises right before it runs,
    /// and the blast-radius policy counts it.
    pub fn is_disruptive(self) -> bool {
        matches!(self, Risk::Disruptive | Risk::Destructive)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    Integer {
        min: i64,
        max: i64,
    },
    String {
        max_len: usize,
    },
    Enum {
        values: Vec<String>,
    },
    /// One of the subject's current nodes.
    Node,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub description: String,
    pub kind: ParamKind,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl ParamSpec {
    pub fn new(name: &str, description: &str, kind: ParamKind) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            kind,
            required: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
    pub risk: Risk,
    /// The parameter naming the node this action disrupts, for the blast-radius policy.
    #[serde(default)]
    pub node_param: Option<String>,
    /// A node this action always disrupts, whatever its parameters (e.g. the one Redis).
    #[serde(default)]
    pub disrupts_node: Option<String>,
    /// What running it loses or gives away, in words a person approving it must read ("every
    /// key's count for the current window"); `None` when it loses nothing.
    #[serde(default)]
    pub destroys: Option<String>,
    /// What must hold on a fresh read for it to run at all (checked for disruptive and
    /// destructive actions, whoever recommended them).
    #[serde(default)]
    pub premises: Vec<crate::Premise>,
}

impl ActionSpec {
    /// An action that names no node it disrupts, destroys nothing and presumes nothing; set
    /// those fields on the result where they apply.
    pub fn new(name: &str, description: &str, params: Vec<ParamSpec>, risk: Risk) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            params,
            risk,
            node_param: None,
            disrupts_node: None,
            destroys: None,
            premises: vec![],
        }
    }

    /// A request naming every parameter with the first value its kind allows, for tests that
    /// walk a catalog (every action described must be runnable).
    pub fn example_request(&self) -> ActionRequest {
        let params = self
            .params
            .iter()
            .map(|p| {
                let value = match &p.kind {
                    ParamKind::Integer { min, .. } => serde_json::json!(min),
                    ParamKind::Enum { values } => serde_json::json!(values.first()),
                    ParamKind::String { .. } | ParamKind::Node => serde_json::json!("x"),
                };
                (p.name.clone(), value)
            })
            .collect();
        ActionRequest {
            action: self.name.clone(),
            params,
        }
    }
}

/// A request to run one catalog action; the params are checked against its spec before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// What an action did, for the action's events and the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub summary: String,
}

/// A read-only query a brain may run to gather evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool: String,
    #[serde(default)]
    pub args: BTreeMap<String, serde_json::Value>,
}
