//! The offline rules brain: a differential diagnosis read from the subject's runbook. It calls
//! the read-only tools each hypothesis names, scores every hypothesis on what they return,
//! picks the best of those still standing, and explains why it rejected the others. A
//! hypothesis whose required evidence fails, or whose evidence weighs against it, is refuted,
//! not "less likely": when none stands, the diagnosis is unknown and recommends nothing.
//! Nothing subject-specific is here.

use operator_protocol::{
    Alternative, BoxFuture, Brain, ContractError, ContractResult, Cost, Diagnosis,
    DiagnosisContext, Evidence, EvidenceCheck, EvidenceRole, Hypothesis, ReasoningEvent,
    ReasoningSink, RecommendedAction, RootCause, TicketBrief, ToolBox, ToolCall,
    UNKNOWN_ROOT_CAUSE,
};
use serde_json::Value;

use super::narrated::NarratedTools;
use super::template::fill;

pub struct RulesBrain;

/// One hypothesis after its evidence was read.
struct Scored<'a> {
    hypothesis: &'a Hypothesis,
    /// -1.0 (all evidence against) to 1.0 (all evidence for).
    score: f64,
    held: Vec<(&'a EvidenceCheck, Option<Value>)>,
    failed: Vec<(&'a EvidenceCheck, Option<Value>)>,
    /// The required check that failed (or could not be read), in words.
    refuted_by: Option<String>,
}

impl Scored<'_> {
    /// Why it does not stand, if it does not: a failed premise, or evidence against it.
    fn ruled_out(&self) -> Option<String> {
        if let Some(why) = &self.refuted_by {
            return Some(format!("refuted: {why}"));
        }
        (self.score <= 0.0).then(|| match self.failed.first() {
            Some((check, found)) => format!(
                "the evidence weighs against it (score {:.2}): {}: found {}, expected {}",
                self.score,
                check.description,
                show(found),
                check.expect
            ),
            None => format!("no evidence for it (score {:.2})", self.score),
        })
    }
}

fn show(value: &Option<Value>) -> String {
    match value {
        None => "nothing".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            let text = v.to_string();
            match text.char_indices().nth(80) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            }
        }
    }
}

fn say(sink: &dyn ReasoningSink, line: String) {
    sink.emit(ReasoningEvent::Text { text: line + "\n" });
}

impl Brain for RulesBrain {
    fn name(&self) -> String {
        "rules".into()
    }

    fn measures_its_confidence(&self) -> bool {
        true
    }

    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        tools: &'a dyn ToolBox,
        sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move {
            let ticket = &context.ticket;
            let entry = context.runbook.entry(&ticket.invariant).ok_or_else(|| {
                ContractError::Permanent(format!(
                    "the {} runbook has no entry for {:?}; a human has to look",
                    context.subject, ticket.invariant
                ))
            })?;
            say(
                sink,
                format!(
                    "Ticket #{}: {} on {} — {}",
                    ticket.id, ticket.invariant, ticket.target, ticket.message
                ),
            );
            say(
                sink,
                format!(
                    "Runbook: {} {} hypotheses to tell apart.",
                    entry.description,
                    entry.hypotheses.len()
                ),
            );

            let reads = NarratedTools::new(tools, Some(sink));
            let mut scored = Vec::new();
            for hypothesis in &entry.hypotheses {
                say(
                    sink,
                    format!("• {}: {}", hypothesis.root_cause, hypothesis.description),
                );
                let mut s = Scored {
                    hypothesis,
                    score: 0.0,
                    held: vec![],
                    failed: vec![],
                    refuted_by: None,
                };
                let mut total_weight = 0.0;
                for check in &hypothesis.evidence {
                    let call = ToolCall {
                        tool: check.tool.clone(),
                        args: fill(&check.args, ticket),
                    };
                    let answer = reads.call(&call).await;
                    total_weight += check.weight;
                    match &answer {
                        Ok(answer) => {
                            let found = answer.pointer(&check.pointer).cloned();
                            if check.expect.holds(found.as_ref()) {
                                s.score += check.weight;
                                say(
                                    sink,
                                    format!("    ✓ {} ({})", check.description, show(&found)),
                                );
                                s.held.push((check, found));
                            } else {
                                s.score -= check.weight;
                                say(
                                    sink,
                                    format!(
                                        "    ✗ {}: found {}, expected {}",
                                        check.description,
                                        show(&found),
                                        check.expect
                                    ),
                                );
                                if check.role == EvidenceRole::Required {
                                    s.refuted_by.get_or_insert(format!(
                                        "{}: found {}, expected {}",
                                        check.description,
                                        show(&found),
                                        check.expect
                                    ));
                                }
                                s.failed.push((check, found));
                            }
                        }
                        Err(error) => {
                            say(
                                sink,
                                format!(
                                    "    ? {}: {} failed ({error})",
                                    check.description, check.tool
                                ),
                            );
                            // A premise that cannot be read is not established.
                            if check.role == EvidenceRole::Required {
                                s.refuted_by.get_or_insert(format!(
                                    "{}: {} failed ({error})",
                                    check.description, check.tool
                                ));
                            }
                        }
                    }
                }
                if total_weight > 0.0 {
                    s.score /= total_weight;
                }
                scored.push(s);
            }

            if scored.is_empty() {
                return Err(ContractError::Permanent(format!(
                    "the runbook entry for {} lists no hypotheses",
                    ticket.invariant
                )));
            }
            for s in &scored {
                if let Some(why) = s.ruled_out() {
                    say(
                        sink,
                        format!("  ✗ {} is ruled out: {why}", s.hypothesis.root_cause),
                    );
                }
            }
            // Highest score among those still standing wins; ties go to the hypothesis the
            // runbook lists first.
            let Some(best_index) = scored
                .iter()
                .enumerate()
                .filter(|(_, s)| s.ruled_out().is_none())
                .max_by(|(ia, a), (ib, b)| a.score.total_cmp(&b.score).then(ib.cmp(ia)))
                .map(|(i, _)| i)
            else {
                return Ok(unknown(ticket, &scored, reads.calls_made(), sink));
            };
            let best = &scored[best_index];
            let runner_up = scored
                .iter()
                .enumerate()
                .filter(|(i, s)| *i != best_index && s.ruled_out().is_none())
                .map(|(_, s)| s.score)
                .fold(f64::NEG_INFINITY, f64::max);
            let margin = if runner_up.is_finite() {
                best.score - runner_up
            } else {
                1.0
            };
            let confidence = (((best.score + 1.0) / 2.0) * (0.5 + margin.clamp(0.0, 1.0) / 2.0))
                .clamp(0.05, 0.99);
            say(
                sink,
                format!(
                    "Conclusion: {} (score {:.2}, margin {:.2}, confidence {:.0}%).",
                    best.hypothesis.root_cause,
                    best.score,
                    margin,
                    confidence * 100.0
                ),
            );

            let alternatives = scored
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != best_index)
                .map(|(_, s)| Alternative {
                    category: s.hypothesis.root_cause.clone(),
                    why_rejected: match s.ruled_out() {
                        Some(why) => why,
                        None => match s.failed.first() {
                            Some((check, found)) => format!(
                                "{}: found {}, expected {} (score {:.2} against {:.2})",
                                check.description,
                                show(found),
                                check.expect,
                                s.score,
                                best.score
                            ),
                            None => format!(
                                "less evidence for it (score {:.2} against {:.2})",
                                s.score, best.score
                            ),
                        },
                    },
                })
                .collect();
            let recommended_actions: Vec<RecommendedAction> = best
                .hypothesis
                .remedy
                .iter()
                .map(|step| RecommendedAction {
                    action: step.action.clone(),
                    params: fill(&step.params, ticket),
                    rationale: step.rationale.clone(),
                    after_ms: None,
                })
                .collect();
            for action in &recommended_actions {
                say(
                    sink,
                    format!(
                        "Recommend {} {} — {}",
                        action.action,
                        Value::from(serde_json::Map::from_iter(action.params.clone())),
                        action.rationale
                    ),
                );
            }
            Ok(Diagnosis {
                summary: format!(
                    "{} on {}: most likely {} — {}",
                    ticket.invariant,
                    ticket.target,
                    best.hypothesis.root_cause,
                    best.hypothesis.description
                ),
                root_cause: RootCause {
                    category: best.hypothesis.root_cause.clone(),
                    explanation: best.hypothesis.description.clone(),
                },
                evidence: best
                    .held
                    .iter()
                    .map(|(check, found)| Evidence {
                        source: check.tool.clone(),
                        observation: format!("{} ({})", check.description, show(found)),
                    })
                    .collect(),
                alternatives,
                recommended_actions,
                confidence,
                cost: Cost {
                    tool_calls: reads.calls_made(),
                    ..Cost::default()
                },
            })
        })
    }
}

/// No hypothesis stands: say so, show everything that was read, recommend nothing.
fn unknown(
    ticket: &TicketBrief,
    scored: &[Scored],
    tool_calls: u32,
    sink: &dyn ReasoningSink,
) -> Diagnosis {
    say(
        sink,
        "Conclusion: no known cause fits the evidence. Nothing is recommended; a human has the evidence.".into(),
    );
    let read = |s: &Scored| {
        let held = s.held.iter().map(|(c, f)| (c, f, "holds"));
        let failed = s.failed.iter().map(|(c, f)| (c, f, "fails"));
        held.chain(failed)
            .map(|(check, found, verdict)| Evidence {
                source: check.tool.clone(),
                observation: format!("{} {verdict} (found {})", check.description, show(found)),
            })
            .collect::<Vec<_>>()
    };
    Diagnosis {
        summary: format!(
            "{} on {}: no known cause fits the evidence; needs a human",
            ticket.invariant, ticket.target
        ),
        root_cause: RootCause {
            category: UNKNOWN_ROOT_CAUSE.into(),
            explanation: format!(
                "every hypothesis the runbook has for {} is ruled out by what the tools show",
                ticket.invariant
            ),
        },
        evidence: scored.iter().flat_map(read).collect(),
        alternatives: scored
            .iter()
            .map(|s| Alternative {
                category: s.hypothesis.root_cause.clone(),
                why_rejected: s.ruled_out().unwrap_or_default(),
            })
            .collect(),
        recommended_actions: vec![],
        confidence: 0.0,
        cost: Cost {
            tool_calls,
            ..Cost::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use operator_protocol::{Expectation, RemedyStep, Runbook, RunbookEntry, Severity, ToolSpec};
    use serde_json::json;

    use super::*;

    /// Answers every tool call with one fixed JSON document.
    struct Answers(Value);

    impl ToolBox for Answers {
        fn specs(&self) -> Vec<ToolSpec> {
            vec![]
        }

        fn call<'a>(&'a self, _call: &'a ToolCall) -> BoxFuture<'a, ContractResult<Value>> {
            Box::pin(async move { Ok(self.0.clone()) })
        }
    }

    #[derive(Default)]
    struct Transcript(Mutex<String>);

    impl ReasoningSink for Transcript {
        fn emit(&self, event: ReasoningEvent) {
            if let ReasoningEvent::Text { text } = event {
                self.0.lock().unwrap().push_str(&text);
            }
        }
    }

    fn check(description: &str, pointer: &str, value: Value, role: EvidenceRole) -> EvidenceCheck {
        EvidenceCheck {
            probe: operator_protocol::Probe::new(
                description,
                "node_detail",
                json!({}),
                pointer,
                Expectation::Equals { value },
            ),
            weight: 2.0,
            role,
        }
    }

    fn hypothesis(root_cause: &str, evidence: Vec<EvidenceCheck>, action: &str) -> Hypothesis {
        Hypothesis {
            root_cause: root_cause.into(),
            description: root_cause.replace('_', " "),
            evidence,
            remedy: vec![RemedyStep {
                action: action.into(),
                params: Default::default(),
                rationale: "r".into(),
            }],
            transient: false,
        }
    }

    /// A Redis outage runbook in small: "redis is down" needs the process to have exited.
    fn context() -> DiagnosisContext {
        let down = hypothesis(
            "redis_down",
            vec![
                check(
                    "the Redis process has exited",
                    "/state",
                    json!("exited"),
                    EvidenceRole::Required,
                ),
                check(
                    "the operator cannot reach Redis",
                    "/reachable",
                    json!(false),
                    EvidenceRole::Supporting,
                ),
            ],
            "restart_redis",
        );
        let slow = hypothesis(
            "redis_slow",
            vec![check(
                "Redis is slow",
                "/slow",
                json!(true),
                EvidenceRole::Required,
            )],
            "log_message",
        );
        DiagnosisContext {
            subject: "fake".into(),
            ticket: TicketBrief {
                id: 1,
                invariant: "redis_disconnected".into(),
                target: "redis".into(),
                severity: Severity::Critical,
                message: "Redis does not answer".into(),
                evidence: json!({}),
                occurrences: 1,
            },
            observation: None,
            runbook: Runbook {
                entries: vec![RunbookEntry {
                    symptom: "redis_disconnected".into(),
                    description: "Redis does not answer.".into(),
                    hypotheses: vec![down, slow],
                }],
            },
            actions: vec![],
            tools: vec![],
        }
    }

    fn diagnose(answer: Value) -> (Diagnosis, String) {
        let sink = Transcript::default();
        let diagnosis = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(RulesBrain.diagnose(&context(), &Answers(answer), &sink))
            .unwrap();
        (diagnosis, sink.0.into_inner().unwrap())
    }

    #[test]
    fn a_hypothesis_whose_premise_fails_is_refuted_however_the_rest_scores() {
        // Redis runs and is not slow, yet the operator cannot reach it: the supporting check
        // for "redis_down" holds, its premise does not.
        let (diagnosis, transcript) =
            diagnose(json!({"state": "running", "reachable": false, "slow": false}));
        assert!(diagnosis.is_unknown(), "{diagnosis:?}");
        assert!(diagnosis.recommended_actions.is_empty());
        assert_eq!(diagnosis.confidence, 0.0);
        let why = &diagnosis.alternatives[0].why_rejected;
        assert!(
            why.starts_with("refuted: the Redis process has exited: found running"),
            "{why}"
        );
        assert!(transcript.contains("no known cause fits the evidence"));
        assert!(
            diagnosis
                .evidence
                .iter()
                .any(|e| e.observation.contains("cannot reach Redis holds")),
            "the evidence gathered goes to the human: {:?}",
            diagnosis.evidence
        );
    }

    #[test]
    fn the_hypothesis_whose_premises_hold_is_chosen_over_refuted_ones() {
        let (diagnosis, _) =
            diagnose(json!({"state": "exited", "reachable": false, "slow": false}));
        assert_eq!(diagnosis.root_cause.category, "redis_down");
        assert_eq!(diagnosis.recommended_actions[0].action, "restart_redis");
        assert!(
            diagnosis.alternatives[0]
                .why_rejected
                .starts_with("refuted: Redis is slow")
        );
    }
}
