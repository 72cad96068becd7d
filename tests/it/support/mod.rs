//! Shared pieces of the engine tests.
#![allow(dead_code)]

pub mod binary;
pub mod compose;
pub mod replay;
pub mod tmux;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use operator_protocol::{Brain, NodeId};
use operator_tui::clock::{Clock, SystemClock};
use operator_tui::engine::{Engine, EngineConfig, EngineHandle};
use operator_tui::model::*;
use operator_tui::store::Store;

use fake::{FakeSubject, FakeTarget};
pub use operator_tui::testing as fake;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub handle: Option<EngineHandle>,
    pub subject: FakeSubject,
}

pub fn config(mode: Mode) -> EngineConfig {
    EngineConfig {
        tick: Duration::from_millis(20),
        verify_timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(500),
        retry_cap: Duration::from_secs(5),
        mode: Some(mode),
        ..EngineConfig::default()
    }
}

pub fn start(subject: FakeSubject, brain: Arc<dyn Brain>, config: EngineConfig) -> Harness {
    start_with_clock(subject, brain, config, Arc::new(SystemClock))
}

pub fn start_with_clock(
    subject: FakeSubject,
    brain: Arc<dyn Brain>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("operator.db");
    let handle = start_engine(&subject, brain, config, clock, &db);
    Harness {
        dir,
        db,
        handle: Some(handle),
        subject,
    }
}

pub fn start_engine(
    subject: &FakeSubject,
    brain: Arc<dyn Brain>,
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    db: &std::path::Path,
) -> EngineHandle {
    let nodes: Vec<NodeId> = subject
        .state
        .lock()
        .unwrap()
        .healthy
        .keys()
        .map(|n| NodeId(n.clone()))
        .collect();
    let store = Store::open(db).unwrap();
    Engine::new(
        Arc::new(subject.clone()),
        Arc::new(FakeTarget(nodes)),
        brain,
        store,
        clock,
        config,
    )
    .start()
}

/// A cluster of `subject` started here on the local target (real processes, the demo's
/// workload) and an engine on it in `mode` with `brain`, its database in `dir`.
pub async fn local_engine(
    subject: operator_tui::deploy::SubjectName,
    dir: &std::path::Path,
    brain: Arc<dyn Brain>,
    mode: Mode,
) -> (operator_tui::deploy::Deployment, EngineHandle, PathBuf) {
    use operator_tui::deploy::{self, DeploySpec, TargetName};
    let spec = DeploySpec {
        subject,
        target: TargetName::Local,
        ..DeploySpec::default()
    };
    let deployment = deploy::bring_up(&spec, dir, &|_| {})
        .await
        .expect("the local cluster starts");
    let db = dir.join("operator.db");
    let handle = Engine::new(
        deployment.subject.clone(),
        deployment.target.clone(),
        brain,
        Store::open(&db).unwrap(),
        Arc::new(SystemClock),
        EngineConfig {
            mode: Some(mode),
            ..EngineConfig::default()
        },
    )
    .start();
    (deployment, handle, db)
}

/// Which group of heavy tests holds the machine, and how many of its tests run.
static HEAVY: std::sync::Mutex<(Option<&'static str>, usize)> = std::sync::Mutex::new((None, 0));
static HEAVY_FREED: std::sync::Condvar = std::sync::Condvar::new();

/// A place among the tests that start clusters, containers or terminals: one group at a time
/// (a group is a module's tests, which were written to run beside each other), because on two
/// cores two groups at once make each other's timings lie. Held for the whole test; the light
/// tests (engine, brains, CLI records) run beside it.
pub struct HeavySlot(&'static str);

pub fn heavy(group: &'static str) -> HeavySlot {
    // A test that failed while holding a place poisons nothing the next one relies on.
    let mut held = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    while held.0.is_some_and(|g| g != group) {
        held = HEAVY_FREED.wait(held).unwrap_or_else(|p| p.into_inner());
    }
    *held = (Some(group), held.1 + 1);
    HeavySlot(group)
}

impl Drop for HeavySlot {
    fn drop(&mut self) {
        let mut held = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
        held.1 -= 1;
        if held.1 == 0 {
            held.0 = None;
            HEAVY_FREED.notify_all();
        }
        debug_assert!(held.0.is_none() || held.0 == Some(self.0));
    }
}

static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One test at a time within a group whose tests each start a whole cluster and measure its
/// timings (the rate limiter's closed loop).
pub struct ClusterSlot {
    _heavy: HeavySlot,
    _alone: std::sync::MutexGuard<'static, ()>,
}

pub fn one_cluster_at_a_time() -> ClusterSlot {
    let heavy = heavy("one cluster at a time");
    ClusterSlot {
        _heavy: heavy,
        _alone: ONE_CLUSTER.lock().unwrap_or_else(|p| p.into_inner()),
    }
}

/// Polls the store (bounded) until `f` finds what the test waits for.
pub async fn wait_for_store<T>(
    store: &Store,
    what: &str,
    timeout: Duration,
    f: impl Fn(&Store) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f(store) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Harness {
    /// A second connection, as the CLI in another terminal would have.
    pub fn store(&self) -> Store {
        Store::open(&self.db).unwrap()
    }

    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&Store) -> Option<T>,
    ) -> T {
        wait_for_store(&self.store(), what, timeout, f).await
    }

    pub async fn ticket_in(&self, status: TicketStatus) -> Ticket {
        self.wait_until(
            &format!("a ticket {status}"),
            Duration::from_secs(10),
            |s| {
                s.tickets(10)
                    .unwrap()
                    .into_iter()
                    .find(|t| t.status == status)
            },
        )
        .await
    }

    pub async fn action_in(&self, status: ActionStatus) -> Action {
        self.wait_until(
            &format!("an action {status}"),
            Duration::from_secs(10),
            |s| {
                s.actions(None, 50)
                    .unwrap()
                    .into_iter()
                    .find(|a| a.status == status)
            },
        )
        .await
    }

    /// Waits (bounded) until the engine has taken `n` more observations: each is a full step
    /// of every decision, so "nothing happened meanwhile" is proved by steps, not by sleeping.
    pub async fn observations(&self, n: usize) {
        let mut events = self.handle.as_ref().expect("running").subscribe();
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen < n {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(operator_tui::events::EngineEvent::Observed { .. })) => seen += 1,
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(e)) => panic!("the engine's events ended: {e}"),
                Err(_) => panic!("only {seen} of {n} observations within 10 s"),
            }
        }
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.unwrap();
        }
    }
}

/// A person's action with no ticket, as the CLI or a test inserts it for a running engine.
pub fn human_action(
    name: &str,
    params: serde_json::Value,
    risk: operator_protocol::Risk,
) -> operator_tui::store::NewAction {
    operator_tui::store::NewAction {
        ticket_id: None,
        name: name.into(),
        params: params.as_object().cloned().unwrap_or_default(),
        rationale: "a person's test".into(),
        risk,
        max_attempts: 1,
        depends_on: None,
        not_before_ms: None,
        confidence: None,
        destroys: None,
        irreversible: None,
        undoes: None,
    }
}

/// One of the subject's read-only tools, called the way a brain calls it.
pub async fn tool(
    deployment: &operator_tui::deploy::Deployment,
    name: &str,
    args: serde_json::Value,
) -> serde_json::Value {
    let call = operator_protocol::ToolCall {
        tool: name.into(),
        args: serde_json::from_value(args).unwrap(),
    };
    deployment
        .subject
        .call_tool(&call, &*deployment.target)
        .await
        .unwrap()
}

/// Waits (bounded) until `done` finds what the test waits for, approving as a person whatever
/// waits for one meanwhile (a remedy outside its ticket's evidence, a loosened protection): the
/// tests of what happens after a person said yes to a wrong remedy. Returns what was found and
/// the reasons the actions waited.
pub async fn approving_until<T>(
    store: &Store,
    engine: &EngineHandle,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&Store) -> Option<T>,
) -> (T, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut waited = Vec::new();
    loop {
        if let Some(found) = done(store) {
            return (found, waited);
        }
        for action in store.actions(None, 20).unwrap() {
            let reason = action.waiting.clone().unwrap_or_default();
            if action.approval.is_none()
                && action.status == ActionStatus::Validated
                && reason.starts_with("waiting for a human")
                && !waited.contains(&reason)
            {
                waited.push(reason);
                engine
                    .send(operator_tui::events::Command::Approve(action.id))
                    .await;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
