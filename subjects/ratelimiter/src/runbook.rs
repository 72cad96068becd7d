//! The runbook is data (runbook.toml beside this file), shared by the rules brain and the
//! LLM prompts.

use operator_protocol::Runbook;

pub fn runbook() -> Runbook {
    toml::from_str(include_str!("runbook.toml")).expect("runbook.toml is checked by a unit test")
}

#[cfg(test)]
mod tests {
    use crate::invariants::*;

    #[test]
    fn the_runbook_parses_and_covers_every_invariant_with_remedies_from_the_catalog() {
        let runbook = super::runbook();
        let nodes = vec!["node-1".to_string()];
        let actions: Vec<String> = crate::actions::specs(&nodes)
            .into_iter()
            .map(|a| a.name)
            // The engine's general actions, which every subject's runbook may name.
            .chain(["log_message".to_string(), "wait".to_string()])
            .collect();
        let tools: Vec<String> = crate::tools::specs(&nodes)
            .into_iter()
            .map(|t| t.name)
            .collect();
        for invariant in [
            NODE_DOWN,
            REDIS_DISCONNECTED,
            HIGH_LATENCY,
            COUNTER_DRIFT,
            GHOST_ALLOWING,
            DECISIONS_UNBACKED,
            FLAGS_DIFFER,
        ] {
            let entry = runbook
                .entry(invariant)
                .unwrap_or_else(|| panic!("no runbook entry for {invariant}"));
            assert!(
                entry.hypotheses.len() >= 2,
                "{invariant}: a differential needs alternatives"
            );
            for h in &entry.hypotheses {
                assert!(
                    !h.remedy.is_empty(),
                    "{invariant}/{}: no remedy",
                    h.root_cause
                );
                for step in &h.remedy {
                    assert!(
                        actions.contains(&step.action),
                        "{}: unknown action {}",
                        h.root_cause,
                        step.action
                    );
                }
                for check in &h.evidence {
                    assert!(
                        tools.contains(&check.tool),
                        "{}: unknown tool {}",
                        h.root_cause,
                        check.tool
                    );
                }
            }
        }
        let causes: Vec<String> = runbook
            .entries
            .iter()
            .flat_map(|e| e.hypotheses.iter().map(|h| h.root_cause.clone()))
            .collect();
        for chaos in crate::chaos::specs(&nodes) {
            assert!(
                causes.contains(&chaos.root_cause),
                "chaos {} has no hypothesis",
                chaos.name
            );
        }
    }
}
