//! The engine's tunables: tick, stability window, timeouts, budgets and retry backoff.

use std::time::Duration;

use crate::model::Mode;

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
    /// Written to the store at start; `None` keeps the stored mode (default approve).
    pub mode: Option<Mode>,
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
            mode: None,
        }
    }
}
