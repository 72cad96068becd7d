//! The lifecycles the engine moves tickets and actions through, and its modes: plain data
//! that the engine, its store and the TUI's widgets all speak.

/// Declares a string-backed enum with `as_str` and `parse`, so SQLite and JSON use one spelling.
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// `open → diagnosing → diagnosed → acting → verifying → resolved`, or escalated / held.
    TicketStatus {
        Open => "open",
        Diagnosing => "diagnosing",
        Diagnosed => "diagnosed",
        Acting => "acting",
        Verifying => "verifying",
        Resolved => "resolved",
        Escalated => "escalated",
        Held => "held",
    }
);

impl TicketStatus {
    pub fn is_active(self) -> bool {
        self != TicketStatus::Resolved
    }
}

/// How an escalation reason begins when the operator declined to act on evidence (no known
/// cause fits it, or an action's premise did not hold), not because something failed. Front
/// ends show those tickets as their own state, not as errors.
pub const NEEDS_A_HUMAN: &str = "needs a human";

named_enum!(
    /// `proposed → validated → executing → completed | failed | cancelled | premise_failed`;
    /// approval gates validated → executing; `premise_failed` means the executor found, on a
    /// fresh read right before running it, that what the action presumes does not hold, and
    /// did not run it.
    ActionStatus {
        Proposed => "proposed",
        Validated => "validated",
        Executing => "executing",
        Completed => "completed",
        Failed => "failed",
        Cancelled => "cancelled",
        PremiseFailed => "premise_failed",
        /// It completed, the cluster got worse after it, and its undo was run.
        RolledBack => "rolled_back",
    }
);

impl ActionStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ActionStatus::Completed
                | ActionStatus::Failed
                | ActionStatus::Cancelled
                | ActionStatus::PremiseFailed
                | ActionStatus::RolledBack
        )
    }
}

named_enum!(
    /// How far the engine may go on its own.
    Mode {
        Observe => "observe",
        Approve => "approve",
        Execute => "execute",
    }
);

impl Mode {
    pub fn next(self) -> Mode {
        match self {
            Mode::Observe => Mode::Approve,
            Mode::Approve => Mode::Execute,
            Mode::Execute => Mode::Observe,
        }
    }
}
