//! What an action leaves in the cluster that must not outlive its purpose (a PD scheduler
//! operator-tui added), and the ledger a subject records it in: before it creates it, so that a
//! crash cannot lose track of it, and again once it is gone. The engine removes what is left
//! when the ticket that caused it resolves, when operator-tui exits, and at start-up.

use serde::{Deserialize, Serialize};

use crate::ContractResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Residue {
    /// What sort of thing it is, for the subject's clean-up ("pd_scheduler").
    pub kind: String,
    /// Which one, as the cluster names it ("evict-leader-scheduler-2").
    pub key: String,
    /// For people: "PD evicts store-2's leaders".
    pub description: String,
}

impl Residue {
    pub fn new(kind: &str, key: &str, description: &str) -> Self {
        Self {
            kind: kind.into(),
            key: key.into(),
            description: description.into(),
        }
    }
}

pub trait Ledger: Send + Sync {
    /// Records it before it is created; a subject that cannot record it does not create it.
    fn left(&self, residue: &Residue) -> ContractResult<()>;
    /// Records that it is gone.
    fn removed(&self, residue: &Residue);
}
