//! The catalog of what may be done to a subject, and requests to do it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::NodeId;

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

/// What a parameter takes, as a person reads it: "1..=100000", "text ≤ 64 bytes", "one of
/// 1s, 60s", "a node".
impl std::fmt::Display for ParamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamKind::Integer { min, max } => write!(f, "{min}..={max}"),
            ParamKind::String { max_len } => write!(f, "text ≤ {max_len} bytes"),
            ParamKind::Enum { values } => write!(f, "one of {}", values.join(", ")),
            ParamKind::Node => write!(f, "a node"),
        }
    }
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
    /// What is wrong with `value` for this parameter, in words ("12 is outside 1..=10");
    /// `nodes` is the cluster's nodes, or `None` where they are not known (a node is then
    /// only checked to be a name).
    pub fn check(&self, value: &serde_json::Value, nodes: Option<&[NodeId]>) -> Result<(), String> {
        let problem = match &self.kind {
            ParamKind::Integer { min, max } => match value.as_i64() {
                Some(n) if (*min..=*max).contains(&n) => None,
                Some(n) => Some(format!("{n} is outside {min}..={max}")),
                None => Some(format!("{value} is not an integer")),
            },
            ParamKind::String { max_len } => match value.as_str() {
                Some("") => Some("must not be empty".to_string()),
                Some(s) if s.len() > *max_len => Some(format!("is longer than {max_len} bytes")),
                Some(_) => None,
                None => Some(format!("{value} is not a string")),
            },
            ParamKind::Enum { values } => match value.as_str() {
                Some(s) if values.iter().any(|v| v == s) => None,
                _ => Some(format!("{value} is not one of {}", values.join(", "))),
            },
            ParamKind::Node => match (value.as_str(), nodes) {
                (Some(s), Some(nodes)) if nodes.iter().any(|n| n.0 == s) => None,
                (Some(s), None) if !s.is_empty() => None,
                (_, nodes) => Some(format!(
                    "{value} is not a node of this cluster ({})",
                    nodes
                        .unwrap_or_default()
                        .iter()
                        .map(|n| n.0.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        };
        problem.map_or(Ok(()), Err)
    }

    /// Parses what a person typed: a number for an integer, the text itself otherwise.
    pub fn parse_typed(&self, text: &str) -> serde_json::Value {
        let text = text.trim();
        match self.kind {
            ParamKind::Integer { .. } => text
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
            _ => serde_json::Value::String(text.to_string()),
        }
    }

    pub fn new(name: &str, description: &str, kind: ParamKind) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            kind,
            required: true,
        }
    }
}

/// Checks parameters against what `what` (an action or a fault) declares: no key it does not
/// know, every required one, each value of its declared kind and range. The message names the
/// parameter and what it accepts, so a person can correct it.
pub fn check_params(
    what: &str,
    specs: &[ParamSpec],
    params: &BTreeMap<String, serde_json::Value>,
    nodes: Option<&[NodeId]>,
) -> Result<(), String> {
    for name in params.keys() {
        if !specs.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = specs.iter().map(|p| p.name.as_str()).collect();
            return Err(if known.is_empty() {
                format!("{what}: unknown parameter {name:?}; it takes none")
            } else {
                format!(
                    "{what}: unknown parameter {name:?}; it takes {}",
                    known.join(", ")
                )
            });
        }
    }
    for param in specs {
        let Some(value) = params.get(&param.name) else {
            if param.required {
                return Err(format!("{what}: missing parameter {:?}", param.name));
            }
            continue;
        };
        if let Err(problem) = param.check(value, nodes) {
            return Err(format!("{what}: parameter {:?} {problem}", param.name));
        }
    }
    Ok(())
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
    /// How it is taken back, or why it cannot be.
    #[serde(default)]
    pub reversal: Reversal,
    /// The protection it can loosen, in words ("it can raise a key's limit"): such an action
    /// runs only once a person approves it, in every mode, whoever recommended it.
    #[serde(default)]
    pub loosens: Option<String>,
    /// The parameters naming what it acts on besides `node_param` (a key, a store): what they
    /// name must be in the evidence of the ticket it is for, or a person decides.
    #[serde(default)]
    pub acts_on: Vec<String>,
    /// What it buys against what it destroys, each as how long it lasts: an action that
    /// destroys something runs on its own only when what it buys clearly outweighs it.
    /// `None` is undeclared: a test walking each catalog refuses it.
    #[serde(default)]
    pub worth: Option<crate::Worth>,
}

/// How an action is taken back, declared with it in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reversal {
    /// The catalog does not say: treated as irreversible, and a test walking each catalog
    /// refuses it.
    #[default]
    Undeclared,
    /// It changes nothing that needs taking back (a note, a pause).
    NothingToUndo,
    /// It cannot be taken back; why, in words for the person approving it.
    Irreversible { why: String },
    /// Another catalog action takes it back. Its params are templates: `{param.NAME}` is a
    /// parameter of the action being undone, `{before.NAME}` a value read right before that
    /// action ran from `capture`'s answer (`NAME` a JSON pointer without its leading slash).
    Inverse {
        action: String,
        params: BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        capture: Option<crate::ToolCall>,
    },
}

impl Reversal {
    /// An inverse whose params need nothing read before the action runs.
    pub fn inverse(action: &str, params: serde_json::Value) -> Self {
        Self::inverse_capturing(action, params, None)
    }

    pub fn inverse_capturing(
        action: &str,
        params: serde_json::Value,
        capture: Option<crate::ToolCall>,
    ) -> Self {
        Reversal::Inverse {
            action: action.into(),
            params: params
                .as_object()
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default(),
            capture,
        }
    }

    pub fn irreversible(why: &str) -> Self {
        Reversal::Irreversible { why: why.into() }
    }

    /// Why it cannot be taken back, for the approval prompt; `None` when it can (or need not).
    pub fn irreversible_because(&self) -> Option<String> {
        match self {
            Reversal::Undeclared => Some("its catalog declares no way to take it back".into()),
            Reversal::Irreversible { why } => Some(why.clone()),
            Reversal::NothingToUndo | Reversal::Inverse { .. } => None,
        }
    }

    /// The request that takes back `request`, given what `capture` answered before it ran
    /// (`Value::Null` when nothing was captured). `None` when there is none, or a value it
    /// needs was not there to read.
    pub fn undo_request(
        &self,
        request: &ActionRequest,
        before: &serde_json::Value,
    ) -> Result<Option<ActionRequest>, String> {
        let Reversal::Inverse { action, params, .. } = self else {
            return Ok(None);
        };
        let missing = std::cell::RefCell::new(Vec::new());
        let filled = crate::fill_args(params, &|name| {
            let found = if let Some(param) = name.strip_prefix("param.") {
                request.params.get(param).cloned()
            } else if let Some(pointer) = name.strip_prefix("before.") {
                before.pointer(&format!("/{pointer}")).cloned()
            } else {
                None
            };
            if found.as_ref().is_none_or(serde_json::Value::is_null) {
                missing.borrow_mut().push(name.to_string());
            }
            found
        });
        let missing = missing.into_inner();
        if !missing.is_empty() {
            return Err(format!(
                "the state its undo needs was not there to read: {}",
                missing.join(", ")
            ));
        }
        Ok(Some(ActionRequest {
            action: action.clone(),
            params: filled,
        }))
    }
}

impl ActionSpec {
    /// An action that names no node it disrupts, destroys nothing, presumes nothing and has no
    /// declared reversal; set
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
            reversal: Reversal::Undeclared,
            loosens: None,
            acts_on: vec![],
            worth: None,
        }
    }

    /// What `request` acts on, by name: the values of `node_param` and `acts_on`.
    pub fn objects<'a>(&'a self, request: &'a ActionRequest) -> impl Iterator<Item = &'a str> {
        self.node_param
            .iter()
            .chain(&self.acts_on)
            .filter_map(|param| request.params.get(param)?.as_str())
    }

    /// The node running `request` disrupts (by `disrupts_node`, else `node_param`); none
    /// for an action that is not disruptive.
    pub fn disrupted_node(&self, request: &ActionRequest) -> Option<NodeId> {
        if !self.risk.is_disruptive() {
            return None;
        }
        if let Some(node) = &self.disrupts_node {
            return Some(NodeId(node.clone()));
        }
        let param = self.node_param.as_ref()?;
        request.params.get(param)?.as_str().map(NodeId::from)
    }

    /// The name a person types to run `request` without re-checking its premises: the node it
    /// disrupts, else the target of the ticket it is for.
    pub fn override_target(&self, request: &ActionRequest, ticket_target: &str) -> String {
        self.disrupted_node(request)
            .map_or_else(|| ticket_target.to_string(), |node| node.0)
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
