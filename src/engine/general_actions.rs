//! Actions every subject has, run by the engine itself: `wait` (a pause inside a workflow)
//! and `log_message` (a note in the audit log).

use std::time::Duration;

use operator_protocol::{
    ActionOutcome, ActionRequest, ActionSpec, ContractError, ContractResult, ParamKind, ParamSpec,
    Reversal, Risk, Span, Worth,
};

pub const WAIT: &str = "wait";
pub const LOG_MESSAGE: &str = "log_message";

/// Everything the engine can run for `subject`: its own actions, then the general ones.
pub fn catalog(subject: &dyn operator_protocol::Subject) -> Vec<ActionSpec> {
    let mut catalog = subject.actions();
    catalog.extend(specs());
    catalog
}

pub fn specs() -> Vec<ActionSpec> {
    // Each changes nothing in the cluster: nothing to take back, nothing lost.
    let nothing_to_undo = |buys: &str, spec: ActionSpec| ActionSpec {
        reversal: Reversal::NothingToUndo,
        worth: Some(Worth::new(buys, Span::Moment, Span::Moment)),
        ..spec
    };
    vec![
        nothing_to_undo(
            "time for what the workflow did to take effect",
            ActionSpec::new(
                WAIT,
                "Pause the workflow, e.g. to let a restarted node warm up",
                vec![ParamSpec::new(
                    "ms",
                    "How long to wait, in milliseconds",
                    ParamKind::Integer {
                        min: 1,
                        max: 600_000,
                    },
                )],
                Risk::Safe,
            ),
        ),
        nothing_to_undo(
            "a note the humans read later",
            ActionSpec::new(
                LOG_MESSAGE,
                "Write a note for the humans into the audit log",
                vec![ParamSpec::new(
                    "message",
                    "The note",
                    ParamKind::String { max_len: 2000 },
                )],
                Risk::Safe,
            ),
        ),
    ]
}

pub fn is_general(name: &str) -> bool {
    name == WAIT || name == LOG_MESSAGE
}

/// Runs a general action; the request was validated against `specs()` already.
pub async fn run(request: &ActionRequest) -> ContractResult<ActionOutcome> {
    match request.action.as_str() {
        WAIT => {
            let ms = request
                .params
                .get("ms")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ActionOutcome {
                summary: format!("waited {ms} ms"),
            })
        }
        LOG_MESSAGE => {
            let message = request
                .params
                .get("message")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            Ok(ActionOutcome {
                summary: format!("noted: {message}"),
            })
        }
        other => Err(ContractError::Permanent(format!(
            "{other} is not a general action"
        ))),
    }
}
