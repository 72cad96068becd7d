//! Bringing a subject's cluster up (or finding the one `cluster up` left running) and wiring
//! it to its adapter: one file per subject, and this one, the only place that maps a subject's
//! name to its crate. What to deploy is plain data (`DeploySpec`); the command line builds it.

mod ratelimiter;
mod tikv;

use std::path::Path;
use std::sync::Arc;

use color_eyre::eyre::Result;
use operator_protocol::{DeploymentTarget, Disturber, Subject};
use operator_ratelimiter::cluster as rl_cluster;
use operator_ratelimiter::workload;
use operator_tikv_sim::server::Simulator;

pub use tikv::{serve_simulated_store, serve_simulator};

/// The subjects operator-tui ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectName {
    /// Our own distributed rate limiter (ratelimiter-svc, 3 nodes + Redis).
    Ratelimiter,
    /// TiKV through PD's HTTP API.
    Tikv,
}

impl SubjectName {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectName::Ratelimiter => "ratelimiter",
            SubjectName::Tikv => "tikv",
        }
    }
}

/// A subject's cluster as a deterministic model on tokio's clock (see the generated eval's
/// simulation): its subject, target and disturber, or None for a subject without a model yet.
pub struct Simulated {
    pub subject: Arc<dyn Subject>,
    pub target: Arc<dyn DeploymentTarget>,
    pub disturber: Arc<dyn Disturber>,
}

/// A modelled cluster of `subject` starting at `start_ms` of simulated time; call inside the
/// runtime whose clock it follows. Every subject has one.
pub fn simulated(subject: SubjectName, start_ms: u64) -> Result<Simulated> {
    match subject {
        SubjectName::Ratelimiter => {
            let model = operator_ratelimiter::simulated::SimulatedRateLimiter::new(start_ms);
            Ok(Simulated {
                subject: model.clone(),
                target: model.clone(),
                disturber: model,
            })
        }
        SubjectName::Tikv => tikv::simulated(start_ms),
    }
}

/// Where the subject's processes run, and so what can stop and start them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetName {
    /// Child processes operator-tui starts itself (TiKV: the in-process simulator).
    Local,
    /// The containers of a running Compose project.
    Docker,
    /// TiKV: the controls of a simulator another process serves.
    Sim,
    /// No control over processes: watch, and act only through the subject's own API.
    None,
}

impl TargetName {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetName::Local => "local",
            TargetName::Docker => "docker",
            TargetName::Sim => "sim",
            TargetName::None => "none",
        }
    }
}

/// What to deploy or attach to.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    pub subject: SubjectName,
    pub target: TargetName,
    /// A Redis to use instead of starting one (the rate limiter on the local target).
    pub redis_url: Option<String>,
    /// The Compose project --target docker drives; the subject's own when absent.
    pub compose_project: Option<String>,
    /// Steady background traffic, in checks per second (0: none).
    pub workload_rate: f64,
    /// TiKV: PD client URLs of a running cluster; empty serves the simulator here.
    pub pd: Vec<String>,
    /// TiKV: read store metrics from this Prometheus instead of each status address.
    pub prometheus: Option<String>,
    /// TiKV: status addresses PD reports, reached somewhere else (NAME, HOST:PORT).
    pub status_addresses: Vec<(String, String)>,
}

impl Default for DeploySpec {
    fn default() -> Self {
        Self {
            subject: SubjectName::Ratelimiter,
            target: TargetName::Local,
            redis_url: None,
            compose_project: None,
            workload_rate: 200.0,
            pd: Vec::new(),
            prometheus: None,
            status_addresses: Vec::new(),
        }
    }
}

impl DeploySpec {
    /// The Compose project --target docker drives: the one given, or the subject's own
    /// (`docker-compose -p operator-tikv -f compose/tikv.yml up -d`).
    pub fn compose_project(&self) -> String {
        self.compose_project
            .clone()
            .unwrap_or_else(|| format!("operator-{}", self.subject.as_str()))
    }
}

pub struct Deployment {
    pub subject: Arc<dyn Subject>,
    /// Values that must never be shown or recorded (the admin token).
    secrets: Vec<String>,
    pub target: Arc<dyn DeploymentTarget>,
    /// "ratelimiter · local (started here)" and the like, for the header.
    pub description: String,
    /// Which incarnation of the cluster this is: a cluster started here is new each time,
    /// `cluster up`'s keeps its id in its file, a Compose project's is its Redis container,
    /// a PD's is PD's cluster id. A fix made on another incarnation is not this one's history.
    pub cluster_id: String,
    /// What could not be set up on a sick cluster; the run goes on and the screen says so.
    pub warnings: Vec<String>,
    /// Faults the eval's unknown-fault suite injects from outside the operator; None where the
    /// subject or target has none.
    pub drills: Option<Arc<dyn operator_protocol::Drills>>,
    /// What the generated eval can do to the cluster from outside, and its world sampler.
    pub disturber: Option<Arc<dyn operator_protocol::Disturber>>,
    _workload: Option<Arc<workload::Workload>>,
    /// Logs and Redis's working directory of a cluster we own; removed with us.
    _scratch: Option<tempfile::TempDir>,
    /// The TiKV simulator we serve; it stops with us.
    _simulator: Option<Simulator>,
}

impl Deployment {
    /// What stops at the end of a run: a cluster started here goes with it; `cluster up`'s, a
    /// Compose project or a PD someone else runs keeps running.
    pub fn stopping(&self) -> &'static str {
        if self._scratch.is_some() || self._simulator.is_some() {
            "stopping: the engine, the workload, then the cluster"
        } else {
            "stopping: the engine and its workload; the cluster keeps running"
        }
    }

    /// Every secret this deployment knows, plus the LLM keys from the environment.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = self.secrets.clone();
        all.extend(
            ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()),
        );
        all
    }
}

/// A fresh id for a cluster that exists only as long as something here runs it.
pub(crate) fn new_cluster_id(kind: &str) -> String {
    format!("{kind}-{:016x}", fastrand::u64(..))
}

/// Starts the cluster (or adopts the running one) and the workload.
pub async fn bring_up(
    spec: &DeploySpec,
    state_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Deployment> {
    match spec.subject {
        SubjectName::Ratelimiter => ratelimiter::bring_up(spec, state_dir, progress).await,
        SubjectName::Tikv => tikv::bring_up(spec, progress).await,
    }
}

/// Connects to the cluster `cluster up` left running, without a workload (for `chaos`, `check`).
pub fn attach(subject: SubjectName, state_dir: &Path) -> Result<Deployment> {
    match subject {
        SubjectName::Ratelimiter => ratelimiter::attach(state_dir),
        SubjectName::Tikv => Err(crate::user_error!(
            "no TiKV cluster given: point at one with --pd URL (--target sim for `operator-tui simulate`, docker or none); `run --subject tikv` serves a simulator of its own"
        )),
    }
}

/// A cluster that already runs, for commands that look at it (`check`, `ask`): `cluster up`'s,
/// a Compose project, a PD at --pd. They never start one: a cluster started only to be looked
/// at would be healthy and tell nothing.
pub async fn connect(spec: &DeploySpec, state_dir: &Path) -> Result<Deployment> {
    // Only the local target starts processes; the others attach (or say what they need).
    let running_elsewhere = spec.target != TargetName::Local
        || (spec.subject == SubjectName::Tikv && !spec.pd.is_empty());
    if !running_elsewhere {
        return attach(spec.subject, state_dir);
    }
    let spec = DeploySpec {
        workload_rate: 0.0,
        ..spec.clone()
    };
    bring_up(&spec, state_dir, &|line| eprintln!("  {line}")).await
}

/// `cluster up`: a detached cluster that outlives this process.
pub async fn cluster_up(spec: &DeploySpec, state_dir: &Path) -> Result<()> {
    match spec.subject {
        SubjectName::Ratelimiter => ratelimiter::cluster_up(spec, state_dir).await,
        SubjectName::Tikv => Err(crate::user_error!(
            "a detached cluster exists for the rate limiter only; `run --subject tikv` serves the TiKV simulator"
        )),
    }
}

/// `cluster down` and `cluster status`: only the rate limiter has a detached cluster.
pub use ratelimiter::{cluster_down, cluster_status, serve_cluster_workload};

/// A subject's chaos catalog and runbook: neither needs a live cluster.
pub fn chaos_catalog(subject: SubjectName) -> Result<Vec<operator_protocol::ChaosSpec>> {
    Ok(match subject {
        SubjectName::Ratelimiter => operator_ratelimiter::chaos_catalog(&rl_cluster::node_names()),
        SubjectName::Tikv => operator_tikv::subject::chaos_catalog(),
    })
}

/// The faults of the eval's unknown suite, with their ground truth (TiKV's run on the
/// simulator).
pub fn drill_specs(subject: SubjectName) -> Vec<operator_protocol::DrillSpec> {
    match subject {
        SubjectName::Ratelimiter => operator_ratelimiter::drills::specs(),
        SubjectName::Tikv => operator_tikv_sim::drills::specs(),
    }
}

pub fn runbook(subject: SubjectName) -> Result<operator_protocol::Runbook> {
    Ok(match subject {
        SubjectName::Ratelimiter => operator_ratelimiter::runbook(),
        SubjectName::Tikv => operator_tikv::subject::runbook(),
    })
}

/// The demo chapters shipped for a subject (see demo-chapters/).
pub fn demo_chapters(subject: SubjectName) -> &'static str {
    match subject {
        SubjectName::Ratelimiter => include_str!("../../demo-chapters/ratelimiter.toml"),
        SubjectName::Tikv => include_str!("../../demo-chapters/tikv.toml"),
    }
}
