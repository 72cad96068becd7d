//! What the generated eval can do to a simulated TiKV cluster with the simulator's and PD's own
//! controls (a hot store, max-replicas changed, a person's evict-leader scheduler), and the
//! world as the simulator holds it (processes as they run, schedulers, the replica setting)
//! for the harm oracle. Kills, slow cycles and people's restarts of stores and PD
//! members are the eval's own, through the simulator's target.

use std::time::Duration;

use operator_protocol::*;
use serde_json::json;

use crate::drills::SimDrills;
use crate::model::Cluster;

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
        needs: vec![],
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
            "disk_slow",
            Family::Dependency,
            "{target}'s disk slows (a restart does not help: the disk stays slow)",
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
            "disk_slow" => {
                let id = store_id(d.target.as_deref())?;
                self.pd("POST", &format!("/sim/store/{id}/disk-slow"), None)
                    .await
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
            "disk_slow" => {
                let id = store_id(d.target.as_deref())?;
                self.pd("POST", &format!("/sim/store/{id}/disk-fast"), None)
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

    /// The world as the simulator holds it (`GET /sim/world`): one request, the model's own
    /// truth, so the oracle never reads a symptom (a lagging state name, a status server that
    /// still answers for a store whose disk is stuck) as what happened.
    async fn sample_world(&self) -> World {
        let at_ms = self.time.now_ms();
        let world = self
            .get("/sim/world", PROBE)
            .await
            .and_then(|w| serde_json::from_value::<World>(w).ok());
        World {
            at_ms,
            ..world.unwrap_or_default()
        }
    }
}

/// What an outside observer with the run of the machines would see: every process as it runs
/// (a store whose disk stalls runs and answers, but serves badly: it is not serving), the
/// schedulers and settings that protect the cluster, and how much of it serves.
pub(crate) fn world_of(c: &Cluster) -> World {
    let mut world = World {
        at_ms: c.now_ms,
        ..World::default()
    };
    let seen = |running: bool, paused: bool, serving: bool, started_ms: Option<u64>| ProcessSeen {
        // A simulated process has no pid: its start time (truncated) tells one incarnation
        // from the next.
        pid: started_ms.map(|ms| ms as u32),
        state: match (running, paused) {
            (true, true) => "stopped",
            (true, false) => "running",
            (false, _) => "exited",
        }
        .into(),
        serving: running && !paused && serving,
    };
    for s in c.stores.values() {
        let node = format!("store-{}", s.id);
        world.processes.insert(
            node.clone(),
            seen(s.alive, c.is_paused(&node), !s.stalls(), Some(s.start_ms)),
        );
    }
    let serving = world.processes.values().filter(|p| p.serving).count();
    world.serving = if c.stores.is_empty() {
        0.0
    } else {
        serving as f64 / c.stores.len() as f64
    };
    for m in &c.pd {
        world
            .processes
            .insert(m.name.clone(), seen(m.alive, m.paused, true, None));
    }
    let scheduler = |value: f64| Protection {
        value,
        looser: Looser::Lower,
    };
    for name in &c.schedulers {
        world
            .protections
            .insert(format!("scheduler:{name}"), scheduler(1.0));
    }
    for id in &c.evict_leader {
        world.protections.insert(
            format!("scheduler:evict-leader-scheduler-{id}"),
            scheduler(1.0),
        );
    }
    world.protections.insert(
        "config:max-replicas".into(),
        scheduler(c.config.max_replicas as f64),
    );
    world
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
