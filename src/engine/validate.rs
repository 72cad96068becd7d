//! Parameter validation against the action catalog, and the checks a brain's diagnosis must
//! pass before anything runs on it. Brain output is untrusted input; this is its border.

use std::collections::BTreeSet;

use operator_protocol::{ActionRequest, ActionSpec, Diagnosis, NodeId};

/// Checks one request against the catalog; the error says what is wrong in words.
/// `nodes` is `None` where the cluster's nodes are not known (the command line): a node
/// parameter is then only checked to be a name, and the running engine checks it again.
pub fn validate_request(
    catalog: &[ActionSpec],
    request: &ActionRequest,
    nodes: Option<&[NodeId]>,
) -> Result<(), String> {
    let Some(spec) = catalog.iter().find(|s| s.name == request.action) else {
        let names: Vec<&str> = catalog.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "unknown action {:?}; the catalog has: {}",
            request.action,
            names.join(", ")
        ));
    };
    operator_protocol::check_params(&spec.name, &spec.params, &request.params, nodes)
}

/// Everything a diagnosis must satisfy before its actions are even proposed.
pub fn validate_diagnosis(
    diagnosis: &Diagnosis,
    catalog: &[ActionSpec],
    nodes: &[NodeId],
) -> Result<(), String> {
    if diagnosis.summary.trim().is_empty() {
        return Err("the diagnosis has no summary".into());
    }
    if diagnosis.root_cause.category.trim().is_empty() {
        return Err("the diagnosis names no root-cause category".into());
    }
    if !(0.0..=1.0).contains(&diagnosis.confidence) || diagnosis.confidence.is_nan() {
        return Err(format!(
            "confidence {} is outside 0..1",
            diagnosis.confidence
        ));
    }
    let mut disrupted = BTreeSet::new();
    for (i, recommended) in diagnosis.recommended_actions.iter().enumerate() {
        let request = ActionRequest {
            action: recommended.action.clone(),
            params: recommended.params.clone(),
        };
        validate_request(catalog, &request, Some(nodes))
            .map_err(|e| format!("recommended action {}: {e}", i + 1))?;
        let spec = catalog
            .iter()
            .find(|s| s.name == request.action)
            .expect("validated above");
        disrupted.extend(spec.disrupted_node(&request));
    }
    // Restarting "every node" one by one is still a cluster-wide outage.
    if !nodes.is_empty() && disrupted.len() * 2 > nodes.len() {
        return Err(format!(
            "the plan disrupts {} of {} nodes ({}); the policy never disrupts a majority",
            disrupted.len(),
            nodes.len(),
            disrupted
                .iter()
                .map(|n| n.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use operator_protocol::Risk;
    use operator_protocol::{ParamKind, ParamSpec};
    use serde_json::json;

    fn catalog() -> Vec<ActionSpec> {
        vec![ActionSpec::new(
            "update_limit",
            "",
            vec![
                ParamSpec::new("node", "", ParamKind::Node),
                ParamSpec::new("limit", "", ParamKind::Integer { min: 1, max: 100 }),
                ParamSpec::new(
                    "mode",
                    "",
                    ParamKind::Enum {
                        values: vec!["a".into(), "b".into()],
                    },
                ),
            ],
            Risk::Safe,
        )]
    }

    fn request(params: serde_json::Value) -> ActionRequest {
        ActionRequest {
            action: "update_limit".into(),
            params: serde_json::from_value(params).unwrap(),
        }
    }

    #[test]
    fn valid_requests_pass_and_each_kind_of_bad_param_is_named() {
        let nodes = vec![NodeId::from("n1")];
        let ok = request(json!({"node": "n1", "limit": 5, "mode": "a"}));
        assert_eq!(validate_request(&catalog(), &ok, Some(&nodes)), Ok(()));
        let cases = [
            (json!({"node": "n9", "limit": 5, "mode": "a"}), "not a node"),
            (
                json!({"node": "n1", "limit": 500, "mode": "a"}),
                "outside 1..=100",
            ),
            (
                json!({"node": "n1", "limit": "5", "mode": "a"}),
                "not an integer",
            ),
            (json!({"node": "n1", "limit": 5, "mode": "c"}), "not one of"),
            (json!({"node": "n1", "mode": "a"}), "missing parameter"),
            (
                json!({"node": "n1", "limit": 5, "mode": "a", "x": 1}),
                "unknown parameter",
            ),
        ];
        for (params, expected) in cases {
            let err =
                validate_request(&catalog(), &request(params.clone()), Some(&nodes)).unwrap_err();
            assert!(err.contains(expected), "{params}: {err}");
        }
        let unknown = ActionRequest {
            action: "rm_rf".into(),
            params: Default::default(),
        };
        assert!(
            validate_request(&catalog(), &unknown, Some(&nodes))
                .unwrap_err()
                .contains("unknown action")
        );
    }
}
