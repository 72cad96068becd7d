//! Fills `{target}` and `{evidence.NAME}` in runbook arguments from the ticket.

use std::collections::BTreeMap;

use operator_protocol::TicketBrief;
use serde_json::Value;

/// A string that is exactly one placeholder takes the value's own type (a number stays a
/// number); placeholders inside longer strings are interpolated as text.
pub fn fill(args: &BTreeMap<String, Value>, ticket: &TicketBrief) -> BTreeMap<String, Value> {
    args.iter()
        .map(|(k, v)| (k.clone(), fill_value(v, ticket)))
        .collect()
}

fn lookup(name: &str, ticket: &TicketBrief) -> Option<Value> {
    if name == "target" {
        return Some(Value::String(ticket.target.clone()));
    }
    let field = name.strip_prefix("evidence.")?;
    ticket.evidence.get(field).cloned()
}

fn fill_value(value: &Value, ticket: &TicketBrief) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    if let Some(name) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
        && !name.contains(['{', '}'])
        && let Some(found) = lookup(name, ticket)
    {
        return found;
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        out.push_str(&rest[..start]);
        match lookup(name, ticket) {
            Some(Value::String(s)) => out.push_str(&s),
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str(&rest[start..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Value::String(out)
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
