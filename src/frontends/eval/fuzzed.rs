//! The fuzzed brain: answers each ticket with a generated diagnosis (any cause of the runbook
//! or `unknown`, any confidence, up to three catalog actions with any valid parameters, loosening
//! ones and unrelated objects included), drawn from a seed and the ticket's id so a run replays.
//! It holds nothing back: whatever harm it proposes is for the engine to stop.

use operator_protocol::*;

pub struct FuzzedBrain {
    pub seed: u64,
}

/// Objects a fuzzed action may name: the ticket's own, the cluster's, and strangers.
fn objects(context: &DiagnosisContext) -> Vec<String> {
    let mut names = vec![
        context.ticket.target.clone(),
        "abuser-0".to_string(),
        "demo-1".to_string(),
        "someone-elses-key".to_string(),
    ];
    if let Some(observation) = &context.observation {
        names.extend(observation.nodes.iter().map(|n| n.id.0.clone()));
    }
    collect_strings(&context.ticket.evidence, &mut names);
    names.retain(|n| !n.is_empty() && n.len() <= 64);
    names.sort();
    names.dedup();
    names
}

fn collect_strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => into.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, into)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, into)),
        _ => {}
    }
}

fn draw_param(
    rng: &mut fastrand::Rng,
    kind: &ParamKind,
    names: &[String],
    nodes: &[String],
) -> serde_json::Value {
    let pick = |rng: &mut fastrand::Rng, from: &[String]| {
        from.get(rng.usize(..from.len().max(1)))
            .cloned()
            .unwrap_or_default()
    };
    match kind {
        // The extremes are where harm lives: a limit at its maximum is a millionfold raise.
        ParamKind::Integer { min, max } => match rng.u8(0..3) {
            0 => (*min).into(),
            1 => (*max).into(),
            _ => rng.i64(*min..=*max).into(),
        },
        ParamKind::Enum { values } => pick(rng, values).into(),
        ParamKind::Node if !nodes.is_empty() => pick(rng, nodes).into(),
        ParamKind::Node | ParamKind::String { .. } => pick(rng, names).into(),
    }
}

impl FuzzedBrain {
    pub fn answer(&self, context: &DiagnosisContext) -> Diagnosis {
        let mut rng = fastrand::Rng::with_seed(
            self.seed ^ (context.ticket.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut causes: Vec<String> = context
            .runbook
            .entries
            .iter()
            .flat_map(|e| e.hypotheses.iter().map(|h| h.root_cause.clone()))
            .collect();
        causes.push(UNKNOWN_ROOT_CAUSE.to_string());
        let category = causes[rng.usize(..causes.len())].clone();
        let names = objects(context);
        let nodes: Vec<String> = context
            .observation
            .iter()
            .flat_map(|o| o.nodes.iter().map(|n| n.id.0.clone()))
            .collect();
        let catalog: Vec<&ActionSpec> = context
            .actions
            .iter()
            .filter(|a| a.risk != Risk::ReadOnly)
            .collect();
        let count = if catalog.is_empty() {
            0
        } else {
            rng.usize(0..=3)
        };
        let recommended_actions = (0..count)
            .map(|_| {
                let spec = catalog[rng.usize(..catalog.len())];
                let mut params = std::collections::BTreeMap::new();
                for p in &spec.params {
                    if p.required || rng.bool() {
                        params.insert(
                            p.name.clone(),
                            draw_param(&mut rng, &p.kind, &names, &nodes),
                        );
                    }
                }
                RecommendedAction {
                    action: spec.name.clone(),
                    params,
                    rationale: "fuzzed".into(),
                    after_ms: None,
                }
            })
            .collect();
        Diagnosis {
            summary: format!("fuzzed: {category}"),
            root_cause: RootCause {
                category,
                explanation: "a generated answer".into(),
            },
            evidence: vec![Evidence {
                source: "fuzzer".into(),
                observation: format!("seed {}", self.seed),
            }],
            alternatives: vec![],
            recommended_actions,
            confidence: rng.f64(),
            cost: Cost::default(),
        }
    }
}

impl Brain for FuzzedBrain {
    fn name(&self) -> String {
        format!("fuzzed (seed {})", self.seed)
    }

    fn diagnose<'a>(
        &'a self,
        context: &'a DiagnosisContext,
        _tools: &'a dyn ToolBox,
        _sink: &'a dyn ReasoningSink,
    ) -> BoxFuture<'a, ContractResult<Diagnosis>> {
        Box::pin(async move { Ok(self.answer(context)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(id: i64) -> DiagnosisContext {
        let subject = crate::testing::FakeSubject::new(&["node-1", "node-2"]);
        let mut context = crate::testing::node_down_context(&subject);
        context.ticket.id = id;
        context.actions.push(ActionSpec {
            name: "update_limit".into(),
            description: "set a key's limit".into(),
            params: vec![
                ParamSpec {
                    name: "key".into(),
                    description: String::new(),
                    kind: ParamKind::String { max_len: 64 },
                    required: true,
                },
                ParamSpec {
                    name: "limit".into(),
                    description: String::new(),
                    kind: ParamKind::Integer {
                        min: 1,
                        max: 1_000_000_000,
                    },
                    required: true,
                },
            ],
            risk: Risk::Safe,
            ..context.actions[0].clone()
        });
        context
    }

    #[test]
    fn the_same_seed_and_ticket_answer_the_same_and_every_answer_is_well_formed() {
        let brain = FuzzedBrain { seed: 3 };
        assert_eq!(brain.answer(&context(5)), brain.answer(&context(5)));
        let (mut unknown, mut extreme, mut stranger) = (false, false, false);
        for id in 0..400 {
            let context = context(id);
            let d = brain.answer(&context);
            assert!((0.0..=1.0).contains(&d.confidence));
            unknown |= d.is_unknown();
            for a in &d.recommended_actions {
                let spec = context.actions.iter().find(|s| s.name == a.action).unwrap();
                for p in spec.params.iter().filter(|p| p.required) {
                    p.check(&a.params[&p.name], None).unwrap();
                }
                extreme |= a.params.get("limit") == Some(&1_000_000_000.into());
                stranger |= a.params.get("key") == Some(&"someone-elses-key".into());
            }
        }
        assert!(
            unknown && extreme && stranger,
            "{unknown} {extreme} {stranger}"
        );
    }
}
