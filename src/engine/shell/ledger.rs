//! The subject's ledger of what actions leave in the cluster, kept in the database: a row
//! before the subject creates something (tagged with the action running it), marked removed
//! once it is gone. The running action is known through a task-local the shell sets around
//! every action, so subjects need not pass ids around.

use std::sync::{Arc, Mutex};

use operator_protocol::{ContractError, ContractResult, Ledger, Residue};

use crate::clock::Clock;
use crate::model::ActionId;
use crate::store::Store;

tokio::task_local! {
    /// The action whose work is running on this task.
    pub static CURRENT_ACTION: ActionId;
}

pub struct StoreLedger {
    pub store: Arc<Mutex<Store>>,
    pub subject: String,
    pub clock: Arc<dyn Clock>,
}

impl StoreLedger {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Ledger for StoreLedger {
    fn left(&self, residue: &Residue) -> ContractResult<()> {
        let action = CURRENT_ACTION.try_with(|id| *id).ok();
        self.store()
            .record_residue(&self.subject, residue, action, self.clock.now_ms())
            .map_err(|e| {
                ContractError::Permanent(format!(
                    "could not record {} before creating it, so it was not created: {e:#}",
                    residue.key
                ))
            })
    }

    fn removed(&self, residue: &Residue) {
        if let Err(e) = self
            .store()
            .residue_removed(&self.subject, residue, self.clock.now_ms())
        {
            tracing::error!(key = %residue.key, "could not record a removal: {e:#}");
        }
    }
}
