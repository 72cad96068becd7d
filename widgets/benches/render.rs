//! Render cost of a full 120×36 frame in the streaming state, and update cost per streamed
//! token. Run: `cargo bench -p operator-widgets`. Prints medians of 15 batches.

use std::hint::black_box;
use std::time::Instant;

use operator_protocol::*;
use operator_widgets::update::{EngineUpdate, Msg};
use operator_widgets::view::{ActionRow, Header, TicketRow, View};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn streaming_view() -> View {
    let mut view = View {
        header: Header {
            subject: "ratelimiter".into(),
            target: "local".into(),
            brain: "rules".into(),
            mode: Some(Mode::Execute),
            clock: "12:00:00 UTC".into(),
            ..Header::default()
        },
        ..View::default()
    };
    let nodes = (1..=3)
        .map(|i| NodeStatus {
            id: NodeId(format!("node-{i}")),
            role: "node".into(),
            health: Health::Healthy,
            facts: [
                ("p99_ms".to_string(), serde_json::json!(0.6)),
                ("checks_per_sec".to_string(), serde_json::json!(67)),
            ]
            .into_iter()
            .collect(),
        })
        .collect();
    operator_widgets::update(
        &mut view,
        Msg::Engine(EngineUpdate::Observed {
            nodes,
            workload: Some(WorkloadSample {
                ops_per_sec: 200.0,
                ..Default::default()
            }),
            violations: vec![],
        }),
    );
    view.ops_history = (0..240).map(|i| 180 + i % 40).collect();
    for id in 1..=12 {
        operator_widgets::update(
            &mut view,
            Msg::Engine(EngineUpdate::Ticket(TicketRow {
                id,
                incident: id,
                status: TicketStatus::Diagnosing,
                invariant: "high_latency".into(),
                target: "node-2".into(),
                severity: Severity::Warning,
                occurrences: 3,
                message: "p99 high".into(),
                reason: None,
                opened_ms: 0,
                detect_ms: Some(240),
                diagnose_ms: None,
                mitigate_ms: None,
            })),
        );
        operator_widgets::update(
            &mut view,
            Msg::Engine(EngineUpdate::Action(ActionRow {
                id,
                ticket: Some(12),
                name: "restart_node".into(),
                params: r#"{"node":"node-2"}"#.into(),
                status: ActionStatus::Validated,
                approved: false,
                rejected: false,
                attempts: 0,
                max_attempts: 3,
                error: None,
                outcome: None,
                destroys: None,
                waiting: None,
                undo: None,
                irreversible: None,
                disruptive: true,
            })),
        );
    }
    let sentence = "The node's p99 rose while Redis kept answering within a fraction of a millisecond, so the delay lives in the node. ";
    for _ in 0..200 {
        operator_widgets::update(
            &mut view,
            Msg::Engine(EngineUpdate::Reasoning {
                ticket: 12,
                event: ReasoningEvent::Text {
                    text: format!("{sentence}\n"),
                },
            }),
        );
    }
    operator_widgets::update(
        &mut view,
        Msg::Engine(EngineUpdate::Reasoning {
            ticket: 12,
            event: ReasoningEvent::Text {
                text: "and mid-sente".into(),
            },
        }),
    );
    view
}

/// 200 stores (one down, a few degraded) and 2,000 tickets, most resolved, each with its
/// action: the views must not grow with the cluster or the history.
fn large_view() -> View {
    let mut view = streaming_view();
    let nodes = (1..=200)
        .map(|i| NodeStatus {
            id: NodeId(format!("store-{i}")),
            role: "tikv".into(),
            health: match i {
                137 => Health::Down,
                i if i % 50 == 0 => Health::Degraded,
                _ => Health::Healthy,
            },
            facts: [("leaders".to_string(), serde_json::json!(1000 + i))]
                .into_iter()
                .collect(),
        })
        .collect();
    operator_widgets::update(
        &mut view,
        Msg::Engine(EngineUpdate::Observed {
            nodes,
            workload: None,
            violations: vec![],
        }),
    );
    for id in 13..=2000 {
        operator_widgets::update(
            &mut view,
            Msg::Engine(EngineUpdate::Ticket(TicketRow {
                id,
                incident: id,
                status: TicketStatus::Resolved,
                invariant: "slow_store".into(),
                target: format!("store-{}", id % 200 + 1),
                severity: Severity::Warning,
                occurrences: 2,
                message: "slow".into(),
                reason: Some("verified".into()),
                opened_ms: id as u64,
                detect_ms: Some(300),
                diagnose_ms: Some(20),
                mitigate_ms: Some(4000),
            })),
        );
        operator_widgets::update(
            &mut view,
            Msg::Engine(EngineUpdate::Action(ActionRow {
                id,
                ticket: Some(id),
                name: "transfer_leader".into(),
                params: r#"{"region":1}"#.into(),
                status: ActionStatus::Completed,
                approved: false,
                rejected: false,
                attempts: 1,
                max_attempts: 3,
                error: None,
                outcome: Some("moved".into()),
                destroys: None,
                waiting: None,
                undo: None,
                irreversible: None,
                disruptive: false,
            })),
        );
    }
    view
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The median cost of drawing `view` on a 120×36 screen, over 15 batches.
fn median_frame_us(view: &View, frames_per_batch: usize) -> f64 {
    let area = Rect::new(0, 0, 120, 36);
    let mut buffer = Buffer::empty(area);
    let per_frame = (0..15)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..frames_per_batch {
                buffer.reset();
                operator_widgets::screen::render(black_box(view), area, &mut buffer);
            }
            started.elapsed().as_secs_f64() * 1e6 / frames_per_batch as f64
        })
        .collect();
    median(per_frame)
}

fn main() {
    let frames_per_batch = 200;
    for (name, view) in [
        ("streaming frame", streaming_view()),
        ("frame, 200 stores and 2,000 tickets", large_view()),
    ] {
        println!(
            "render 120x36 {name}: median {:.1} µs per frame (15 batches of {frames_per_batch})",
            median_frame_us(&view, frames_per_batch)
        );
    }

    let tokens_per_batch = 5000;
    let per_token: Vec<f64> = (0..15)
        .map(|_| {
            let mut view = streaming_view();
            let started = Instant::now();
            for i in 0..tokens_per_batch {
                let text = if i % 12 == 11 {
                    "word\n".to_string()
                } else {
                    "word ".to_string()
                };
                operator_widgets::update(
                    &mut view,
                    Msg::Engine(EngineUpdate::Reasoning {
                        ticket: 12,
                        event: ReasoningEvent::Text { text },
                    }),
                );
            }
            started.elapsed().as_secs_f64() * 1e9 / tokens_per_batch as f64
        })
        .collect();
    let ns = median(per_token);
    println!(
        "update per streamed token: median {ns:.0} ns; 500 tokens/s cost {:.3}% of one core before drawing",
        ns * 500.0 / 1e7
    );
}
