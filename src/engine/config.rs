//! The engine's tunables: tick, stability window, timeouts, budgets and retry backoff.

use std::time::Duration;

use operator_protocol::Risk;

use crate::model::Mode;

/// The confidence a diagnosis needs before execute mode runs its remedy without a human, by
/// the remedy's risk. Below it the action waits as in approve mode, and says why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceGates {
    pub safe: f64,
    pub disruptive: f64,
    pub destructive: f64,
}

impl Default for ConfidenceGates {
    /// Strict where a wrong guess costs something: a restart at 85 %, a lost count at 95 %.
    fn default() -> Self {
        Self {
            safe: 0.5,
            disruptive: 0.85,
            destructive: 0.95,
        }
    }
}

impl ConfidenceGates {
    pub fn for_risk(&self, risk: Risk) -> f64 {
        match risk {
            Risk::ReadOnly => 0.0,
            Risk::Safe => self.safe,
            Risk::Disruptive => self.disruptive,
            Risk::Destructive => self.destructive,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub tick: Duration,
    /// Consecutive clean observations before a ticket counts as resolved.
    pub stability_checks: u64,
    /// How long a fix may take to hold before the ticket is escalated.
    pub verify_timeout: Duration,
    pub brain_timeout: Duration,
    pub max_parallel_diagnoses: usize,
    pub ticket_action_budget: u32,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long a disrupted node counts against the majority rule after its action ended.
    pub disruption_memory: Duration,
    /// How long a disruptive remedy of a possibly transient cause waits for the symptom to
    /// clear by itself.
    pub watch_period: Duration,
    /// Ticks a ticket that may be a symptom (the subject declares its invariant a consequence
    /// of another) waits for its cause to show before it is diagnosed.
    pub settle_ticks: u32,
    /// A remedy verified this recently that is recommended again for the same problem did
    /// not hold: the ticket goes to a human instead of looping.
    pub fix_hold_window: Duration,
    /// A cause that may pass which has already cleared by itself this many times within
    /// `intermittent_window` comes and goes: a person gets it instead of another watch.
    pub intermittent_clears: usize,
    pub intermittent_window: Duration,
    /// After a node is last seen stopped deliberately (a clean exit after SIGTERM), nothing
    /// acts on it on its own for this long: whoever stopped it is likely starting it again.
    pub person_grace: Duration,
    /// The no-regression check: trouble above what it was before a ticket's actions by more
    /// than the margin, on this many observations in a row while the fix verifies, rolls the
    /// ticket's reversible actions back.
    pub regression_margin: f64,
    pub regression_checks: u32,
    /// An action that destroys something runs on its own only when the trouble it ends would
    /// otherwise last this many times longer than what it destroys stays lost.
    pub worth_factor: f64,
    /// Written to the store at start; `None` keeps the stored mode (default approve).
    pub mode: Option<Mode>,
    pub confidence_gates: ConfidenceGates,
    /// Never act, never inject chaos: diagnoses and questions only. Proposed actions wait,
    /// saying why; commands that would act are refused.
    pub read_only: bool,
    /// Which incarnation of the cluster the engine watches (`Deployment::cluster_id`): its
    /// tickets carry it, and only fixes made on it count as its history.
    pub cluster: String,
    /// Run store work on the runtime's own thread instead of a blocking one: a simulation on
    /// a paused clock does, so the order of its steps (and so a seed's replay) does not
    /// depend on when another thread answers. A live engine keeps SQLite off its workers.
    pub store_inline: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(250),
            stability_checks: 3,
            verify_timeout: Duration::from_secs(30),
            brain_timeout: Duration::from_secs(120),
            max_parallel_diagnoses: 2,
            ticket_action_budget: 3,
            max_attempts: 3,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(10),
            disruption_memory: Duration::from_secs(30),
            // Longer than a GC pause, a burst or a failover tool's few-second pause; short
            // enough that a real stall is not left alone for long.
            watch_period: Duration::from_secs(5),
            settle_ticks: 2,
            // A fix that lasted ten minutes held; one that lasted seconds is a loop.
            fix_hold_window: Duration::from_secs(600),
            // The third stall in a minute is a pattern, not bad luck.
            intermittent_clears: 2,
            intermittent_window: Duration::from_secs(60),
            person_grace: Duration::from_secs(30),
            // A new warning weighs 3: one more warning than before, three ticks in a row.
            regression_margin: 1.0,
            regression_checks: 3,
            // "Clearly outweighs": twice as long, so a loss never trades for about as much.
            worth_factor: 2.0,
            mode: None,
            confidence_gates: ConfidenceGates::default(),
            read_only: false,
            cluster: String::new(),
            store_inline: false,
        }
    }
}
