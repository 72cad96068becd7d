//! `{NAME}` placeholders in the JSON arguments of runbook checks, remedies and premises,
//! filled from whatever the caller names (a ticket's target and evidence, an action's
//! parameters). Hand-written: a dozen lines, and no template crate keeps a lone placeholder's
//! JSON type.

use std::collections::BTreeMap;

use serde_json::Value;

/// A string that is exactly one placeholder takes the value's own type (a number stays a
/// number); placeholders inside longer strings are interpolated as text; unknown ones stay.
pub fn fill_args(
    args: &BTreeMap<String, Value>,
    lookup: &dyn Fn(&str) -> Option<Value>,
) -> BTreeMap<String, Value> {
    args.iter()
        .map(|(k, v)| (k.clone(), fill_value(v, lookup)))
        .collect()
}

fn fill_value(value: &Value, lookup: &dyn Fn(&str) -> Option<Value>) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    if let Some(name) = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
        && !name.contains(['{', '}'])
        && let Some(found) = lookup(name)
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
        match lookup(name) {
            Some(Value::String(s)) => out.push_str(&s),
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str(&rest[start..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Value::String(out)
}
