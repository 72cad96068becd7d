//! Re-checks an action's premises on live reads right before it runs, and reads what it buys
//! and destroys for the weighing. This is the executor's own judgement, whatever the brain
//! concluded: a remedy whose premise does not hold on the cluster as it is now does not run.

use std::collections::BTreeMap;

use operator_protocol::{ActionSpec, Premise, Span};

use crate::brains::NarratedTools;
use crate::engine::effect::PremiseFailure;
use crate::engine::worth::{self, Lasting, Spans, Weighing};

/// `Ok` when every premise has at least one holding check. Premises often share a tool call
/// (several checks over one node's detail): `reads` makes each distinct call once.
pub async fn check(
    premises: &[Premise],
    params: &BTreeMap<String, serde_json::Value>,
    reads: &NarratedTools<'_>,
) -> Result<(), PremiseFailure> {
    for premise in premises {
        let mut found = Vec::new();
        let mut holds = false;
        for check in &premise.any_of {
            let answer = reads.call(&check.call(params)).await;
            let (ok, shown) = check.judge(&answer);
            found.push(format!(
                "{}: found {shown}, expected {}",
                check.description, check.expect
            ));
            if ok {
                holds = true;
                break;
            }
        }
        if !holds {
            return Err(PremiseFailure {
                premise: premise.description.clone(),
                found,
            });
        }
    }
    Ok(())
}

/// Reads the spans `spec` declares as measured and weighs them. A span that cannot be read,
/// or a catalog that does not say what a destroying action buys, leaves it to a person.
pub async fn weigh_worth(
    spec: &ActionSpec,
    params: &BTreeMap<String, serde_json::Value>,
    reads: &NarratedTools<'_>,
    factor: f64,
) -> Weighing {
    if spec.destroys.is_none() {
        return Weighing::Worth;
    }
    let Some(declared) = &spec.worth else {
        return Weighing::ForAPerson(format!(
            "{} destroys something and its catalog does not say what it buys",
            spec.name
        ));
    };
    let (trouble, loss) = match (
        read_span(&declared.trouble_lasts, params, reads).await,
        read_span(&declared.loss_lasts, params, reads).await,
    ) {
        (Ok(trouble), Ok(loss)) => (trouble, loss),
        (Err(why), _) | (_, Err(why)) => {
            return Weighing::ForAPerson(format!(
                "what {} buys against what it destroys could not be read: {why}",
                spec.name
            ));
        }
    };
    let trouble_ends = declared.trouble_lasts.ends(params);
    worth::weigh(
        spec,
        &Spans {
            trouble,
            loss,
            trouble_ends: trouble_ends.as_deref(),
        },
        factor,
    )
}

async fn read_span(
    span: &Span,
    params: &BTreeMap<String, serde_json::Value>,
    reads: &NarratedTools<'_>,
) -> Result<Lasting, String> {
    if let Some(lasting) = Lasting::declared(span) {
        return Ok(lasting);
    }
    let call = span.call(params).expect("a measured span has a call");
    let answer = reads
        .call(&call)
        .await
        .map_err(|e| format!("{} failed: {e}", call.tool))?;
    span.read(&answer).map(Lasting::For)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use operator_protocol::{
        BoxFuture, ContractError, ContractResult, Expectation, Probe, ToolBox, ToolCall, ToolSpec,
    };
    use serde_json::{Value, json};

    use super::*;

    /// Answers node_detail with a fixed body and counts the calls it was asked.
    struct FixedTools {
        detail: ContractResult<Value>,
        calls: Mutex<usize>,
    }

    impl ToolBox for FixedTools {
        fn specs(&self) -> Vec<ToolSpec> {
            Vec::new()
        }

        fn call<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, ContractResult<Value>> {
            *self.calls.lock().unwrap() += 1;
            let answer = if call.tool == "node_detail" && call.args["node"] == "n2" {
                self.detail.clone()
            } else {
                Err(ContractError::NotFound(format!("no tool {}", call.tool)))
            };
            Box::pin(async move { answer })
        }
    }

    fn not_serving() -> Premise {
        Premise {
            description: "the node is not serving".into(),
            any_of: vec![
                Probe::new(
                    "the process has exited",
                    "node_detail",
                    json!({ "node": "{param.node}" }),
                    "/process/state",
                    Expectation::Equals {
                        value: json!("exited"),
                    },
                ),
                Probe::new(
                    "the node does not answer",
                    "node_detail",
                    json!({ "node": "{param.node}" }),
                    "/health/unreachable",
                    Expectation::Present,
                ),
            ],
        }
    }

    fn params() -> BTreeMap<String, Value> {
        BTreeMap::from([("node".to_string(), json!("n2"))])
    }

    #[tokio::test]
    async fn a_premise_holds_when_any_check_holds_and_each_call_is_made_once() {
        let tools = FixedTools {
            detail: Ok(
                json!({ "process": { "state": "running" }, "health": { "unreachable": "timeout" } }),
            ),
            calls: Mutex::new(0),
        };
        assert_eq!(
            check(
                &[not_serving()],
                &params(),
                &NarratedTools::new(&tools, None)
            )
            .await,
            Ok(())
        );
        assert_eq!(*tools.calls.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_failed_premise_says_what_every_check_found() {
        let tools = FixedTools {
            detail: Ok(json!({ "process": { "state": "running" }, "health": { "ok": true } })),
            calls: Mutex::new(0),
        };
        let failure = check(
            &[not_serving()],
            &params(),
            &NarratedTools::new(&tools, None),
        )
        .await
        .unwrap_err();
        assert_eq!(failure.premise, "the node is not serving");
        assert_eq!(
            failure.found,
            vec![
                "the process has exited: found \"running\", expected = \"exited\"".to_string(),
                "the node does not answer: found nothing, expected present".to_string(),
            ]
        );
        assert!(
            failure
                .to_string()
                .starts_with("the node is not serving does not hold")
        );
    }

    #[tokio::test]
    async fn a_premise_that_cannot_be_read_does_not_hold() {
        let tools = FixedTools {
            detail: Err(ContractError::Retryable("connection refused".into())),
            calls: Mutex::new(0),
        };
        let failure = check(
            &[not_serving()],
            &params(),
            &NarratedTools::new(&tools, None),
        )
        .await
        .unwrap_err();
        assert!(failure.found[0].contains("connection refused"), "{failure}");
    }
}
