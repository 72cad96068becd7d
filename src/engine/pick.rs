//! A human picks the action: from the catalog, for a ticket, checked as typed. The pick is
//! approved by the person who made it and runs through the same gates as the brain's (mode,
//! kill switch, policy); its premises are re-checked unless the person typed the target's
//! name to override them.

use operator_protocol::{ActionRequest, ActionSpec, NodeId};

use super::validate::validate_request;
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
    validate_request(catalog, request, nodes)?;
    let spec = catalog
        .iter()
        .find(|s| s.name == request.action)
        .expect("validated above");
    if let Some(typed) = &pick.override_for {
        let target = spec.override_target(request, &ticket.target);
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
