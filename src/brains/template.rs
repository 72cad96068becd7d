//! Fills `{target}` and `{evidence.NAME}` in runbook arguments from the ticket.

use std::collections::BTreeMap;

use operator_protocol::{TicketBrief, fill_args};
use serde_json::Value;

/// A string that is exactly one placeholder takes the value's own type (a number stays a
/// number); placeholders inside longer strings are interpolated as text.
pub fn fill(args: &BTreeMap<String, Value>, ticket: &TicketBrief) -> BTreeMap<String, Value> {
    fill_args(args, &|name| {
        if name == "target" {
            return Some(Value::String(ticket.target.clone()));
        }
        let field = name.strip_prefix("evidence.")?;
        ticket.evidence.get(field).cloned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use operator_protocol::Severity;
    use serde_json::json;

    #[test]
    fn placeholders_take_the_ticket_values_and_keep_their_types() {
        let ticket = TicketBrief {
            id: 1,
            invariant: "i".into(),
            target: "node-2".into(),
            severity: Severity::Warning,
            message: "".into(),
            evidence: json!({"key": "k1", "limit": 50}),
            occurrences: 1,
        };
        let args: BTreeMap<String, Value> = serde_json::from_value(json!({
            "node": "{target}", "limit": "{evidence.limit}", "text": "key {evidence.key} on {target}",
            "plain": 3, "missing": "{evidence.nope}"
        }))
        .unwrap();
        let filled = fill(&args, &ticket);
        assert_eq!(filled["node"], "node-2");
        assert_eq!(filled["limit"], 50);
        assert_eq!(filled["text"], "key k1 on node-2");
        assert_eq!(filled["plain"], 3);
        assert_eq!(filled["missing"], "{evidence.nope}");
    }
}
