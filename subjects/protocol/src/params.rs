//! Reading a request's parameters (an action's, a tool's, a fault's) once, at the subject's
//! boundary, with an error that names what is wrong. Every subject uses these.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{ContractError, ContractResult};

pub type Params = BTreeMap<String, Value>;

/// A required text parameter.
pub fn text_param<'a>(params: &'a Params, name: &str) -> ContractResult<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ContractError::Permanent(format!("{name} is missing or not text")))
}

/// A required non-negative integer parameter.
pub fn int_param(params: &Params, name: &str) -> ContractResult<u64> {
    params.get(name).and_then(Value::as_u64).ok_or_else(|| {
        ContractError::Permanent(format!("{name} is missing or not a non-negative integer"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_mistyped_parameter_is_a_permanent_error_naming_it() {
        let params: Params = [("key".to_string(), Value::from(5))].into_iter().collect();
        let error = text_param(&params, "key").unwrap_err();
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("key"));
        assert_eq!(int_param(&params, "key"), Ok(5));
        assert!(int_param(&params, "limit").is_err());
    }
}
