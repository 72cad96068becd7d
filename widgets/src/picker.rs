//! The action picker: a human chooses a remedy from the subject's catalog for the selected
//! ticket, fills its typed parameters (a list for enums and nodes, a text field for numbers
//! and text, each checked as typed), reads what it destroys, and sends it, optionally typing
//! the target's name to override its premises. Keys only change this state; sending is a
//! message the update turns into an effect.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent};
use operator_protocol::{ActionRequest, ActionSpec, NodeId, ParamKind, ParamSpec};
use ratatui_textarea::TextArea;

/// What a person picked, ready for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub ticket: i64,
    pub action: String,
    pub params: BTreeMap<String, serde_json::Value>,
    /// The target's name, typed to override the action's premises.
    pub override_for: Option<String>,
}

#[derive(Debug)]
pub enum Stage {
    /// Choosing the action from the catalog.
    Choose { selected: usize },
    /// Filling its parameters, one field at a time.
    Fill { field: usize },
    /// Reading what it does before sending it; `typing` holds the target's name while the
    /// person overrides the premises.
    Confirm {
        typing: Option<Box<TextArea<'static>>>,
    },
}

/// One parameter being filled: a choice among values, or typed text.
#[derive(Debug)]
pub enum Field {
    Choice { values: Vec<String>, at: usize },
    Text(Box<TextArea<'static>>),
}

#[derive(Debug)]
pub struct Picker {
    pub ticket: i64,
    /// The target of the ticket, named to override premises of actions that disrupt no node.
    pub ticket_target: String,
    pub catalog: Vec<ActionSpec>,
    pub nodes: Vec<NodeId>,
    pub stage: Stage,
    /// The catalog index of the chosen action.
    pub chosen: Option<usize>,
    /// The chosen action's fields, in its parameters' order.
    pub fields: Vec<Field>,
}

/// What a key did to the picker.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Stay,
    Close,
    Send(Pick),
}

impl Picker {
    pub fn new(
        ticket: i64,
        ticket_target: String,
        catalog: Vec<ActionSpec>,
        nodes: Vec<NodeId>,
    ) -> Self {
        Self {
            ticket,
            ticket_target,
            catalog,
            nodes,
            stage: Stage::Choose { selected: 0 },
            chosen: None,
            fields: Vec::new(),
        }
    }

    /// The action being filled or confirmed (the highlighted one while choosing).
    pub fn spec(&self) -> Option<&ActionSpec> {
        match self.stage {
            Stage::Choose { selected } => self.catalog.get(selected),
            _ => self.chosen.and_then(|i| self.catalog.get(i)),
        }
    }

    /// Each parameter's value as it stands, or what is wrong with it.
    pub fn values(&self) -> Vec<Result<serde_json::Value, String>> {
        let Some(spec) = self.spec() else {
            return vec![];
        };
        spec.params
            .iter()
            .zip(&self.fields)
            .map(|(param, field)| {
                let value = match field {
                    Field::Choice { values, at } => match values.get(*at) {
                        Some(v) => serde_json::Value::String(v.clone()),
                        None => return Err("nothing to choose from".to_string()),
                    },
                    Field::Text(text) => param.parse_typed(&text.lines().join("")),
                };
                param.check(&value, Some(&self.nodes)).map(|()| value)
            })
            .collect()
    }

    /// The name to type to override the chosen action's premises (as the engine checks it).
    pub fn override_target(&self) -> String {
        match self.spec() {
            Some(spec) => spec.override_target(&self.request(), &self.ticket_target),
            None => self.ticket_target.clone(),
        }
    }

    /// The chosen action with the parameters that are valid so far.
    fn request(&self) -> ActionRequest {
        let Some(spec) = self.spec() else {
            return ActionRequest {
                action: String::new(),
                params: BTreeMap::new(),
            };
        };
        let params = spec
            .params
            .iter()
            .zip(self.values())
            .filter_map(|(p, v)| Some((p.name.clone(), v.ok()?)))
            .collect();
        ActionRequest {
            action: spec.name.clone(),
            params,
        }
    }

    pub fn key(&mut self, event: KeyEvent) -> Outcome {
        match &mut self.stage {
            Stage::Choose { selected } => match event.code {
                KeyCode::Esc => return Outcome::Close,
                KeyCode::Up => *selected = selected.saturating_sub(1),
                KeyCode::Down => {
                    *selected = (*selected + 1).min(self.catalog.len().saturating_sub(1))
                }
                KeyCode::Enter if !self.catalog.is_empty() => {
                    let chosen = *selected;
                    self.choose(chosen);
                }
                _ => {}
            },
            Stage::Fill { field } => {
                let field = *field;
                match event.code {
                    KeyCode::Esc => {
                        self.stage = Stage::Choose {
                            selected: self.chosen.unwrap_or(0),
                        }
                    }
                    KeyCode::Up | KeyCode::BackTab => {
                        self.stage = Stage::Fill {
                            field: field.saturating_sub(1),
                        }
                    }
                    KeyCode::Down | KeyCode::Tab => {
                        let last = self.fields.len().saturating_sub(1);
                        self.stage = Stage::Fill {
                            field: (field + 1).min(last),
                        }
                    }
                    KeyCode::Enter => {
                        // Enter moves on to the next field, and from the last to the summary
                        // once every value is valid.
                        if field + 1 < self.fields.len() {
                            self.stage = Stage::Fill { field: field + 1 };
                        } else if self.values().iter().all(Result::is_ok) {
                            self.stage = Stage::Confirm { typing: None };
                        }
                    }
                    _ => match self.fields.get_mut(field) {
                        Some(Field::Choice { values, at }) => match event.code {
                            KeyCode::Left => *at = at.saturating_sub(1),
                            KeyCode::Right => *at = (*at + 1).min(values.len().saturating_sub(1)),
                            _ => {}
                        },
                        Some(Field::Text(text)) => {
                            text.input(event);
                        }
                        None => {}
                    },
                }
            }
            Stage::Confirm { typing: None } => match event.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => return Outcome::Send(self.pick(None)),
                KeyCode::Char('o') if self.spec().is_some_and(|s| !s.premises.is_empty()) => {
                    self.stage = Stage::Confirm {
                        typing: Some(Box::default()),
                    }
                }
                KeyCode::Esc => self.back_to_fields(),
                _ => {}
            },
            Stage::Confirm { typing: Some(text) } => match event.code {
                KeyCode::Esc => self.stage = Stage::Confirm { typing: None },
                KeyCode::Enter => {
                    let typed = text.lines().join("").trim().to_string();
                    if typed == self.override_target() {
                        return Outcome::Send(self.pick(Some(typed)));
                    }
                }
                _ => {
                    text.input(event);
                }
            },
        }
        Outcome::Stay
    }

    fn back_to_fields(&mut self) {
        self.stage = if self.fields.is_empty() {
            Stage::Choose {
                selected: self.chosen.unwrap_or(0),
            }
        } else {
            Stage::Fill {
                field: self.fields.len() - 1,
            }
        };
    }

    fn choose(&mut self, index: usize) {
        self.chosen = Some(index);
        let spec = &self.catalog[index];
        self.fields = spec
            .params
            .iter()
            .map(|p| field_for(p, &self.nodes, &self.ticket_target))
            .collect();
        self.stage = if self.fields.is_empty() {
            Stage::Confirm { typing: None }
        } else {
            Stage::Fill { field: 0 }
        };
    }

    fn pick(&self, override_for: Option<String>) -> Pick {
        let request = self.request();
        Pick {
            ticket: self.ticket,
            action: request.action,
            params: request.params,
            override_for,
        }
    }
}

/// A node (or a list that holds node names) starts at the ticket's target when it is one.
fn field_for(param: &ParamSpec, nodes: &[NodeId], ticket_target: &str) -> Field {
    match &param.kind {
        ParamKind::Enum { values } => Field::Choice {
            values: values.clone(),
            at: values.iter().position(|v| v == ticket_target).unwrap_or(0),
        },
        ParamKind::Node => Field::Choice {
            values: nodes.iter().map(|n| n.0.clone()).collect(),
            at: nodes.iter().position(|n| n.0 == ticket_target).unwrap_or(0),
        },
        ParamKind::Integer { .. } | ParamKind::String { .. } => Field::Text(Box::default()),
    }
}
