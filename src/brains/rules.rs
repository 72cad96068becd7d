//! The offline rules brain: a differential diagnosis read from the subject's runbook. It calls
//! the read-only tools each hypothesis names, scores every hypothesis on what they return,
//! picks the best, and explains why it rejected the others. Nothing subject-specific is here.

use std::collections::BTreeMap;

use operator_protocol::{
    Alternative, BoxFuture, Brain, ContractError, ContractResult, Cost, Diagnosis,
    DiagnosisContext, Evidence, EvidenceCheck, Hypothesis, ReasoningEvent, ReasoningSink,
    RecommendedAction, RootCause, ToolBox, ToolCall,
};
use serde_json::Value;

use super::template::fill;

pub struct RulesBrain;

/// One hypothesis after its evidence was read.
struct Scored<'a> {
    hypothesis: &'a Hypothesis,
    /// -1.0 (all evidence against) to 1.0 (all evidence for).
    score: f64,
    held: Vec<(&'a EvidenceCheck, Option<Value>)>,
    failed: Vec<(&'a EvidenceCheck, Option<Value>)>,
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

            let mut answers: BTreeMap<String, Result<Value, String>> = BTreeMap::new();
            let mut tool_calls = 0u32;
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
                };
                let mut total_weight = 0.0;
                for check in &hypothesis.evidence {
                    let call = ToolCall {
                        tool: check.tool.clone(),
                        args: fill(&check.args, ticket),
                    };
                    let cache_key = serde_json::to_string(&call).unwrap_or_default();
                    if !answers.contains_key(&cache_key) {
                        sink.emit(ReasoningEvent::ToolCall {
                            tool: call.tool.clone(),
                            args: serde_json::to_value(&call.args).unwrap_or_default(),
                        });
                        tool_calls += 1;
                        let answer = tools.call(&call).await.map_err(|e| e.to_string());
                        sink.emit(ReasoningEvent::ToolResult {
                            tool: call.tool.clone(),
                            ok: answer.is_ok(),
                            summary: match &answer {
                                Ok(v) => show(&Some(v.clone())),
                                Err(e) => e.clone(),
                            },
                        });
                        answers.insert(cache_key.clone(), answer);
                    }
                    total_weight += check.weight;
                    match &answers[&cache_key] {
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
                        }
                    }
                }
                if total_weight > 0.0 {
                    s.score /= total_weight;
                }
                scored.push(s);
            }

            // Highest score wins; ties go to the hypothesis the runbook lists first.
            let best_index = scored
                .iter()
                .enumerate()
                .max_by(|(ia, a), (ib, b)| a.score.total_cmp(&b.score).then(ib.cmp(ia)))
                .map(|(i, _)| i)
                .ok_or_else(|| {
                    ContractError::Permanent(format!(
                        "the runbook entry for {} lists no hypotheses",
                        ticket.invariant
                    ))
                })?;
            let best = &scored[best_index];
            let runner_up = scored
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != best_index)
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
                    why_rejected: match s.failed.first() {
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
                    tool_calls,
                    ..Cost::default()
                },
            })
        })
    }
}
