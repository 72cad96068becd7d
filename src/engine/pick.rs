//! A human picks the action: from the catalog, for a ticket, checked as typed. The pick is
//! approved by the person who made it and runs through the same gates as the brain's (mode,
//! kill switch, policy); its premises are re-checked unless the person typed the target's
//! name to override them.

use operator_protocol::{ActionRequest, ActionSpec, NodeId};

use super::validate::disrupted_node;
use crate::model::{Ticket, TicketId};
use crate::store::NewAction;

/// What a person asked to run, and on which ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanPick {
    pub ticket: TicketId,
    pub request: ActionRequest,
    /// The name the person typed to override the action's premises, if they did.
    pub override_for: Option<String>,
}

/// The name a person types to override an action's premises: the node it disrupts, else the
/// ticket's target.
pub fn override_target(spec: &ActionSpec, request: &ActionRequest, ticket: &Ticket) -> String {
    disrupted_node(spec, request)
        .map(|node| node.0)
        .unwrap_or_else(|| ticket.target.clone())
}

/// Checks a pick against the catalog and the ticket, and makes it an action; the error says
/// what to fix. `nodes` is `None` where the cluster's nodes are not known (the command line):
/// the running engine checks them before the action runs.
pub fn picked_action(
    catalog: &[ActionSpec],
    ticket: &Ticket,
    pick: &HumanPick,
    nodes: Option<&[NodeId]>,
    max_attempts: u32,
) -> Result<NewAction, String> {
    let request = &pick.request;
    let spec = catalog
        .iter()
        .find(|s| s.name == request.action)
        .ok_or_else(|| {
            let names: Vec<&str> = catalog.iter().map(|s| s.name.as_str()).collect();
            format!(
                "unknown action {:?}; the catalog has: {}",
                request.action,
                names.join(", ")
            )
        })?;
    for name in request.params.keys() {
        if !spec.params.iter().any(|p| &p.name == name) {
            return Err(format!("{}: unknown parameter {name:?}", spec.name));
        }
    }
    for param in &spec.params {
        match request.params.get(&param.name) {
            Some(value) => param
                .check(value, nodes)
                .map_err(|e| format!("{}: parameter {:?} {e}", spec.name, param.name))?,
            None if param.required => {
                return Err(format!("{}: missing parameter {:?}", spec.name, param.name));
            }
            None => {}
        }
    }
    if let Some(typed) = &pick.override_for {
        let target = override_target(spec, request, ticket);
        if typed != &target {
            return Err(format!(
                "to override {}'s premises, type its target's name exactly: {target:?} (you typed {typed:?})",
                spec.name
            ));
        }
    }
    Ok(NewAction {
        ticket_id: Some(ticket.id),
        name: spec.name.clone(),
        params: request.params.clone().into_iter().collect(),
        rationale: "picked by a human".into(),
        risk: spec.risk,
        max_attempts,
        depends_on: None,
        not_before_ms: None,
        confidence: None,
        destroys: spec.destroys.clone(),
        irreversible: spec.reversal.irreversible_because(),
        undoes: None,
    })
}
