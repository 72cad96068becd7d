//! Earned confidence: how sure a brain says it is counts only as far as the runbook's own
//! evidence bears it out. The rules brain measures its confidence from its checks (how many
//! held, by what margin over the next hypothesis). Any other brain (a model, a replay, the
//! fuzzer) is refereed: the rules brain reads the same evidence for the same ticket, and the
//! confidence the engine gates on is capped by what that reading found for the cause the
//! brain named. A model that says 99 % for a cause the checks do not find gets at most
//! `UNCORROBORATED`: enough for a safe step, not for a restart without a human.

use operator_protocol::Diagnosis;

/// The most a cause the runbook's checks neither find nor refute earns: above the safe gate,
/// below the disruptive one (`ConfidenceGates`), so a person approves anything that disrupts.
pub const UNCORROBORATED: f64 = 0.8;
/// The most a cause the checks rule out, or find against, earns.
const CONTRADICTED: f64 = 0.3;

/// The confidence `claimed` earns against the referee's reading of the same ticket (or why
/// there is none), and what to say when it is less than claimed.
pub fn earned(claimed: &Diagnosis, referee: Result<&Diagnosis, &str>) -> (f64, Option<String>) {
    let cause = &claimed.root_cause.category;
    let (cap, why) = match referee {
        // "I don't know" runs nothing whatever its confidence.
        _ if claimed.is_unknown() => return (claimed.confidence, None),
        Err(e) => (
            UNCORROBORATED,
            format!("the runbook's checks could not be read for it ({e})"),
        ),
        Ok(found) if found.root_cause.category == *cause => (
            found.confidence,
            format!(
                "the runbook's checks find {cause} at {:.0} %",
                found.confidence * 100.0
            ),
        ),
        Ok(found) => match found.alternatives.iter().find(|a| a.category == *cause) {
            Some(rejected) if !found.is_unknown() => (
                CONTRADICTED.min(1.0 - found.confidence),
                format!(
                    "the runbook's checks find {} at {:.0} % instead ({})",
                    found.root_cause.category,
                    found.confidence * 100.0,
                    rejected.why_rejected
                ),
            ),
            Some(rejected) => (
                CONTRADICTED,
                format!(
                    "the runbook's checks rule it out: {}",
                    rejected.why_rejected
                ),
            ),
            None if found.is_unknown() => (
                UNCORROBORATED,
                "the runbook knows no such cause for this ticket, and none of its own stands"
                    .to_string(),
            ),
            None => (
                UNCORROBORATED.min(1.0 - found.confidence).max(0.05),
                format!(
                    "the runbook knows no such cause for this ticket; its checks find {} at {:.0} %",
                    found.root_cause.category,
                    found.confidence * 100.0
                ),
            ),
        },
    };
    if claimed.confidence <= cap {
        return (claimed.confidence, None);
    }
    (
        cap,
        Some(format!(
            "Confidence {:.0} % claimed for {cause}, {:.0} % earned: {why}.",
            claimed.confidence * 100.0,
            cap * 100.0
        )),
    )
}

/// Below "sure": while other trouble is open elsewhere in the cluster (another incident), or
/// trouble that can bring this symptom about was there when it broke (a Redis pause before a
/// node's odd answers, a paused store before leaders moved), what the checks find for this
/// ticket may be that trouble's doing, so no cause is named at 90 % or more, whoever names it.
pub const CONTESTED: f64 = 0.89;

/// The confidence left when `others` (`EngineState::could_explain`, as "#3 redis_down on
/// redis") could explain the same symptom, and what to say when it is less.
pub fn contested(confidence: f64, others: &[String]) -> (f64, Option<String>) {
    if others.is_empty() || confidence <= CONTESTED {
        return (confidence, None);
    }
    (
        CONTESTED,
        Some(format!(
            "confidence {:.0} % → {:.0} %: other problems are open that could explain it too ({})",
            confidence * 100.0,
            CONTESTED * 100.0,
            others.join(", ")
        )),
    )
}

#[cfg(test)]
mod tests {
    use operator_protocol::{Alternative, Cost, RootCause, UNKNOWN_ROOT_CAUSE};

    use super::*;

    fn said(cause: &str, confidence: f64, rejected: &[&str]) -> Diagnosis {
        Diagnosis {
            summary: String::new(),
            root_cause: RootCause {
                category: cause.into(),
                explanation: String::new(),
            },
            evidence: vec![],
            alternatives: rejected
                .iter()
                .map(|c| Alternative {
                    category: c.to_string(),
                    why_rejected: format!("{c}: found no"),
                })
                .collect(),
            recommended_actions: vec![],
            confidence,
            cost: Cost::default(),
        }
    }

    #[test]
    fn a_cause_the_checks_find_earns_what_they_measure() {
        let (c, why) = earned(&said("crash", 0.99, &[]), Ok(&said("crash", 0.7, &[])));
        assert_eq!(c, 0.7);
        assert!(why.unwrap().contains("find crash at 70 %"));
        // Claiming less than measured keeps the claim.
        assert_eq!(
            earned(&said("crash", 0.6, &[]), Ok(&said("crash", 0.9, &[]))),
            (0.6, None)
        );
    }

    #[test]
    fn a_cause_the_checks_find_against_earns_little() {
        let referee = said("stall", 0.95, &["crash"]);
        let (c, why) = earned(&said("crash", 0.99, &[]), Ok(&referee));
        assert!((c - 0.05).abs() < 1e-9, "{c}");
        assert!(why.unwrap().contains("stall at 95 % instead"));
        let ruled_out = said(UNKNOWN_ROOT_CAUSE, 0.0, &["crash"]);
        let (c, why) = earned(&said("crash", 0.99, &[]), Ok(&ruled_out));
        assert_eq!(c, CONTRADICTED);
        assert!(why.unwrap().contains("rule it out"));
    }

    #[test]
    fn a_cause_the_runbook_does_not_know_stays_below_the_disruptive_gate() {
        let none_stands = said(UNKNOWN_ROOT_CAUSE, 0.0, &[]);
        assert_eq!(
            earned(&said("cosmic_rays", 0.99, &[]), Ok(&none_stands)).0,
            UNCORROBORATED
        );
        let other = said("stall", 0.5, &[]);
        assert_eq!(earned(&said("cosmic_rays", 0.99, &[]), Ok(&other)).0, 0.5);
        let (c, why) = earned(&said("cosmic_rays", 0.99, &[]), Err("no runbook entry"));
        assert_eq!(c, UNCORROBORATED);
        assert!(why.unwrap().contains("no runbook entry"));
        assert!(UNCORROBORATED < crate::engine::ConfidenceGates::default().disruptive);
        assert!(UNCORROBORATED >= crate::engine::ConfidenceGates::default().safe);
    }

    #[test]
    fn another_open_problem_keeps_a_cause_below_sure() {
        assert_eq!(contested(0.99, &[]), (0.99, None));
        assert_eq!(
            contested(0.7, &["#3 redis_down on redis".into()]),
            (0.7, None)
        );
        let (c, why) = contested(0.99, &["#3 redis_down on redis".into()]);
        assert_eq!(c, CONTESTED);
        assert!(why.unwrap().contains("#3 redis_down on redis"));
        let gates = crate::engine::ConfidenceGates::default();
        assert!(CONTESTED >= gates.disruptive && CONTESTED < gates.destructive);
    }

    #[test]
    fn unknown_is_never_capped() {
        let unknown = said(UNKNOWN_ROOT_CAUSE, 0.0, &[]);
        assert_eq!(earned(&unknown, Err("x")), (0.0, None));
    }
}
