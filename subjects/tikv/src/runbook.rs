//! TiKV's runbook (runbook.toml) and which broken invariants follow from which.

use operator_protocol::*;

/// What follows from what in a TiKV cluster: a store down leaves its regions short of
/// replicas (or of a quorum), its leaders elsewhere and the workload lower; a slow store sheds
/// leaders; PD without a leader reports its members down.
pub fn consequences() -> Vec<Consequence> {
    use crate::invariants::*;
    [
        (STORE_DOWN, REGION_UNDER_REPLICATED),
        (STORE_DOWN, REGION_BELOW_QUORUM),
        (STORE_DOWN, LEADER_IMBALANCE),
        (STORE_DOWN, WORKLOAD_DROP),
        (SLOW_STORE, LEADER_IMBALANCE),
        (PD_NO_LEADER, PD_MEMBER_DOWN),
        (PD_NO_LEADER, WORKLOAD_DROP),
    ]
    .into_iter()
    .map(|(cause, symptom)| Consequence::new(cause, symptom))
    .collect()
}

pub fn runbook() -> Runbook {
    toml::from_str(include_str!("runbook.toml")).expect("runbook.toml is checked by a unit test")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runbook_parses_and_covers_every_chaos() {
        let runbook: operator_protocol::Runbook =
            toml::from_str(include_str!("runbook.toml")).unwrap();
        for (invariant, cause) in [
            ("store_down", "store_crashed"),
            ("slow_store", "store_slow"),
            ("leader_imbalance", "leader_skew"),
            ("pd_no_leader", "pd_quorum_lost"),
            ("pd_member_down", "pd_member_crashed"),
            ("pd_member_down", "pd_member_stalled"),
        ] {
            let entry = runbook
                .entry(invariant)
                .unwrap_or_else(|| panic!("no entry for {invariant}"));
            assert!(
                entry.hypotheses.iter().any(|h| h.root_cause == cause),
                "{invariant}: no {cause}"
            );
        }
    }
}
