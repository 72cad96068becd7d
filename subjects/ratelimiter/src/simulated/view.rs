//! What an observer of the modelled cluster sees, in the shapes the real one answers in: the
//! facts the invariants read, the JSON the read-only tools return, the world the harm oracle
//! samples. The invariants, the runbook and the premises run unchanged on them.

use std::collections::BTreeSet;

use operator_protocol::{Count, Looser, ProcessSeen, ProcessState, Protection, World};
use serde_json::{Value, json};

use super::model::{Exit, Model, NODES, Refusal, STEP_MS};
use crate::cluster::REDIS_NODE;
use crate::facts::{Facts, KeyFacts, NodeFacts, RedisFacts, RedisInfo};

/// How long a node waits for Redis before it decides without it.
const NODE_REDIS_TIMEOUT_MS: f64 = 100.0;

impl Model {
    fn slot_index(node: &str) -> usize {
        NODES.iter().position(|n| *n == node).unwrap_or(0) + 1
    }

    fn node_facts(&self, name: &str) -> NodeFacts {
        let process = &self.processes[name];
        let node = &self.nodes[name];
        let reachable = process.serves();
        let error = (!reachable).then(|| match process.state {
            ProcessState::Exited => "connection refused".to_string(),
            _ => "operation timed out".to_string(),
        });
        let probe = self.refusal(Self::slot_index(name), false);
        let seconds = (node.tallies.len() as f64 * STEP_MS as f64 / 1000.0).max(0.001);
        let sum = |f: fn(&super::model::Tally) -> u64| {
            node.tallies.iter().map(f).sum::<u64>() as f64 / seconds
        };
        let checks: u64 = node.tallies.iter().map(|t| t.checks).sum();
        let timing_out = node.failing == Some(Refusal::Timeout.class());
        let p99 = node
            .tallies
            .iter()
            .filter(|t| t.checks > 0)
            .map(|t| t.latency_ms)
            .fold(None, |worst: Option<f64>, l| {
                Some(worst.map_or(l, |w| w.max(l)))
            })
            .map(|l| {
                if timing_out {
                    l + NODE_REDIS_TIMEOUT_MS
                } else {
                    l
                }
            });
        NodeFacts {
            reachable,
            error,
            healthy: reachable && probe.is_none(),
            redis_reachable: reachable.then_some(probe.is_none()),
            redis_checks_failing: reachable && node.failing.is_some(),
            redis_error_class: node.failing.filter(|_| reachable).map(String::from),
            redis_latency_ms: (reachable && probe.is_none()).then_some(0.3),
            checks_per_sec: sum(|t| t.checks),
            allowed_per_sec: sum(|t| t.allowed),
            denied_per_sec: sum(|t| t.denied),
            fail_open_per_sec: sum(|t| t.fail_open),
            fail_closed_per_sec: 0.0,
            skipped_per_sec: sum(|t| t.skipped),
            redis_failures_per_sec: sum(|t| t.failures),
            health_rtt_ms: reachable.then_some(1.0),
            flags: if reachable {
                process.flags.clone()
            } else {
                Default::default()
            },
            p99_ms: p99.filter(|_| reachable),
            latency_samples: if reachable { checks } else { 0 },
        }
    }

    fn redis_facts(&self) -> RedisFacts {
        let refusal = self.refusal(0, false);
        RedisFacts {
            reachable: refusal.is_none(),
            latency_ms: refusal.is_none().then_some(0.2),
            error: refusal.map(|r| {
                match r {
                    Refusal::Timeout => "timed out",
                    Refusal::Connection => "Connection refused (os error 111)",
                    Refusal::Auth => "NOAUTH: Authentication required.",
                    Refusal::Oom => "OOM command not allowed when used memory > 'maxmemory'.",
                }
                .to_string()
            }),
            epoch: refusal.is_none().then(|| self.redis.epoch.to_string()),
            info: refusal.is_none().then(|| self.redis_info()),
        }
    }

    /// What `INFO` would say: memory as the model counts it, the clients that got a slot.
    fn redis_info(&self) -> RedisInfo {
        let redis = &self.redis;
        let clients = 1 + NODES.len() as u64;
        RedisInfo {
            used_memory: (self.memory_kb() * 1024.0) as u64,
            maxmemory: redis.maxmemory_kb.map_or(0, |kb| kb * 1024),
            maxmemory_policy: redis.evicting.unwrap_or("noeviction").to_string(),
            evicted_keys: redis.evicted_keys,
            expired_keys: redis.expired_keys,
            rejected_connections: 0,
            connected_clients: clients.min(redis.maxclients),
            blocked_clients: 0,
            maxclients: redis.maxclients,
        }
    }

    /// One observation's facts, as the real observer would read them now.
    pub fn facts(&self) -> Facts {
        let nodes: std::collections::BTreeMap<String, NodeFacts> = NODES
            .iter()
            .map(|n| (n.to_string(), self.node_facts(n)))
            .collect();
        let redis = self.redis_facts();
        let all_seen = nodes.values().all(|n| n.reachable);
        let keys: BTreeSet<String> = self
            .flows
            .iter()
            .flat_map(|f| f.keys.iter().map(|(k, _)| k.clone()))
            .collect();
        let mut facts_keys = Vec::new();
        for key in keys {
            let (counter, ends, window_id) = self.counter_of(&key, self.now);
            let slots: Vec<_> = self
                .nodes
                .values()
                .filter_map(|n| n.slots.get(&counter).map(|s| (n.watching_since, *s)))
                .collect();
            if slots.is_empty() {
                continue;
            }
            let (limit, window_ms) = self.limit_of(&key);
            let starts = ends - window_ms;
            let why_not = if !redis.reachable {
                Some("Redis unreadable")
            } else if !all_seen {
                Some("a node's accounting is missing")
            } else if slots.iter().any(|(_, s)| s.epoch != self.redis.epoch) {
                Some("Redis restarted since this window")
            } else if self.nodes.values().any(|n| n.watching_since > starts) {
                Some("a node was not watching the whole window")
            } else {
                None
            };
            let allowed = slots.iter().map(|(_, s)| s.allowed).sum();
            facts_keys.push(KeyFacts {
                key: key.clone(),
                generation: self.redis.generations.get(&key).copied().unwrap_or(0),
                window_id,
                counter_key: counter.clone(),
                limit,
                nodes_allowed: allowed,
                nodes_allowed_after: allowed,
                in_flight_after: 0,
                redis_count: self.redis.counters.get(&counter).map_or(0, |c| c.0),
                uncertain: slots.iter().map(|(_, s)| s.uncertain).sum(),
                comparable: why_not.is_none(),
                why_not: why_not.map(String::from),
            });
        }
        Facts {
            nodes,
            redis,
            keys: facts_keys,
            rate_window_ms: 1000,
        }
    }

    /// What the target says of a process, as the local target does.
    pub fn describe(&self, name: &str) -> Option<Value> {
        let p = self.processes.get(name)?;
        Some(json!({
            "state": p.state,
            "pid": (p.state != ProcessState::Exited).then_some(p.pid),
            "restarts": p.restarts,
            "log": format!("(simulated) {name}.log"),
            "exit_status": p.exit.map(|e| match e {
                Exit::Killed => "signal: 9 (SIGKILL)",
                Exit::Clean => "exit status: 0",
            }),
            // A clean exit, a SIGTERM waiting on a stopped process (as the local target
            // reads it from /proc), or one being drained after SIGTERM (as its log says):
            // someone's stop.
            "stopped_deliberately": (p.exit == Some(Exit::Clean)
                || p.term_pending
                || p.draining_until.is_some())
            .then_some(true),
        }))
    }

    /// The node's /health answer, or how it failed.
    fn health(&self, name: &str) -> Value {
        let facts = self.node_facts(name);
        if !facts.reachable {
            return json!({ "unreachable": facts.error });
        }
        let probe = self.refusal(Self::slot_index(name), false);
        json!({
            "node_id": name,
            "status": if facts.healthy { "ok" } else { "unhealthy" },
            "healthy": facts.healthy,
            "fail_mode": "open",
            "flags": self.processes[name].flags,
            "redis": {
                "reachable": probe.is_none(),
                "last_latency_ms": facts.redis_latency_ms,
                "last_error_class": probe.map(Refusal::class),
                "checks_failing": facts.redis_checks_failing,
                "last_check_error_class": facts.redis_error_class,
            },
        })
    }

    pub fn node_detail(&self, name: &str) -> Option<Value> {
        let process = self.describe(name)?;
        if name == REDIS_NODE {
            return Some(json!({ "node": name, "process": process, "redis": self.redis_facts() }));
        }
        Some(json!({
            "node": name,
            "process": process,
            "health": self.health(name),
            "rates": self.node_facts(name),
        }))
    }

    pub fn redis_key(&self, key: &str) -> Value {
        let facts = self.facts();
        let (limit, window_ms) = self.limit_of(key);
        let (counter, window_ends_at, _) = self.counter_of(key, self.now);
        let accounting = facts.keys.into_iter().find(|k| k.key == key);
        let excess = accounting
            .as_ref()
            .filter(|k| k.comparable)
            .map(|k| k.drift());
        json!({
            "key": key,
            "redis": {
                "limit": limit, "window_ms": window_ms, "counter_key": counter,
                "generation": self.redis.generations.get(key).copied().unwrap_or(0),
                "count": self.redis.counters.get(&counter).map_or(0, |c| c.0),
                "window_ends_in_ms": window_ends_at - self.now,
            },
            "accounting": accounting,
            "excess": excess,
        })
    }

    /// The world as the eval's sampler reads it from outside (it knows Redis's password).
    pub fn world(&self) -> World {
        let mut world = World {
            at_ms: self.now,
            ..World::default()
        };
        let readable = {
            let redis = self.redis_process();
            redis.state == ProcessState::Running && !self.redis_holds()
        };
        let all_answer = NODES.iter().all(|n| self.processes[*n].serves());
        if readable {
            for (counter, (value, expires)) in &self.redis.counters {
                let backed = all_answer.then(|| {
                    self.nodes
                        .values()
                        .filter_map(|n| n.slots.get(counter))
                        .map(|s| s.allowed)
                        .sum()
                });
                world.counts.insert(
                    counter.clone(),
                    Count {
                        value: *value,
                        holder: REDIS_NODE.into(),
                        expires_at_ms: Some(*expires),
                        backed,
                    },
                );
            }
            for (key, (limit, window)) in &self.redis.limits {
                for (name, value, looser) in [
                    ("limit", *limit, Looser::Higher),
                    ("window", *window, Looser::Lower),
                ] {
                    world.protections.insert(
                        format!("{name}:{key}"),
                        Protection {
                            value: value as f64,
                            looser,
                        },
                    );
                }
            }
        } else {
            world.unreadable.push(REDIS_NODE.into());
        }
        let mut serving = 0;
        for (name, p) in &self.processes {
            let serves = p.serves() && self.nodes.get(name).is_none_or(|n| !n.ghost);
            if name != REDIS_NODE && serves {
                serving += 1;
            }
            world.processes.insert(
                name.clone(),
                ProcessSeen {
                    pid: (p.state != ProcessState::Exited).then_some(p.pid),
                    state: p.state.as_str().into(),
                    serving: if name == REDIS_NODE { readable } else { serves },
                },
            );
        }
        world.serving = serving as f64 / NODES.len() as f64;
        world
    }
}
