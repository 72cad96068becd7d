//! What the generated eval can do to a simulated TiKV cluster with the simulator's and PD's own
//! controls (a hot store, max-replicas changed, a person's evict-leader scheduler), and the
//! world as an outside observer reads it from PD (stores and members, schedulers, the replica
//! setting) for the harm oracle. Kills, slow cycles and people's restarts of stores and PD
//! members are the eval's own, through the simulator's target.

use std::time::Duration;

use operator_protocol::*;
use serde_json::{Value, json};

use crate::drills::SimDrills;

const PROBE: Duration = Duration::from_millis(500);

fn spec(
    name: &str,
    family: Family,
    description: &str,
    targets: Vec<String>,
    params: Vec<DrawnRange>,
    deliberate: bool,
) -> DisturbanceSpec {
    DisturbanceSpec {
        name: name.into(),
        family,
        description: description.into(),
        targets,
        params,
        held: true,
        loses: Loses::Nothing,
        deliberate,
        lasts_ms_param: None,
    }
}

/// Everything the simulator adds to the eval's own signals and people, for these stores.
pub fn specs(stores: &[String]) -> Vec<DisturbanceSpec> {
    vec![
        spec(
            "store_hot",
            Family::Traffic,
            "most reads go to {target}'s regions (a hot spot)",
            stores.to_vec(),
            vec![],
            false,
        ),
        spec(
            "max_replicas",
            Family::Person,
            "a person runs `pd-ctl config set max-replicas {replicas}`",
            vec![],
            vec![DrawnRange::new("replicas", 1, 5)],
            true,
        ),
        spec(
            "evict_leaders",
            Family::Person,
            "a person adds an evict-leader-scheduler for {target} before maintenance",
            stores.to_vec(),
            vec![],
            true,
        ),
    ]
}

fn store_id(target: Option<&str>) -> ContractResult<u64> {
    target
        .and_then(|t| t.strip_prefix("store-"))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ContractError::Permanent(format!("{target:?} is not a store")))
}

impl SimDrills {
    async fn disturb(&self, d: &DrawnDisturbance) -> ContractResult<()> {
        match d.name.as_str() {
            "store_hot" => {
                let id = store_id(d.target.as_deref())?;
                self.pd("POST", &format!("/sim/store/{id}/hot"), None).await
            }
            "max_replicas" => {
                self.set_max_replicas(d.int("replicas", 3).max(1) as u64)
                    .await
            }
            "evict_leaders" => {
                let id = store_id(d.target.as_deref())?;
                self.pd(
                    "POST",
                    "/pd/api/v1/schedulers",
                    Some(json!({ "name": "evict-leader-scheduler", "store_id": id })),
                )
                .await
            }
            other => Err(ContractError::NotFound(format!("no disturbance {other}"))),
        }
    }

    async fn undisturb(&self, d: &DrawnDisturbance) -> ContractResult<()> {
        match d.name.as_str() {
            "store_hot" => {
                let id = store_id(d.target.as_deref())?;
                self.pd("POST", &format!("/sim/store/{id}/cool"), None)
                    .await
            }
            "max_replicas" => self.set_max_replicas(3).await,
            "evict_leaders" => {
                let id = store_id(d.target.as_deref())?;
                // The operator may have removed it meanwhile (it should not have).
                let _ = self
                    .pd(
                        "DELETE",
                        &format!("/pd/api/v1/schedulers/evict-leader-scheduler-{id}"),
                        None,
                    )
                    .await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn sample_world(&self) -> World {
        let mut world = World {
            at_ms: self.time.now_ms(),
            ..World::default()
        };
        let stores = self.get("/pd/api/v1/stores", PROBE).await;
        let mut up = 0usize;
        let mut total = 0usize;
        for s in stores
            .as_ref()
            .and_then(|s| s["stores"].as_array())
            .into_iter()
            .flatten()
        {
            let Some(id) = s["store"]["id"].as_u64() else {
                continue;
            };
            total += 1;
            // The store's own status server says whether it runs now; PD's state name lags
            // by the heartbeats it waits for.
            let serving = match s["store"]["status_address"].as_str() {
                Some(address) => {
                    let url = format!("http://{address}/metrics");
                    self.transport
                        .send(HttpRequest::get(&url).timeout(PROBE))
                        .await
                        .is_ok_and(|a| a.is_success())
                }
                None => s["store"]["state_name"] == "Up",
            };
            up += usize::from(serving);
            world.processes.insert(
                format!("store-{id}"),
                ProcessSeen {
                    // A simulated store has no pid: its start time tells one incarnation
                    // from the next.
                    pid: s["store"]["start_timestamp"].as_u64().map(|t| t as u32),
                    state: if serving { "running" } else { "exited" }.into(),
                    serving,
                },
            );
        }
        world.serving = if total == 0 {
            0.0
        } else {
            up as f64 / total as f64
        };
        for m in self
            .get("/pd/api/v1/health", PROBE)
            .await
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = m["name"].as_str() else {
                continue;
            };
            let healthy = m["health"].as_bool().unwrap_or(false);
            world.processes.insert(
                name.to_string(),
                ProcessSeen {
                    pid: None,
                    state: if healthy { "running" } else { "exited" }.into(),
                    serving: healthy,
                },
            );
        }
        let schedulers = self.get("/pd/api/v1/schedulers", PROBE).await;
        for name in schedulers
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|n| *n != "evict-leader-scheduler")
        {
            world.protections.insert(
                format!("scheduler:{name}"),
                Protection {
                    value: 1.0,
                    looser: Looser::Lower,
                },
            );
        }
        if let Some(ranges) = self
            .get(
                "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
                PROBE,
            )
            .await
        {
            for id in ranges["store-id-ranges"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
            {
                world.protections.insert(
                    format!("scheduler:evict-leader-scheduler-{id}"),
                    Protection {
                        value: 1.0,
                        looser: Looser::Lower,
                    },
                );
            }
        }
        if let Some(replicas) = self
            .get("/pd/api/v1/config/replicate", PROBE)
            .await
            .and_then(|r| r["max-replicas"].as_f64())
        {
            world.protections.insert(
                "config:max-replicas".into(),
                Protection {
                    value: replicas,
                    looser: Looser::Lower,
                },
            );
        }
        world
    }
}

impl Disturber for SimDrills {
    fn disturbances(&self) -> Vec<DisturbanceSpec> {
        let stores: Vec<String> = self
            .target
            .nodes()
            .into_iter()
            .map(|n| n.0)
            .filter(|n| n.starts_with("store-"))
            .collect();
        specs(&stores)
    }

    fn apply<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.disturb(disturbance))
    }

    fn undo<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.undisturb(disturbance))
    }

    fn world(&self) -> BoxFuture<'_, World> {
        Box::pin(self.sample_world())
    }
}
