//! The cost-against-benefit rule walked over every catalog action: each declares what it buys
//! and how long the trouble and its loss last, and each weighs as its subject means it to on
//! a trouble that ends by itself in 3.2 s (a key's window) against one that lasts until
//! someone acts. Only a reset, whose lost count lasts exactly as long as the drift it ends,
//! waits; everything else destroys nothing lasting and runs.

use std::collections::BTreeMap;

use operator_protocol::{ActionSpec, Span};
use operator_tui::engine::general_actions;
use operator_tui::engine::worth::{Lasting, Spans, Weighing, weigh};
use serde_json::json;

const FACTOR: f64 = 2.0;

/// A measured span as its tool would answer now: 3.2 s left.
fn as_read(span: &Span) -> Lasting {
    Lasting::declared(span).unwrap_or(Lasting::For(3200))
}

fn weighed(spec: &ActionSpec) -> Weighing {
    let worth = spec
        .worth
        .as_ref()
        .unwrap_or_else(|| panic!("{} does not say what it buys", spec.name));
    assert!(!worth.buys.is_empty(), "{}", spec.name);
    let params = BTreeMap::from([
        ("key".to_string(), json!("demo-1")),
        ("node".to_string(), json!("node-2")),
    ]);
    for span in [&worth.trouble_lasts, &worth.loss_lasts] {
        if let Some(call) = span.call(&params) {
            assert!(!call.tool.is_empty(), "{}", spec.name);
            assert!(span.ends(&params).is_some(), "{}", spec.name);
        }
    }
    let ends = worth.trouble_lasts.ends(&params);
    weigh(
        spec,
        &Spans {
            trouble: as_read(&worth.trouble_lasts),
            loss: as_read(&worth.loss_lasts),
            trouble_ends: ends.as_deref(),
        },
        FACTOR,
    )
}

fn walk(catalog: Vec<ActionSpec>, waits: &[&str]) {
    for spec in catalog.iter().chain(&general_actions::specs()) {
        let weighing = weighed(spec);
        if waits.contains(&spec.name.as_str()) {
            let Weighing::Wait { for_ms, reason } = &weighing else {
                panic!("{} should wait: {weighing:?}", spec.name);
            };
            assert_eq!(*for_ms, 3200, "{}", spec.name);
            assert!(reason.contains(" in 3.2 s; "), "{reason}");
            assert!(
                reason.contains(spec.destroys.as_deref().unwrap()),
                "{reason}"
            );
        } else {
            assert_eq!(weighing, Weighing::Worth, "{}", spec.name);
        }
    }
}

#[test]
fn every_rate_limiter_action_weighs_as_meant_and_only_a_reset_waits_for_the_window() {
    let nodes = ["node-1", "node-2", "node-3"].map(String::from);
    let catalog = operator_ratelimiter::actions::specs(&nodes);
    let reset = catalog.iter().find(|s| s.name == "reset_counter").unwrap();
    let Weighing::Wait { reason, .. } = weighed(reset) else {
        panic!("a reset runs");
    };
    assert_eq!(
        reason,
        "waiting: the drift on demo-1 ends with its window in 3.2 s; reset_counter would destroy the key's count for the current window: its clients get a fresh quota"
    );
    walk(catalog, &["reset_counter"]);
}

#[test]
fn every_tikv_action_weighs_as_meant_and_none_waits() {
    let nodes = ["pd1", "store-1", "store-2", "store-3"].map(String::from);
    walk(operator_tikv::actions::specs(&nodes), &[]);
}
