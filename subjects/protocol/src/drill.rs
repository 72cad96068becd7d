//! Drills: faults the evaluation injects from outside the operator, the way the world does
//! (another person's command, a configuration mistake, a resource running out). They are not
//! in the subject's chaos catalog and not in its runbook, and the engine never sees this
//! contract: the eval measures what the operator does with what it was not told.

use serde::{Deserialize, Serialize};

use crate::{BoxFuture, ContractResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillSpec {
    pub name: String,
    /// What happened, as the person who did it would say.
    pub description: String,
    /// The ground truth, in words: the real cause.
    pub root_cause: String,
    /// None: a control drill (no fault, e.g. heavy legitimate load), where any ticket is a
    /// false positive. Some: the invariants any of which should notice the fault's impact.
    pub detected_by: Option<Vec<String>>,
    /// Actions a human would accept as the fix; empty when only a human can fix it.
    pub acceptable_actions: Vec<String>,
    /// Words (any, case-insensitive) the evidence handed to a human should contain, in the
    /// ticket or its diagnosis, for an "I don't know" to count as pointing at the real cause.
    pub evidence_words: Vec<String>,
    /// How long the harness keeps the fault before undoing it, in seconds.
    pub hold_s: u64,
}

pub trait Drills: Send + Sync {
    fn specs(&self) -> Vec<DrillSpec>;
    /// Starts the fault; it lasts until `stop` (or ends by itself sooner).
    fn start<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>>;
    /// Undoes it, whatever the operator did meanwhile; safe to call twice.
    fn stop<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ContractResult<()>>;
}
