//! Playing schedules from outside the operator: the eval's own hands (signals and people's
//! restarts through the target, catalog faults through the subject behind the engine's back),
//! the subject's disturbances, and a sampler that reads the world every 250 ms. Everything the
//! harness did is logged for the oracle as it happens; several schedules may play at once (the
//! soak), each under its own key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operator_protocol::{
    ChaosRequest, DeploymentTarget, Disturber, Family, Loses, NodeId, Subject, World,
};
use tokio::time::Instant;

use super::super::oracle::{Disturbed, FaultApplied, History, Named, PersonChange};
use super::super::schedule::{self, Schedule, Step};
use crate::clock::Clock;

/// How often the sampler reads the world.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

pub struct Player {
    pub target: Arc<dyn DeploymentTarget>,
    pub subject: Arc<dyn Subject>,
    pub disturber: Arc<dyn Disturber>,
    /// The time the log is kept in: the engine's, so the oracle compares like with like.
    clock: Arc<dyn Clock>,
    /// STOP/CONT cycles running, by (schedule key, step).
    cycles: Mutex<BTreeMap<(u64, usize), tokio::task::JoinHandle<()>>>,
    /// What the harness did (people's changes, disturbances) and could not do.
    log: Mutex<(History, Vec<String>)>,
}

/// Whether a step loses what its target held by itself: a process that exits takes its
/// memory with it, whoever restarts it afterwards.
fn loses_state(step: &Step) -> bool {
    step.loses == Loses::State
        || matches!(
            (step.family, step.disturbance.name.as_str()),
            (Family::Process, "kill" | "terminate") | (Family::Person, "person_restart")
        )
}

impl Player {
    pub fn new(
        target: Arc<dyn DeploymentTarget>,
        subject: Arc<dyn Subject>,
        disturber: Arc<dyn Disturber>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            target,
            subject,
            disturber,
            clock,
            cycles: Mutex::default(),
            log: Mutex::default(),
        })
    }

    fn logged<R>(&self, f: impl FnOnce(&mut (History, Vec<String>)) -> R) -> R {
        f(&mut self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What the harness did so far (the samples are the sampler's), and what failed.
    pub fn take_log(&self) -> (History, Vec<String>) {
        self.logged(std::mem::take)
    }

    async fn apply(&self, key: (u64, usize), step: &Step) -> Result<(), String> {
        let d = &step.disturbance;
        let node = NodeId::from(d.target.as_deref().unwrap_or_default());
        let result = match (step.family, d.name.as_str()) {
            (Family::Process, "stop_cont_cycle") => {
                let period = d.int("period_ms", 400).max(20) as u64;
                let stopped = period * d.int("duty", 50).clamp(1, 99) as u64 / 100;
                let target = self.target.clone();
                let task = tokio::spawn(async move {
                    loop {
                        let _ = target.pause(&node).await;
                        tokio::time::sleep(Duration::from_millis(stopped)).await;
                        let _ = target.resume(&node).await;
                        tokio::time::sleep(Duration::from_millis(period - stopped)).await;
                    }
                });
                self.cycles
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, task);
                Ok(())
            }
            (Family::Process, "stop_once") => self.target.pause(&node).await,
            (Family::Process, "kill") => self.target.kill(&node).await,
            (Family::Process, "terminate") | (Family::Person, "person_restart") => {
                self.target.stop(&node).await
            }
            (Family::Catalog, name) => {
                let mut params = d.params.clone();
                let nodes: Vec<String> = self.target.nodes().into_iter().map(|n| n.0).collect();
                let chaos = self.subject.chaos();
                let node_param = chaos
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| schedule::node_param(c, &nodes));
                if let (Some(p), Some(target)) = (node_param, &d.target) {
                    params.insert(p.name.clone(), target.clone().into());
                }
                let request = ChaosRequest {
                    name: name.to_string(),
                    params,
                };
                self.subject
                    .inject(&request, self.target.as_ref())
                    .await
                    .map(|_| ())
            }
            _ => self.disturber.apply(d).await,
        };
        result.map_err(|e| format!("{}: {e}", step.description))
    }

    async fn undo(&self, key: (u64, usize), step: &Step) -> Result<(), String> {
        let d = &step.disturbance;
        let node = NodeId::from(d.target.as_deref().unwrap_or_default());
        let result = match (step.family, d.name.as_str()) {
            (Family::Process, "stop_cont_cycle") => {
                let cycle = self
                    .cycles
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                if let Some(task) = cycle {
                    task.abort();
                }
                self.target.resume(&node).await
            }
            (Family::Process, "stop_once") => self.target.resume(&node).await,
            (Family::Person, "person_restart") => self.target.start(&node).await,
            (Family::Process | Family::Catalog, _) => Ok(()),
            _ => self.disturber.undo(d).await,
        };
        // A process that is gone cannot be resumed: nothing is left to undo.
        result
            .or_else(|e| if e.is_retryable() { Ok(()) } else { Err(e) })
            .map_err(|e| format!("undoing {}: {e}", step.description))
    }

    /// Plays `drawn`'s steps at their moments from now, logging each as it happens; returns
    /// when its last step has been undone (a moment that lasts by itself may still run).
    pub async fn play(&self, key: u64, drawn: &Schedule) {
        let start = Instant::now();
        let mut moments: Vec<(u64, usize, bool)> = Vec::new();
        for (i, step) in drawn.steps.iter().enumerate() {
            moments.push((step.at_ms, i, true));
            if let Some(hold) = step.hold_ms {
                moments.push((step.at_ms + hold, i, false));
            }
        }
        moments.sort();
        let mut began: BTreeMap<usize, u64> = BTreeMap::new();
        for (at, i, apply) in moments {
            tokio::time::sleep_until(start + Duration::from_millis(at)).await;
            let step = &drawn.steps[i];
            let now = self.clock.now_ms();
            let object = step.disturbance.target.clone().unwrap_or_default();
            let result = if apply {
                began.insert(i, now);
                self.apply((key, i), step).await
            } else {
                self.undo((key, i), step).await
            };
            let done = self.clock.now_ms();
            let done_it = result.is_ok();
            self.logged(|(history, errors)| {
                errors.extend(result.err());
                // What a person tried and the cluster refused (a start while their node
                // already ran again) changed nothing of theirs.
                if step.deliberate && done_it {
                    history.people.push(PersonChange {
                        at_ms: if apply { now } else { done },
                        object,
                        what: if apply {
                            step.description.clone()
                        } else {
                            format!("finished by hand: {}", step.description)
                        },
                    });
                }
                if apply && done_it && step.family == Family::Catalog {
                    history.faults.push(FaultApplied {
                        at_ms: now,
                        name: step.disturbance.name.clone(),
                        target: step.disturbance.target.clone(),
                    });
                }
                // A held step is logged once undone; a moment when it happens.
                if !apply || step.hold_ms.is_none() {
                    history.disturbed.push(Disturbed {
                        from_ms: began.get(&i).copied().unwrap_or(now),
                        to_ms: if apply { now + step.lasts_ms } else { done },
                        target: step.disturbance.target.clone(),
                        loses_state: loses_state(step),
                        deliberate: step.deliberate,
                    });
                }
            });
        }
    }

    /// Lets go of anything still held (none should be) before the cluster stops.
    pub async fn let_go(&self, drawn: &Schedule) {
        for step in &drawn.steps {
            let _ = self.disturber.undo(&step.disturbance).await;
        }
        let cycles = std::mem::take(&mut *self.cycles.lock().unwrap_or_else(|p| p.into_inner()));
        for task in cycles.values() {
            task.abort();
        }
    }
}

/// Reads the world every 250 ms until stopped.
pub struct Sampler {
    samples: Arc<Mutex<Vec<World>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(disturber: Arc<dyn Disturber>) -> Self {
        let samples: Arc<Mutex<Vec<World>>> = Arc::default();
        let task = {
            let samples = samples.clone();
            tokio::spawn(async move {
                loop {
                    let world = disturber.world().await;
                    samples
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(world);
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
            })
        };
        Self { samples, task }
    }

    pub fn stop(self) -> Vec<World> {
        self.task.abort();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Reads the operator's open tickets every 250 ms, as any observer of its database could: what
/// each incident named (targets, and every string in the evidence, which changes as a problem
/// moves: the hottest store of one moment is not the next's), and from when to when.
/// (incident, object) → (first seen, last seen).
type SeenNamed = BTreeMap<(i64, String), (u64, u64)>;

pub struct TicketWatcher {
    named: Arc<Mutex<SeenNamed>>,
    task: tokio::task::JoinHandle<()>,
}

impl TicketWatcher {
    /// `on_this_thread`: read on the runtime's own thread (a simulation, whose replay must not
    /// depend on when another thread answers) rather than a blocking one.
    pub fn start(db: std::path::PathBuf, clock: Arc<dyn Clock>, on_this_thread: bool) -> Self {
        let named: Arc<Mutex<SeenNamed>> = Arc::default();
        let task = {
            let named = named.clone();
            tokio::spawn(async move {
                // Opened once, then handed to each read and back.
                let mut store: Option<crate::store::Store> = None;
                loop {
                    let db = db.clone();
                    let opened = store.take();
                    let read = move || {
                        let store = match opened {
                            Some(store) => store,
                            None => crate::store::Store::open(&db)?,
                        };
                        let tickets = store.active_tickets()?;
                        Ok::<_, color_eyre::eyre::Report>((store, tickets))
                    };
                    let seen = if on_this_thread {
                        Ok(read())
                    } else {
                        tokio::task::spawn_blocking(read).await
                    };
                    let now = clock.now_ms();
                    if let Ok(Ok((opened, tickets))) = seen {
                        store = Some(opened);
                        let mut named = named.lock().unwrap_or_else(|p| p.into_inner());
                        for t in tickets {
                            let mut names = vec![t.target.clone()];
                            super::strings_in(&t.evidence, &mut names);
                            for object in names {
                                let span = named
                                    .entry((t.incident.0, object))
                                    .or_insert((t.timeline.opened_ms.min(now), now));
                                span.1 = now;
                            }
                        }
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
            })
        };
        Self { named, task }
    }

    /// Every object seen named, each with its incident's span: an incident names what any of
    /// its tickets named, for as long as it was seen open.
    pub fn stop(self) -> Vec<Named> {
        self.task.abort();
        let seen = std::mem::take(&mut *self.named.lock().unwrap_or_else(|p| p.into_inner()));
        let mut spans: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for ((incident, _), (from, to)) in &seen {
            let span = spans.entry(*incident).or_insert((*from, *to));
            span.0 = span.0.min(*from);
            span.1 = span.1.max(*to);
        }
        seen.into_keys()
            .map(|(incident, object)| Named {
                object,
                from_ms: spans[&incident].0,
                to_ms: spans[&incident].1,
            })
            .collect()
    }
}
