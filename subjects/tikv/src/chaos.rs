//! TiKV's chaos catalog, each fault with the root cause a correct diagnosis names, and its
//! injection through the target or the simulator.

use operator_protocol::*;
use serde_json::Value;

use crate::invariants;
use crate::subject::*;

/// The faults this subject injects, with the ground truth each stands for; needs no cluster.
pub fn chaos_catalog() -> Vec<ChaosSpec> {
    let store = || ParamSpec {
        required: false,
        ..ParamSpec::new(
            "store",
            "which store (default store-2)",
            ParamKind::String { max_len: 32 },
        )
    };
    vec![
        ChaosSpec {
            name: "kill_store".into(),
            description: "Kill a TiKV store".into(),
            root_cause: "store_crashed".into(),
            expected_invariant: invariants::STORE_DOWN.into(),
            params: vec![store()],
            needs: vec![Disturbance::Kill],
        },
        ChaosSpec {
            name: "slow_store".into(),
            description: "Make a store slow (its slow score rises)".into(),
            root_cause: "store_slow".into(),
            expected_invariant: invariants::SLOW_STORE.into(),
            params: vec![store()],
            needs: vec![Disturbance::Pause],
        },
        ChaosSpec {
            name: "hot_store".into(),
            description: "Skew the workload: leaders pile onto one store (simulator)".into(),
            root_cause: "leader_skew".into(),
            expected_invariant: invariants::LEADER_IMBALANCE.into(),
            params: vec![store()],
            needs: vec![],
        },
        ChaosSpec {
            name: "kill_pd".into(),
            description: "Kill PD members until no majority is left".into(),
            root_cause: "pd_quorum_lost".into(),
            expected_invariant: invariants::PD_NO_LEADER.into(),
            params: vec![],
            needs: vec![Disturbance::Kill],
        },
    ]
}

impl TikvSubject {
    pub(crate) async fn inject_chaos(
        &self,
        request: &ChaosRequest,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<ChaosOutcome> {
        let node = request
            .params
            .get("store")
            .and_then(Value::as_str)
            .unwrap_or("store-2")
            .to_string();
        let outcome = |target: &str, summary: String| {
            Ok(ChaosOutcome {
                target: target.into(),
                summary,
                effective_ms: None,
            })
        };
        match request.name.as_str() {
            "kill_store" => {
                target.kill(&NodeId(node.clone())).await?;
                outcome(&node, format!("killed {node}"))
            }
            "slow_store" => {
                target.pause(&NodeId(node.clone())).await?;
                outcome(&node, format!("{node} is slow"))
            }
            "hot_store" => {
                let sim = self.simulator.as_ref().ok_or_else(|| {
                    ContractError::Refused(
                        "hot_store needs the simulator (or a skewed workload of your own)".into(),
                    )
                })?;
                let id = store_id(&node).ok_or_else(|| {
                    ContractError::Permanent("name the store like store-2".into())
                })?;
                let url = format!("{sim}/sim/store/{id}/hot");
                let answer = self
                    .transport
                    .send(HttpRequest::new("POST", &url))
                    .await
                    .map_err(|e| ContractError::Retryable(format!("the simulator: {e}")))?;
                if !answer.is_success() {
                    return Err(ContractError::from_status(answer.status, answer.body));
                }
                outcome(&node, format!("leaders pile onto {node}"))
            }
            "kill_pd" => {
                for pd in ["pd1", "pd2"] {
                    target.kill(&NodeId::from(pd)).await?;
                }
                outcome("pd", "killed pd1 and pd2: one of three members left".into())
            }
            other => Err(ContractError::NotFound(format!(
                "TiKV has no chaos {other}"
            ))),
        }
    }
}
