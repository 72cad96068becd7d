//! The blast-radius policy, as a pure function: one disruptive action per subject at a time,
//! never a majority of nodes disrupted, and a budget of actions per ticket.

use std::collections::BTreeSet;

use operator_protocol::NodeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Not now; try again on a later tick.
    Wait(String),
    /// Never: the action fails with this reason.
    Refuse(String),
}

#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    pub disruptive: bool,
    /// The node this action takes out, if it takes one out.
    pub node: Option<&'a NodeId>,
    pub cluster_nodes: usize,
    /// Nodes already down in the latest observation.
    pub down: &'a BTreeSet<NodeId>,
    /// Nodes disrupted by actions that ran recently or are running.
    pub recently_disrupted: &'a BTreeSet<NodeId>,
    pub disruptive_running: usize,
    /// Actions this ticket has already started (retries included).
    pub ticket_actions_started: u32,
    pub ticket_action_budget: u32,
}

pub fn evaluate(input: &PolicyInput) -> Verdict {
    if input.ticket_actions_started >= input.ticket_action_budget {
        return Verdict::Refuse(format!(
            "the ticket's action budget of {} is used up",
            input.ticket_action_budget
        ));
    }
    if !input.disruptive {
        return Verdict::Allow;
    }
    if input.disruptive_running > 0 {
        return Verdict::Wait("another disruptive action is running on this subject".into());
    }
    if let Some(node) = input.node {
        // A node that is already down cannot be taken out again: acting on it (a restart)
        // can only bring it back, even when most of its peers are down too.
        if input.down.contains(node) {
            return Verdict::Allow;
        }
        let mut disrupted: BTreeSet<&NodeId> =
            input.down.iter().chain(input.recently_disrupted).collect();
        disrupted.insert(node);
        if input.cluster_nodes > 0 && disrupted.len() * 2 > input.cluster_nodes {
            return Verdict::Refuse(format!(
                "disrupting {node} would leave {} of {} nodes disrupted; never a majority",
                disrupted.len(),
                input.cluster_nodes
            ));
        }
    }
    Verdict::Allow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<NodeId> {
        names.iter().map(|n| NodeId::from(*n)).collect()
    }

    fn input<'a>(
        node: &'a NodeId,
        down: &'a BTreeSet<NodeId>,
        recent: &'a BTreeSet<NodeId>,
    ) -> PolicyInput<'a> {
        PolicyInput {
            disruptive: true,
            node: Some(node),
            cluster_nodes: 4,
            down,
            recently_disrupted: recent,
            disruptive_running: 0,
            ticket_actions_started: 0,
            ticket_action_budget: 3,
        }
    }

    #[test]
    fn restarting_a_node_that_is_already_down_is_allowed() {
        let node = NodeId::from("n2");
        let (down, recent) = (set(&["n2"]), set(&[]));
        assert_eq!(evaluate(&input(&node, &down, &recent)), Verdict::Allow);
    }

    #[test]
    fn restarting_a_down_node_is_allowed_even_when_most_peers_are_down() {
        let node = NodeId::from("n1");
        let (down, recent) = (set(&["n1", "n2", "n3"]), set(&[]));
        assert_eq!(evaluate(&input(&node, &down, &recent)), Verdict::Allow);
    }

    #[test]
    fn disrupting_a_majority_is_refused() {
        let node = NodeId::from("n3");
        let (down, recent) = (set(&["n1"]), set(&["n2"]));
        assert!(
            matches!(evaluate(&input(&node, &down, &recent)), Verdict::Refuse(r) if r.contains("majority"))
        );
    }

    #[test]
    fn a_second_disruptive_action_waits() {
        let node = NodeId::from("n1");
        let (down, recent) = (set(&[]), set(&[]));
        let mut i = input(&node, &down, &recent);
        i.disruptive_running = 1;
        assert!(matches!(evaluate(&i), Verdict::Wait(_)));
    }

    #[test]
    fn the_ticket_budget_is_enforced_even_for_safe_actions() {
        let node = NodeId::from("n1");
        let (down, recent) = (set(&[]), set(&[]));
        let mut i = input(&node, &down, &recent);
        i.disruptive = false;
        i.ticket_actions_started = 3;
        assert!(matches!(evaluate(&i), Verdict::Refuse(r) if r.contains("budget")));
    }
}
