//! Drills on the simulator for the evaluation's unknown-fault suite: what people do to a TiKV
//! cluster that no chaos action and no runbook entry describes, done from outside the operator
//! with the simulator's own controls.

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::*;

pub struct SimDrills {
    pub(crate) url: String,
    pub(crate) target: Arc<dyn DeploymentTarget>,
    pub(crate) transport: Arc<dyn HttpTransport>,
    pub(crate) time: TimeSource,
    /// Drills that keep acting while they last.
    running: NamedTasks,
}

fn drill(
    name: &str,
    description: &str,
    root_cause: &str,
    detected_by: &[&str],
    acceptable_actions: &[&str],
    evidence_words: &[&str],
    hold_s: u64,
) -> DrillSpec {
    DrillSpec {
        name: name.into(),
        description: description.into(),
        root_cause: root_cause.into(),
        detected_by: Some(detected_by.iter().map(|s| s.to_string()).collect()),
        acceptable_actions: acceptable_actions.iter().map(|s| s.to_string()).collect(),
        evidence_words: evidence_words.iter().map(|s| s.to_string()).collect(),
        hold_s,
    }
}

/// Every drill, with its ground truth.
pub fn specs() -> Vec<DrillSpec> {
    vec![
        drill(
            "store_restarted_by_hand",
            "Someone restarted store-2 by hand (stop, then start 4 s later, as an upgrade script does)",
            "store_restarted_externally",
            &["store_down", "leader_imbalance"],
            &["restart_node", "rebalance_leaders"],
            &["store-2"],
            8,
        ),
        drill(
            "pd_leader_restarted_by_hand",
            "Someone restarted PD's current leader by hand (stop, then start 3 s later)",
            "pd_leader_restarted_externally",
            &["pd_member_down", "pd_no_leader"],
            &["restart_node"],
            &["pd"],
            8,
        ),
        drill(
            "max_replicas_raised",
            "Someone ran `pd-ctl config set max-replicas 5` on a 3-store cluster: PD cannot place the replicas it now wants, and every region runs short",
            "max_replicas_misconfigured",
            &["region_under_replicated", "region_below_quorum"],
            &[],
            &["max_replicas", "max-replicas"],
            12,
        ),
        drill(
            "leaders_evicted_for_maintenance",
            "Someone added an evict-leader-scheduler for store-1 before maintenance: PD moves every leader off it, on purpose",
            "maintenance_in_progress",
            &["leader_imbalance"],
            &[],
            &["store-1"],
            12,
        ),
        drill(
            "store_crash_loop",
            "store-3 crashes 2 s after every start (a bad configuration pushed to it): whoever starts it again, it falls again",
            "store_crash_loop",
            &["store_down", "leader_imbalance", "region_under_replicated"],
            // Starting a crashed store is what anyone would try first; it cannot make it worse.
            &["restart_node"],
            &["store-3"],
            15,
        ),
    ]
}

impl SimDrills {
    /// Over the network, to the simulator at `url`.
    pub fn new(url: &str, target: Arc<dyn DeploymentTarget>) -> Arc<Self> {
        Self::with_transport(
            url,
            target,
            Arc::new(
                ReqwestTransport::new(Duration::from_secs(3))
                    .expect("an HTTP client with a timeout"),
            ),
            TimeSource::default(),
        )
    }

    /// Through `transport` (in-process for a simulation), on `time`'s clock.
    pub fn with_transport(
        url: &str,
        target: Arc<dyn DeploymentTarget>,
        transport: Arc<dyn HttpTransport>,
        time: TimeSource,
    ) -> Arc<Self> {
        Arc::new(Self {
            url: url.trim_end_matches('/').to_string(),
            target,
            transport,
            time,
            running: NamedTasks::default(),
        })
    }

    /// A request to PD's API, as pd-ctl makes it.
    pub(crate) async fn pd(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> ContractResult<()> {
        let url = format!("{}{path}", self.url);
        let answer = self
            .transport
            .send(HttpRequest::new(method, &url).json(body.as_ref()))
            .await
            .map_err(|e| ContractError::Retryable(format!("PD: {e}")))?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(ContractError::Permanent(format!(
                "PD refused {path}: {}",
                answer.body
            )))
        }
    }

    /// A JSON answer from the simulator, or None when it gave none within `timeout`.
    pub(crate) async fn get(&self, path: &str, timeout: Duration) -> Option<serde_json::Value> {
        let url = format!("{}{path}", self.url);
        let answer = self
            .transport
            .send(HttpRequest::get(&url).timeout(timeout))
            .await
            .ok()?;
        if !answer.is_success() {
            return None;
        }
        serde_json::from_str(&answer.body).ok()
    }

    pub(crate) async fn set_max_replicas(&self, replicas: u64) -> ContractResult<()> {
        self.pd(
            "POST",
            "/pd/api/v1/config/replicate",
            Some(serde_json::json!({ "max-replicas": replicas })),
        )
        .await
    }

    async fn pd_leader(&self) -> ContractResult<NodeId> {
        let leader = self
            .get("/pd/api/v1/leader", Duration::from_secs(3))
            .await
            .ok_or_else(|| ContractError::Retryable("PD named no leader".into()))?;
        leader["name"]
            .as_str()
            .map(NodeId::from)
            .ok_or_else(|| ContractError::Permanent(format!("PD named no leader: {leader}")))
    }

    /// Stops `node` now and starts it again after `after`, in the background.
    fn restart_later(&self, name: &str, node: NodeId, after: Duration, every: Option<Duration>) {
        let target = self.target.clone();
        self.running.keep(name, async move {
            loop {
                let _ = target.kill(&node).await;
                tokio::time::sleep(after).await;
                let _ = target.start(&node).await;
                match every {
                    Some(period) => tokio::time::sleep(period).await,
                    None => return,
                }
            }
        });
    }
}

impl Drills for SimDrills {
    fn specs(&self) -> Vec<DrillSpec> {
        specs()
    }

    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            match name {
                "store_restarted_by_hand" => {
                    self.restart_later(name, NodeId::from("store-2"), Duration::from_secs(4), None);
                    Ok(())
                }
                "pd_leader_restarted_by_hand" => {
                    let leader = self.pd_leader().await?;
                    self.restart_later(name, leader, Duration::from_secs(3), None);
                    Ok(())
                }
                "store_crash_loop" => {
                    // Down until someone starts it (4 s at most), up for 2 s, again and again.
                    self.restart_later(
                        name,
                        NodeId::from("store-3"),
                        Duration::from_secs(4),
                        Some(Duration::from_secs(2)),
                    );
                    Ok(())
                }
                "max_replicas_raised" => self.set_max_replicas(5).await,
                "leaders_evicted_for_maintenance" => {
                    self.pd(
                        "POST",
                        "/pd/api/v1/schedulers",
                        Some(
                            serde_json::json!({ "name": "evict-leader-scheduler", "store_id": 1 }),
                        ),
                    )
                    .await
                }
                other => Err(ContractError::NotFound(format!("no drill {other}"))),
            }
        })
    }

    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            self.running.stop(name);
            // Whatever the drill left stopped is started again, as its author would.
            let node = match name {
                "store_restarted_by_hand" => Some(NodeId::from("store-2")),
                "store_crash_loop" => Some(NodeId::from("store-3")),
                _ => None,
            };
            if let Some(node) = node {
                let _ = self.target.start(&node).await;
            }
            match name {
                "max_replicas_raised" => self.set_max_replicas(3).await?,
                "leaders_evicted_for_maintenance" => {
                    // The operator may have removed it meanwhile (it should not have).
                    let _ = self
                        .pd(
                            "DELETE",
                            "/pd/api/v1/schedulers/evict-leader-scheduler-1",
                            None,
                        )
                        .await;
                }
                _ => {}
            }
            if name == "pd_leader_restarted_by_hand" {
                for i in 1..=3 {
                    let _ = self.target.start(&NodeId(format!("pd{i}"))).await;
                }
            }
            Ok(())
        })
    }
}
