//! Preparing an action's undo: right before the action runs, read what its inverse needs (the
//! limit in force, the store that led) and fill the inverse request, so that taking it back
//! later restores what was there, not what a later read shows.

use operator_protocol::{ActionRequest, Reversal, ToolBox, ToolCall, fill_args};

use super::tools::SubjectTools;

/// The request that takes `request` back; `Ok(None)` when its spec declares no inverse.
pub async fn prepare(
    reversal: &Reversal,
    request: &ActionRequest,
    tools: &SubjectTools,
) -> Result<Option<ActionRequest>, String> {
    let Reversal::Inverse { capture, .. } = reversal else {
        return Ok(None);
    };
    let before = match capture {
        Some(call) => {
            let call = ToolCall {
                tool: call.tool.clone(),
                args: fill_args(&call.args, &|name| {
                    name.strip_prefix("param.")
                        .and_then(|p| request.params.get(p).cloned())
                }),
            };
            tools
                .call(&call)
                .await
                .map_err(|e| format!("reading {} before it ran: {e}", call.tool))?
        }
        None => serde_json::Value::Null,
    };
    reversal.undo_request(request, &before)
}
