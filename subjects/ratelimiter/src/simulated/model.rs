//! The rate limiter as a model: three nodes deciding checks through one Redis, in steps of
//! simulated time. It keeps what an observer of the real cluster can see (each node's
//! decisions and per-window accounting, Redis's counters and limits, the processes) and what
//! the faults do to it, and nothing else: no sockets, no wall clock.
//!
//! What it models, and why each matters to the oracle:
//! - a check is decided by Redis's script (count + 1 ≤ limit) when the node reaches Redis;
//!   otherwise the node fails open and counts the unit as uncertain;
//! - Redis stopped, paused or busy holds the writes sent meanwhile and applies them when it
//!   serves again (the drift a long pause leaves behind);
//! - a full Redis refuses writes (noeviction) or evicts counters (an evicting policy);
//! - a process that exits loses what it held in memory (Redis its counters, a node its
//!   accounting); one started again watches windows from then on.

use std::collections::{BTreeMap, VecDeque};

use operator_protocol::ProcessState;

use crate::chaos::DEFAULT_KEY;
use crate::cluster::REDIS_NODE;
use crate::workload::HOT_KEY_LIMIT;

/// One step of simulated time: traffic is decided in batches this long.
pub const STEP_MS: u64 = 50;
/// The rates a node reports are over this many steps (1 s).
const RATE_STEPS: usize = 20;
/// The demo cluster's defaults: 1000 checks per 5 s window, the hot key 200.
pub const DEFAULT_LIMIT: u64 = 1000;
pub const WINDOW_MS: u64 = 5000;
/// The steady workload: 8 demo keys, 30 % of it on the hot key.
const WORKLOAD_RATE: f64 = 200.0;
const DEMO_KEYS: usize = 8;
/// Memory Redis uses with nothing stored, and per counter, in KiB.
const BASE_MEMORY_KB: f64 = 900.0;
const COUNTER_KB: f64 = 0.1;
/// Keys a "many keys" flow spreads over, at most: the accounting is per key, and more keys
/// would only make the simulation slower, not different.
const MAX_MODELLED_KEYS: usize = 50;
pub const ABUSER_KEY: &str = "abuser-generated";
const ABUSER_LIMIT: u64 = 50;

pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
/// Redis's own default.
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;
/// How long a node takes from SIGTERM to its clean exit.
const DRAIN_MS: u64 = 700;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Killed by a signal (SIGKILL): a crash.
    Killed,
    /// Exit 0 after SIGTERM: someone stopped it on purpose.
    Clean,
}

#[derive(Debug, Clone)]
pub struct Process {
    pub state: ProcessState,
    pub pid: u32,
    pub restarts: u32,
    pub exit: Option<Exit>,
    /// Cut off from the network: it runs, and nobody reaches it nor it anybody.
    pub isolated: bool,
    /// Told to stop (SIGTERM) and shutting down: it still runs, answers nothing, and exits
    /// cleanly at this moment.
    pub draining_until: Option<u64>,
    /// A SIGTERM sent while it was stopped, handled once it runs again.
    pub term_pending: bool,
    pub log: Vec<String>,
    /// The flags it was started with, by name, as a node reports them in /health; a person
    /// may start it with others (`start_with`), and it keeps them across restarts.
    pub flags: BTreeMap<String, String>,
}

impl Process {
    fn running(pid: u32) -> Self {
        Self {
            state: ProcessState::Running,
            pid,
            restarts: 0,
            exit: None,
            isolated: false,
            draining_until: None,
            term_pending: false,
            log: vec!["listening".into()],
            flags: BTreeMap::new(),
        }
    }

    pub fn serves(&self) -> bool {
        self.state == ProcessState::Running && !self.isolated && self.draining_until.is_none()
    }
}

/// What one node allowed and could not be sure of, for one window's counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slot {
    pub allowed: u64,
    pub uncertain: u64,
    /// The Redis epoch the window was counted in.
    pub epoch: u64,
    pub ends_ms: u64,
    pub window_ms: u64,
}

/// One step's decisions on a node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub checks: u64,
    pub allowed: u64,
    pub denied: u64,
    pub fail_open: u64,
    pub skipped: u64,
    pub failures: u64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Added to every check (the latency fault).
    pub latency_ms: u64,
    /// Answers allowed without asking Redis (the ghost fault).
    pub ghost: bool,
    pub slots: BTreeMap<String, Slot>,
    /// Since when its accounting is whole (it started then).
    pub watching_since: u64,
    pub tallies: VecDeque<Tally>,
    /// Why its last check got no decision from Redis.
    pub failing: Option<&'static str>,
}

/// A stream of checks from outside.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub rate: f64,
    /// Keys it spreads over, by share of its rate.
    pub keys: Vec<(String, f64)>,
    /// Each key's fraction of a check not sent yet.
    carry: Vec<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct Redis {
    /// Counter key → (value, expires at).
    pub counters: BTreeMap<String, (u64, u64)>,
    /// Key → (limit, window ms), as the admin API stores them.
    pub limits: BTreeMap<String, (u64, u64)>,
    /// Key → generation (a reset starts a new one).
    pub generations: BTreeMap<String, u64>,
    pub epoch: u64,
    pub paused_until: u64,
    pub busy_until: u64,
    /// Writes sent while Redis could not serve: (counter, units, window end, limit).
    pub queued: Vec<(String, u64, u64, u64)>,
    pub maxmemory_kb: Option<u64>,
    pub evicting: Option<&'static str>,
    pub maxclients: u64,
    pub password: bool,
    /// Keys dropped to make room, and keys expired, since Redis started (INFO stats).
    pub evicted_keys: u64,
    pub expired_keys: u64,
}

pub struct Model {
    pub now: u64,
    pub processes: BTreeMap<String, Process>,
    pub nodes: BTreeMap<String, Node>,
    pub redis: Redis,
    pub flows: Vec<Flow>,
    next_pid: u32,
    next_node: usize,
}

/// Why a node's call to Redis got no decision now, if it got none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No answer in time; the write may land later.
    Timeout,
    Connection,
    Auth,
    Oom,
}

impl Refusal {
    pub fn class(self) -> &'static str {
        match self {
            Refusal::Timeout => "timeout",
            Refusal::Connection => "connection",
            Refusal::Auth => "auth",
            Refusal::Oom => "oom",
        }
    }
}

impl Model {
    pub fn new(now: u64) -> Self {
        let mut model = Self {
            now,
            processes: BTreeMap::new(),
            nodes: BTreeMap::new(),
            redis: Redis {
                maxclients: DEFAULT_MAXCLIENTS,
                ..Redis::default()
            },
            flows: Vec::new(),
            next_pid: 4000,
            next_node: 0,
        };
        for name in NODES.iter().copied().chain([REDIS_NODE]) {
            let pid = model.pid();
            model.processes.insert(name.into(), Process::running(pid));
        }
        // What a node started by `cluster up` reports. The model reports a person's other
        // flags as a node would, but decides as before: what they change is not modelled.
        for name in NODES {
            if let Some(p) = model.processes.get_mut(name) {
                p.flags = BTreeMap::from(
                    [
                        ("default-limit", DEFAULT_LIMIT.to_string()),
                        ("default-window-ms", WINDOW_MS.to_string()),
                        ("redis-timeout-ms", "25".to_string()),
                        ("fail-mode", "open".to_string()),
                    ]
                    .map(|(k, v)| (k.to_string(), v)),
                );
            }
        }
        for name in NODES {
            model.nodes.insert(
                name.into(),
                Node {
                    watching_since: now,
                    ..Node::default()
                },
            );
        }
        model
            .redis
            .limits
            .insert(DEFAULT_KEY.into(), (HOT_KEY_LIMIT, WINDOW_MS));
        model.set_quiet(false);
        model
    }

    /// Stops the steady workload (its clients went quiet), or starts it again.
    pub fn set_quiet(&mut self, quiet: bool) {
        if quiet {
            self.remove_flow("workload");
            return;
        }
        let cold = (1.0 - 0.3) / DEMO_KEYS as f64;
        let mut keys: Vec<(String, f64)> = (0..DEMO_KEYS)
            .map(|i| (format!("demo-{i}"), cold))
            .collect();
        keys.push((DEFAULT_KEY.into(), 0.3));
        if !self.flows.iter().any(|f| f.name == "workload") {
            self.add_flow("workload", WORKLOAD_RATE, keys);
        }
    }

    fn pid(&mut self) -> u32 {
        self.next_pid += 1;
        self.next_pid
    }

    pub fn add_flow(&mut self, name: &str, rate: f64, keys: Vec<(String, f64)>) {
        self.flows.retain(|f| f.name != name);
        self.flows.push(Flow {
            name: name.into(),
            rate,
            carry: vec![0.0; keys.len()],
            keys,
        });
    }

    pub fn remove_flow(&mut self, name: &str) {
        self.flows.retain(|f| f.name != name);
    }

    /// A flow of `rate` checks a second spread evenly over `keys` keys named `prefix{i}`.
    pub fn spread_flow(&mut self, name: &str, rate: f64, prefix: &str, keys: usize) {
        let modelled = keys.clamp(1, MAX_MODELLED_KEYS);
        let share = 1.0 / modelled as f64;
        let keys = (0..modelled)
            .map(|i| (format!("{prefix}{i}"), share))
            .collect();
        self.add_flow(name, rate, keys);
    }

    pub fn over_limit_flow(&mut self, rate: f64) {
        self.redis
            .limits
            .insert(ABUSER_KEY.into(), (ABUSER_LIMIT, 1000));
        self.add_flow("traffic_over_limit", rate, vec![(ABUSER_KEY.into(), 1.0)]);
    }

    /// Runs the cluster forward to `now`, one step at a time.
    pub fn advance(&mut self, now: u64) {
        while self.now + STEP_MS <= now {
            self.now += STEP_MS;
            self.step();
        }
    }

    pub fn redis_process(&self) -> &Process {
        &self.processes[REDIS_NODE]
    }

    /// Redis holds its clients' commands (stopped, paused or busy) rather than answering.
    pub fn redis_holds(&self) -> bool {
        let redis = self.redis_process();
        redis.state == ProcessState::Stopped
            || self.redis.paused_until > self.now
            || self.redis.busy_until > self.now
    }

    /// Why a client in connection slot `slot` (the operator holds 0, node-i holds i) gets no
    /// answer from Redis now, if it gets none; `write` for a check's script.
    pub fn refusal(&self, slot: usize, write: bool) -> Option<Refusal> {
        let redis = self.redis_process();
        if redis.state == ProcessState::Exited || redis.isolated {
            return Some(Refusal::Connection);
        }
        if self.redis_holds() {
            return Some(Refusal::Timeout);
        }
        if slot as u64 >= self.redis.maxclients {
            return Some(Refusal::Connection);
        }
        if self.redis.password {
            return Some(Refusal::Auth);
        }
        if write && self.redis.evicting.is_none() && self.memory_full() {
            return Some(Refusal::Oom);
        }
        None
    }

    pub fn memory_kb(&self) -> f64 {
        BASE_MEMORY_KB + COUNTER_KB * self.redis.counters.len() as f64
    }

    fn memory_full(&self) -> bool {
        self.redis
            .maxmemory_kb
            .is_some_and(|max| self.memory_kb() >= max as f64)
    }

    /// The limit and window a node applies to `key`.
    pub fn limit_of(&self, key: &str) -> (u64, u64) {
        self.redis
            .limits
            .get(key)
            .copied()
            .unwrap_or((DEFAULT_LIMIT, WINDOW_MS))
    }

    /// The counter key of `key`'s window at `at`, and the window's end.
    pub fn counter_of(&self, key: &str, at: u64) -> (String, u64, u64) {
        let (_, window) = self.limit_of(key);
        let generation = self.redis.generations.get(key).copied().unwrap_or(0);
        let window_id = at / window;
        (
            format!("rl:cnt:{key}:{generation}:{window_id}"),
            (window_id + 1) * window,
            window_id,
        )
    }

    fn step(&mut self) {
        let now = self.now;
        let drained: Vec<String> = self
            .processes
            .iter()
            .filter(|(_, p)| p.draining_until.is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in drained {
            self.exit(&name, Exit::Clean);
        }
        let before = self.redis.counters.len();
        self.redis.counters.retain(|_, (_, expires)| *expires > now);
        self.redis.expired_keys += (before - self.redis.counters.len()) as u64;
        if !self.redis_holds() && self.redis_process().state == ProcessState::Running {
            for (counter, units, expires, limit) in std::mem::take(&mut self.redis.queued) {
                if expires > now {
                    self.incr(&counter, units, expires, limit);
                }
            }
        }
        self.evict();
        let serving: Vec<String> = NODES
            .iter()
            .filter(|n| self.processes[**n].serves())
            .map(|n| n.to_string())
            .collect();
        let mut tallies: BTreeMap<String, Tally> = serving
            .iter()
            .map(|n| (n.clone(), Tally::default()))
            .collect();
        let mut failing: BTreeMap<String, Option<&'static str>> = BTreeMap::new();
        let mut flows = std::mem::take(&mut self.flows);
        for flow in &mut flows {
            if serving.is_empty() {
                continue;
            }
            // Each key gets its share of the rate exactly over time (the fraction carried).
            for (i, (key, share)) in flow.keys.iter().enumerate() {
                flow.carry[i] += flow.rate * share * STEP_MS as f64 / 1000.0;
                let units = flow.carry[i].floor() as u64;
                flow.carry[i] -= units as f64;
                if units == 0 {
                    continue;
                }
                let window = self.window_of(key);
                for _ in 0..units {
                    let node = serving[self.next_node % serving.len()].clone();
                    self.next_node = self.next_node.wrapping_add(1);
                    let outcome = self.check(&node, &window);
                    let tally = tallies.entry(node.clone()).or_default();
                    tally.checks += 1;
                    match outcome {
                        Decided::Allowed => tally.allowed += 1,
                        Decided::Denied => tally.denied += 1,
                        Decided::Skipped => tally.skipped += 1,
                        Decided::FailedOpen(why) => {
                            tally.fail_open += 1;
                            tally.failures += 1;
                            failing.insert(node.clone(), Some(why.class()));
                        }
                    }
                    if !matches!(outcome, Decided::FailedOpen(_)) {
                        failing.entry(node).or_insert(None);
                    }
                }
            }
        }
        self.flows = flows;
        for (name, node) in &mut self.nodes {
            let tally = tallies.remove(name).unwrap_or_default();
            let tally = Tally {
                latency_ms: 1.0 + node.latency_ms as f64,
                ..tally
            };
            node.tallies.push_back(tally);
            if node.tallies.len() > RATE_STEPS {
                node.tallies.pop_front();
            }
            if let Some(why) = failing.remove(name) {
                node.failing = why;
            }
            // A node keeps the current and the previous window of each key.
            node.slots
                .retain(|_, slot| slot.ends_ms + slot.window_ms > now);
        }
    }

    fn incr(&mut self, counter: &str, units: u64, expires: u64, limit: u64) -> bool {
        let entry = self
            .redis
            .counters
            .entry(counter.to_string())
            .or_insert((0, expires));
        if entry.0 + units > limit {
            return false;
        }
        entry.0 += units;
        true
    }

    /// An evicting Redis over its memory drops counters until it fits (all of them, if even
    /// an empty Redis does not); `allkeys` policies drop limits too.
    fn evict(&mut self) {
        let (Some(max), Some(policy)) = (self.redis.maxmemory_kb, self.redis.evicting) else {
            return;
        };
        while self.memory_kb() >= max as f64 {
            let victim = self.redis.counters.keys().next().cloned();
            match victim {
                Some(c) => {
                    self.redis.counters.remove(&c);
                    self.redis.evicted_keys += 1;
                }
                None => break,
            }
        }
        if policy.starts_with("allkeys") && BASE_MEMORY_KB >= max as f64 {
            self.redis.limits.clear();
        }
    }

    /// The window a check of `key` counts in now.
    fn window_of(&self, key: &str) -> Window {
        let (limit, window_ms) = self.limit_of(key);
        let (counter, ends_ms, _) = self.counter_of(key, self.now);
        Window {
            counter,
            ends_ms,
            limit,
            window_ms,
        }
    }

    fn check(&mut self, node: &str, window: &Window) -> Decided {
        if self.nodes[node].ghost {
            return Decided::Skipped;
        }
        let slot_index = NODES.iter().position(|n| *n == node).unwrap_or(0) + 1;
        let epoch = self.redis.epoch;
        let refusal = self.refusal(slot_index, true);
        let allowed =
            refusal.is_none() && self.incr(&window.counter, 1, window.ends_ms, window.limit);
        let Some(n) = self.nodes.get_mut(node) else {
            return Decided::Denied;
        };
        let slot = n.slots.entry(window.counter.clone()).or_insert(Slot {
            epoch,
            ends_ms: window.ends_ms,
            window_ms: window.window_ms,
            ..Slot::default()
        });
        match refusal {
            None if allowed => {
                slot.allowed += 1;
                Decided::Allowed
            }
            None => Decided::Denied,
            Some(why) => {
                if why == Refusal::Timeout {
                    slot.uncertain += 1;
                    self.redis.queued.push((
                        window.counter.clone(),
                        1,
                        window.ends_ms,
                        window.limit,
                    ));
                }
                Decided::FailedOpen(why)
            }
        }
    }

    // ---- what happens to processes ----

    pub fn kill(&mut self, name: &str) {
        self.exit(name, Exit::Killed);
    }

    /// SIGTERM: a node stops answering at once and exits cleanly once it has drained (the
    /// service's graceful shutdown, ~0.7 s in the live drills); Redis exits at once.
    pub fn terminate(&mut self, name: &str) {
        let now = self.now;
        match self.processes.get_mut(name) {
            // A stopped process does not handle the signal until it is continued.
            Some(p) if p.state == ProcessState::Stopped => p.term_pending = true,
            Some(p) if name != REDIS_NODE && p.state == ProcessState::Running => {
                p.draining_until.get_or_insert(now + DRAIN_MS);
                p.log.push("SIGTERM: shutting down".into());
            }
            _ => self.exit(name, Exit::Clean),
        }
    }

    fn exit(&mut self, name: &str, how: Exit) {
        let Some(p) = self.processes.get_mut(name) else {
            return;
        };
        if p.state == ProcessState::Exited {
            return;
        }
        p.state = ProcessState::Exited;
        p.exit = Some(how);
        let drained = p.draining_until.take().is_some();
        p.log.push(match (how, drained) {
            (Exit::Killed, _) => "killed by signal 9".into(),
            (Exit::Clean, true) => "drained: exiting".into(),
            (Exit::Clean, false) => "SIGTERM: shutting down".into(),
        });
        if name == REDIS_NODE {
            // Nothing persisted: every count, limit, queued write and CONFIG SET goes with the
            // process; the next one starts from its defaults.
            self.redis = Redis {
                epoch: self.redis.epoch,
                maxclients: DEFAULT_MAXCLIENTS,
                ..Redis::default()
            };
        } else if let Some(node) = self.nodes.get_mut(name) {
            *node = Node::default();
        }
    }

    /// Starts a process that has exited with these flags changed (it keeps them from then
    /// on); refused when one already runs (it holds the port).
    pub fn start_flagged(
        &mut self,
        name: &str,
        flags: &[(String, String)],
    ) -> operator_protocol::ContractResult<()> {
        if !self.start(name) {
            return Err(operator_protocol::ContractError::Refused(format!(
                "{name} is already running (pid {}) and serves its port",
                self.processes.get(name).map_or(0, |p| p.pid)
            )));
        }
        if let Some(p) = self.processes.get_mut(name) {
            p.flags.extend(flags.iter().cloned());
        }
        Ok(())
    }

    /// Starts a process that has exited; false when one already runs (it holds the port).
    pub fn start(&mut self, name: &str) -> bool {
        let pid = self.pid();
        let now = self.now;
        let Some(p) = self.processes.get_mut(name) else {
            return false;
        };
        if p.state != ProcessState::Exited {
            return false;
        }
        p.state = ProcessState::Running;
        p.pid = pid;
        p.restarts += 1;
        p.exit = None;
        p.term_pending = false;
        p.isolated = false;
        p.log.push("listening".into());
        if name == REDIS_NODE {
            self.redis.epoch += 1;
        } else if let Some(node) = self.nodes.get_mut(name) {
            *node = Node {
                watching_since: now,
                ..Node::default()
            };
        }
        true
    }

    pub fn set_state(&mut self, name: &str, from: ProcessState, to: ProcessState) -> bool {
        let continued = match self.processes.get_mut(name) {
            Some(p) if p.state == from => {
                p.state = to;
                to == ProcessState::Running && std::mem::take(&mut p.term_pending)
            }
            _ => return false,
        };
        // A SIGTERM that waited for the process to run is handled now.
        if continued {
            self.terminate(name);
        }
        true
    }

    /// FLUSHALL: every counter and limit gone; the nodes notice a new epoch.
    pub fn flush(&mut self) {
        self.redis.counters.clear();
        self.redis.limits.clear();
        self.redis.generations.clear();
        self.redis.epoch += 1;
    }
}

struct Window {
    counter: String,
    ends_ms: u64,
    limit: u64,
    window_ms: u64,
}

enum Decided {
    Allowed,
    Denied,
    Skipped,
    FailedOpen(Refusal),
}
