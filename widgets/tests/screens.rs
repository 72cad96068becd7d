//! Snapshot tests of every pane in its meaningful states, whole screens at 120×36 and 80×24,
//! a styled snapshot where colour carries meaning, and update tests: key → message → state
//! and effects. Snapshots live in the repository's snapshots/ folder.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use operator_protocol::*;
use operator_widgets::chapters::{ChapterBook, ChapterRun};
use operator_widgets::update::{Command, Effect, EngineUpdate, Msg};
use operator_widgets::view::*;
use operator_widgets::{handle_key, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

fn node(id: &str, health: Health, p99: f64, rate: f64) -> NodeStatus {
    NodeStatus {
        id: NodeId::from(id),
        role: "node".into(),
        health,
        facts: [
            ("checks_per_sec".to_string(), json!(rate)),
            ("p99_ms".to_string(), json!(p99)),
        ]
        .into_iter()
        .collect(),
    }
}

fn book() -> ChapterBook {
    toml::from_str(include_str!("../../demo-chapters/ratelimiter.toml")).unwrap()
}

/// A healthy three-node cluster under traffic, in execute mode.
fn healthy() -> View {
    let mut view = View {
        header: Header {
            subject: "ratelimiter".into(),
            target: "local".into(),
            simulated: false,
            brain: "rules".into(),
            mode: Some(Mode::Execute),
            kill_switch: false,
            clock: "14:03:22".into(),
            ..Header::default()
        },
        ..View::default()
    };
    let mut nodes = vec![
        node("node-1", Health::Healthy, 0.61, 67.0),
        node("node-2", Health::Healthy, 0.58, 66.0),
        node("node-3", Health::Healthy, 0.64, 68.0),
    ];
    nodes.push(NodeStatus {
        id: NodeId::from("redis"),
        role: "redis".into(),
        health: Health::Healthy,
        facts: [("latency_ms".to_string(), json!(0.12))]
            .into_iter()
            .collect(),
    });
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Observed {
            nodes,
            workload: Some(WorkloadSample {
                ops_per_sec: 201.0,
                split: [("allowed".into(), 193.0), ("denied".into(), 8.0)]
                    .into_iter()
                    .collect(),
                errors_per_sec: 0.0,
            }),
            violations: vec![],
        }),
    );
    view.ops_history = (0..120).map(|i| 190 + (i * 7 % 23)).collect();
    // Allowed dips for a few samples while denied surges: both must show.
    view.split_history = (0..120u64)
        .map(|i| {
            let dip = (90..96).contains(&i);
            [
                (
                    "allowed".to_string(),
                    if dip { 120 } else { 190 + (i * 7 % 11) },
                ),
                ("denied".to_string(), if dip { 80 } else { 8 + i % 3 }),
            ]
            .into_iter()
            .collect()
        })
        .collect();
    view.chaos = [
        "kill_node",
        "pause_node",
        "kill_redis",
        "node_latency",
        "counter_drift",
        "ghost_allow",
    ]
    .iter()
    .map(|n| ChaosEntry {
        name: n.to_string(),
        description: format!("inject {n}"),
        breaks: "node_down".into(),
    })
    .collect();
    view.chapters = ChapterRun::new(book(), false);
    view.now_ms = 1_000_000;
    view.chapters.enter(0, view.now_ms);
    view
}

fn ticket(id: i64, status: TicketStatus) -> TicketRow {
    TicketRow {
        id,
        incident: id,
        status,
        invariant: "node_down".into(),
        target: "node-2".into(),
        severity: Severity::Critical,
        occurrences: 4,
        message: "node-2 does not answer: connection refused".into(),
        reason: None,
        opened_ms: 1_000_240,
        detect_ms: Some(240),
        diagnose_ms: None,
        mitigate_ms: None,
    }
}

fn ticket_on(id: i64, invariant: &str, status: TicketStatus) -> TicketRow {
    TicketRow {
        invariant: invariant.into(),
        ..ticket(id, status)
    }
}

fn node_down() -> View {
    let mut view = healthy();
    view.nodes[1] = NodeStatus {
        facts: Default::default(),
        ..node("node-2", Health::Down, 0.0, 0.0)
    };
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Ticket(ticket(1, TicketStatus::Diagnosing))),
    );
    view
}

const REASONING: &str = "Ticket #1: node_down on node-2 — node-2 does not answer: connection refused\nRunbook: A rate limiter node does not answer /health. 3 hypotheses to tell apart.\n• process_crash: the node's process has exited\n    ✓ the process has exited (exited)\n• process_stalled: the process exists but is stopped: it holds its port and answers nothing\n    ✗ the process is stopped: found exited, expected = \"stopped\"\n";

fn streaming() -> View {
    let mut view = node_down();
    let text = format!("{REASONING}• node_unreachable: the process runs but its HTTP endp");
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Reasoning {
            ticket: 1,
            event: ReasoningEvent::Text { text },
        }),
    );
    view
}

fn diagnosis() -> Diagnosis {
    Diagnosis {
        summary: "node_down on node-2: most likely process_crash".into(),
        root_cause: RootCause {
            category: "process_crash".into(),
            explanation: "the node's process has exited".into(),
        },
        evidence: vec![Evidence {
            source: "node_detail".into(),
            observation: "the process has exited (exited)".into(),
        }],
        alternatives: vec![
            Alternative {
                category: "process_stalled".into(),
                why_rejected: "the process is stopped: found exited, expected = \"stopped\"".into(),
            },
            Alternative {
                category: "node_unreachable".into(),
                why_rejected: "the process is running: found exited, expected = \"running\"".into(),
            },
        ],
        recommended_actions: vec![RecommendedAction {
            action: "restart_node".into(),
            params: [("node".to_string(), json!("node-2"))]
                .into_iter()
                .collect(),
            rationale: "a crashed stateless node comes back clean with a restart".into(),
            after_ms: None,
        }],
        confidence: 0.99,
        cost: Cost {
            tool_calls: 1,
            ..Cost::default()
        },
    }
}

fn action(id: i64, status: ActionStatus) -> ActionRow {
    ActionRow {
        id,
        ticket: Some(1),
        name: "restart_node".into(),
        params: r#"{"node":"node-2"}"#.into(),
        status,
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
    }
}

fn diagnosed() -> View {
    let mut view = node_down();
    let text = format!(
        "{REASONING}• node_unreachable: the process runs but its HTTP endpoint cannot be reached\n    ✗ the process is running: found exited, expected = \"running\"\nConclusion: process_crash (score 1.00, margin 2.00, confidence 99%).\n"
    );
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Reasoning {
            ticket: 1,
            event: ReasoningEvent::Text { text },
        }),
    );
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Diagnosis {
            ticket: 1,
            diagnosis: Box::new(diagnosis()),
        }),
    );
    let mut t = ticket(1, TicketStatus::Diagnosed);
    t.diagnose_ms = Some(12);
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Action(action(1, ActionStatus::Validated))),
    );
    view
}

fn awaiting_approval() -> View {
    let mut view = diagnosed();
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Settings {
            mode: Mode::Approve,
            kill_switch: false,
        }),
    );
    view
}

/// Execute mode, but the diagnosis is not confident enough for a restart: the action waits
/// for a human and says why, and what approving it would give away.
fn gated() -> View {
    let mut view = node_down();
    let text = "• process_stalled: the process exists but is stopped\n    ✓ the process answers nothing (timeout)\nConclusion: process_stalled (score 0.40, margin 0.10, confidence 62%).\n";
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Reasoning {
            ticket: 1,
            event: ReasoningEvent::Text { text: text.into() },
        }),
    );
    let mut guess = diagnosis();
    guess.root_cause = RootCause {
        category: "process_stalled".into(),
        explanation: "the process is stopped and holds its port".into(),
    };
    guess.alternatives.clear();
    guess.confidence = 0.62;
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Diagnosis {
            ticket: 1,
            diagnosis: Box::new(guess),
        }),
    );
    let mut t = ticket(1, TicketStatus::Diagnosed);
    t.diagnose_ms = Some(12);
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    let mut a = action(1, ActionStatus::Validated);
    a.destroys = Some("the node's in-memory state (its local counts and caches)".into());
    a.waiting = Some("waiting for a human: confidence 62 % < 85 % for a disruptive action".into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(a)));
    view
}

/// The brain found no cause the evidence supports: nothing runs, a human is asked.
fn unknown_cause() -> View {
    let mut view = node_down();
    let mut unknown = diagnosis();
    unknown.summary = "node_down on node-2: no known cause fits the evidence".into();
    unknown.root_cause = RootCause {
        category: UNKNOWN_ROOT_CAUSE.into(),
        explanation: "every hypothesis was refuted by its own evidence".into(),
    };
    unknown.alternatives.push(Alternative {
        category: "process_crash".into(),
        why_rejected: "the process has exited: found \"running\", expected = \"exited\"".into(),
    });
    unknown.recommended_actions.clear();
    unknown.confidence = 0.0;
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Diagnosis {
            ticket: 1,
            diagnosis: Box::new(unknown),
        }),
    );
    let mut t = ticket(1, TicketStatus::Escalated);
    t.diagnose_ms = Some(12);
    t.reason = Some("needs a human: no known cause fits the evidence".into());
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    view
}

/// The brain said restart, the executor's fresh read said the node serves: not run.
fn premise_failed() -> View {
    let mut view = diagnosed();
    let mut t = ticket(1, TicketStatus::Escalated);
    t.diagnose_ms = Some(12);
    t.reason = Some("needs a human: action A1 restart_node did not run: its premise failed: the node is not serving normally does not hold".into());
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    let mut a = action(1, ActionStatus::PremiseFailed);
    a.attempts = 1;
    a.destroys = Some("the node's in-memory state".into());
    a.error = Some("its premise failed: the node is not serving normally does not hold (the process has exited: found \"running\", expected = \"exited\")".into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(a)));
    view
}

fn resolved() -> View {
    let mut view = diagnosed();
    view.nodes[1] = node("node-2", Health::Healthy, 0.7, 60.0);
    let mut t = ticket(1, TicketStatus::Resolved);
    t.diagnose_ms = Some(12);
    t.mitigate_ms = Some(1004);
    t.reason = Some("verified: node_down held for 3 consecutive checks".into());
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    let mut a = action(1, ActionStatus::Completed);
    a.attempts = 1;
    a.outcome = Some("node-2 restarted and healthy".into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(a)));
    view
}

fn kill_switch_on() -> View {
    let mut view = diagnosed();
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Settings {
            mode: Mode::Execute,
            kill_switch: true,
        }),
    );
    let mut a = action(1, ActionStatus::Cancelled);
    a.error = Some("stopped by the kill switch".into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(a)));
    view
}

fn screen(view: &View, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| operator_widgets::draw(frame, view))
        .unwrap();
    terminal.backend().to_string()
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Presses a key and applies what it means.
fn press(view: &mut View, code: KeyCode) -> Vec<Effect> {
    match handle_key(view, key(code)) {
        Some(msg) => update(view, msg),
        None => vec![],
    }
}

#[test]
fn screens_at_120_by_36() {
    let empty = View {
        header: Header {
            subject: "ratelimiter".into(),
            brain: "rules".into(),
            ..Header::default()
        },
        ..View::default()
    };
    snap!("screen_empty_120x36", screen(&empty, 120, 36));
    snap!("screen_healthy_120x36", screen(&healthy(), 120, 36));
    snap!("screen_node_down_120x36", screen(&node_down(), 120, 36));
    snap!("screen_streaming_120x36", screen(&streaming(), 120, 36));
    snap!("screen_diagnosis_120x36", screen(&diagnosed(), 120, 36));
    snap!(
        "screen_awaiting_approval_120x36",
        screen(&awaiting_approval(), 120, 36)
    );
    snap!("screen_resolved_120x36", screen(&resolved(), 120, 36));
    snap!(
        "screen_kill_switch_on_120x36",
        screen(&kill_switch_on(), 120, 36)
    );
    snap!("screen_gated_120x36", screen(&gated(), 120, 36));
    snap!(
        "screen_unknown_cause_120x36",
        screen(&unknown_cause(), 120, 36)
    );
    snap!(
        "screen_premise_failed_120x36",
        screen(&premise_failed(), 120, 36)
    );
}

#[test]
fn screens_at_80_by_24() {
    snap!("screen_healthy_80x24", screen(&healthy(), 80, 24));
    snap!("screen_streaming_80x24", screen(&streaming(), 80, 24));
    snap!(
        "screen_awaiting_approval_80x24",
        screen(&awaiting_approval(), 80, 24)
    );
    snap!("screen_gated_80x24", screen(&gated(), 80, 24));
}

#[test]
fn popups() {
    let mut help = healthy();
    press(&mut help, KeyCode::Char('?'));
    snap!("popup_help_120x36", screen(&help, 120, 36));
    let mut chaos = healthy();
    press(&mut chaos, KeyCode::Char('c'));
    snap!("popup_chaos_120x36", screen(&chaos, 120, 36));
    let mut prompt = diagnosed();
    press(&mut prompt, KeyCode::Char('/'));
    for c in "why did node-2 die?".chars() {
        press(&mut prompt, KeyCode::Char(c));
    }
    snap!("popup_prompt_120x36", screen(&prompt, 120, 36));
    let mut confirm = diagnosed();
    press(&mut confirm, KeyCode::Char('K'));
    snap!("popup_kill_switch_80x24", screen(&confirm, 80, 24));
    let mut approval = gated();
    press(&mut approval, KeyCode::Char('a'));
    snap!("popup_confirm_approval_120x36", screen(&approval, 120, 36));
}

/// Where colour carries meaning: a down node in red, the action awaiting approval on yellow.
#[test]
fn styles_that_carry_meaning() {
    let view = awaiting_approval();
    let mut terminal = Terminal::new(TestBackend::new(60, 6)).unwrap();
    terminal
        .draw(|frame| {
            let area = frame.area();
            let [top, bottom] =
                ratatui::layout::Layout::vertical([ratatui::layout::Constraint::Length(6); 2])
                    .areas(ratatui::layout::Rect { height: 12, ..area });
            operator_widgets::panes::cluster::render(&view, top, frame.buffer_mut());
            let _ = bottom;
        })
        .unwrap();
    snap!(
        "styled_cluster_node_down",
        format!("{:?}", terminal.backend().buffer())
    );
    let mut terminal = Terminal::new(TestBackend::new(70, 4)).unwrap();
    terminal
        .draw(|frame| {
            operator_widgets::panes::actions::render(&view, frame.area(), frame.buffer_mut())
        })
        .unwrap();
    snap!(
        "styled_action_awaiting_approval",
        format!("{:?}", terminal.backend().buffer())
    );
}

#[test]
fn the_footer_comes_from_the_keymap() {
    let lines: Vec<String> = operator_widgets::BINDINGS
        .iter()
        .map(|b| {
            format!(
                "{:>5}  {}{}",
                b.label,
                b.help,
                b.footer
                    .map(|w| format!("  [footer: {w}]"))
                    .unwrap_or_default()
            )
        })
        .collect();
    snap!("keymap", lines.join("\n"));
}

#[test]
fn chaos_keys_inject_the_fault_by_number_or_from_the_menu() {
    let mut view = healthy();
    assert_eq!(
        press(&mut view, KeyCode::Char('3')),
        [Effect::InjectChaos("kill_redis".into())]
    );
    press(&mut view, KeyCode::Char('c'));
    assert_eq!(view.ui.top_popup(), Some(Popup::Chaos));
    assert_eq!(
        press(&mut view, KeyCode::Char('a')),
        [],
        "other keys do nothing while the menu is open"
    );
    assert_eq!(
        press(&mut view, KeyCode::Char('5')),
        [Effect::InjectChaos("counter_drift".into())]
    );
    assert_eq!(view.ui.top_popup(), None, "picking closes the menu");
    assert_eq!(press(&mut view, KeyCode::Char('9')), [], "no ninth fault");
}

#[test]
fn approve_and_reject_target_the_action_awaiting_a_human() {
    let mut view = awaiting_approval();
    assert_eq!(press(&mut view, KeyCode::Char('a')), [Effect::Approve(1)]);
    assert_eq!(press(&mut view, KeyCode::Char('r')), [Effect::Reject(1)]);
    let mut done = resolved();
    assert_eq!(press(&mut done, KeyCode::Char('a')), []);
    assert!(done.notices.back().unwrap().contains("already completed"));
}

#[test]
fn approving_what_destroys_something_asks_after_saying_what() {
    let mut view = gated();
    assert_eq!(view.waiting_for_a_human(), 1);
    assert_eq!(press(&mut view, KeyCode::Char('a')), []);
    assert_eq!(view.ui.top_popup(), Some(Popup::ConfirmApproval(1)));
    assert_eq!(press(&mut view, KeyCode::Esc), [], "anything but y cancels");
    assert_eq!(view.ui.top_popup(), None);
    press(&mut view, KeyCode::Char('a'));
    assert_eq!(press(&mut view, KeyCode::Char('y')), [Effect::Approve(1)]);
    assert_eq!(view.ui.top_popup(), None);
}

#[test]
fn the_kill_switch_asks_before_engaging_but_not_before_releasing() {
    let mut view = diagnosed();
    assert_eq!(press(&mut view, KeyCode::Char('K')), []);
    assert_eq!(view.ui.top_popup(), Some(Popup::ConfirmKillSwitch));
    assert_eq!(
        press(&mut view, KeyCode::Char('n')),
        [],
        "anything but y cancels"
    );
    assert_eq!(view.ui.top_popup(), None);
    press(&mut view, KeyCode::Char('K'));
    assert_eq!(
        press(&mut view, KeyCode::Char('y')),
        [Effect::KillSwitch(true)]
    );
    let mut on = kill_switch_on();
    assert_eq!(
        press(&mut on, KeyCode::Char('K')),
        [Effect::KillSwitch(false)]
    );
}

#[test]
fn mode_cycles_and_quit_quits() {
    let mut view = awaiting_approval();
    assert_eq!(
        press(&mut view, KeyCode::Char('m')),
        [Effect::SetMode(Mode::Execute)]
    );
    assert_eq!(press(&mut view, KeyCode::Char('q')), [Effect::Quit]);
    assert_eq!(
        update(&mut view, Msg::Command(Command::Quit)),
        [Effect::Quit]
    );
}

#[test]
fn the_prompt_takes_text_and_sends_it_as_a_question() {
    let mut view = diagnosed();
    press(&mut view, KeyCode::Char('/'));
    for c in "is redis ok?".chars() {
        assert_eq!(
            press(&mut view, KeyCode::Char(c)),
            [],
            "typing is text, not commands"
        );
    }
    assert_eq!(
        press(&mut view, KeyCode::Enter),
        [Effect::Ask("is redis ok?".into())]
    );
    assert_eq!(view.ui.top_popup(), None);
    press(&mut view, KeyCode::Char('/'));
    press(&mut view, KeyCode::Char('x'));
    assert_eq!(press(&mut view, KeyCode::Esc), []);
    assert_eq!(view.ui.top_popup(), None);
}

/// Redis went away: the drift and latency it caused sit under it, one incident, and a
/// separate problem stays its own.
fn incident() -> View {
    let mut view = node_down();
    view.tickets.clear();
    let mut cause = ticket_on(3, "redis_disconnected", TicketStatus::Acting);
    cause.target = "redis".into();
    let mut drift = ticket_on(5, "counter_drift", TicketStatus::Open);
    drift.target = "demo-hot".into();
    drift.incident = 3;
    let mut slow = ticket_on(6, "high_latency", TicketStatus::Open);
    slow.incident = 3;
    let other = ticket_on(4, "node_down", TicketStatus::Diagnosed);
    for row in [slow, cause, other, drift] {
        update(&mut view, Msg::Engine(EngineUpdate::Ticket(row)));
    }
    view
}

#[test]
fn an_incidents_symptoms_sit_under_its_cause() {
    let view = incident();
    let order: Vec<i64> = view.tickets.iter().map(|t| t.id).collect();
    assert_eq!(
        order,
        vec![4, 3, 5, 6],
        "newest incident first, its cause first"
    );
    snap!("pane_tickets_incident", screen(&view, 120, 36));
}

#[test]
fn selection_moves_between_tickets_and_the_reasoning_follows() {
    let mut view = resolved();
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Ticket(ticket_on(
            2,
            "high_latency",
            TicketStatus::Open,
        ))),
    );
    assert_eq!(
        view.selected_ticket().unwrap().id,
        2,
        "the newest ticket is selected by default"
    );
    press(&mut view, KeyCode::Down);
    assert_eq!(view.selected_ticket().unwrap().id, 1);
    press(&mut view, KeyCode::PageUp);
    assert_eq!(view.ui.reasoning_scroll, 3);
    press(&mut view, KeyCode::Up);
    assert_eq!(
        (view.selected_ticket().unwrap().id, view.ui.reasoning_scroll),
        (2, 0)
    );
}

#[test]
fn streaming_text_is_split_into_lines_as_it_arrives() {
    let mut view = node_down();
    for piece in [
        "Ticket #1: node",
        "_down on node-2\nRunb",
        "ook: …\n",
        "• process",
    ] {
        update(
            &mut view,
            Msg::Engine(EngineUpdate::Reasoning {
                ticket: 1,
                event: ReasoningEvent::Text { text: piece.into() },
            }),
        );
    }
    let t = &view.transcripts[&1];
    assert_eq!(t.lines, ["Ticket #1: node_down on node-2", "Runbook: …"]);
    assert_eq!(t.partial, "• process");
}

#[test]
fn autoplay_injects_the_chapter_fault_when_its_countdown_ends() {
    let mut view = healthy();
    view.chapters = ChapterRun::new(book(), true);
    let tick = |view: &mut View, now_ms: u64| {
        update(
            view,
            Msg::Tick {
                now_ms,
                clock: String::new(),
            },
        )
    };
    let mut injected = vec![];
    for s in 0..40 {
        injected.extend(tick(&mut view, 1_000_000 + s * 1000));
    }
    assert_eq!(
        injected.first(),
        Some(&Effect::InjectChaos(
            book()
                .chapters
                .iter()
                .find_map(|c| c.fault.clone())
                .unwrap()
        ))
    );
}

#[test]
fn undo_asks_after_saying_what_runs_and_an_irreversible_action_says_why_not() {
    let mut view = node_down();
    let mut limit = action(1, ActionStatus::Completed);
    limit.name = "update_limit".into();
    limit.undo = Some(r#"update_limit {"key":"k","limit":100,"window_ms":1000}"#.into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(limit)));
    assert_eq!(press(&mut view, KeyCode::Char('u')), []);
    assert_eq!(view.ui.top_popup(), Some(Popup::ConfirmUndo(1)));
    let text = screen(&view, 120, 36);
    assert!(text.contains("Undo A1 update_limit"), "{text}");
    assert!(
        text.contains(r#"It runs: update_limit {"key":"k","limit":100"#),
        "{text}"
    );
    assert_eq!(press(&mut view, KeyCode::Char('y')), [Effect::Undo(1)]);
    assert_eq!(view.ui.top_popup(), None);

    let mut restart = action(1, ActionStatus::Completed);
    restart.irreversible = Some("a restart drops the process's in-memory state".into());
    update(&mut view, Msg::Engine(EngineUpdate::Action(restart)));
    assert_eq!(press(&mut view, KeyCode::Char('u')), []);
    assert_eq!(view.ui.top_popup(), None);
    assert_eq!(
        view.notices.back().map(String::as_str),
        Some("A1 restart_node cannot be taken back: a restart drops the process's in-memory state")
    );
}

/// The rate limiter's catalog as the picker sees it: a node action, a typed number, an enum.
fn catalog() -> Vec<ActionSpec> {
    let mut restart = ActionSpec::new(
        "restart_node",
        "Restart a node's process",
        vec![ParamSpec::new(
            "node",
            "The node to restart",
            ParamKind::Node,
        )],
        Risk::Disruptive,
    );
    restart.node_param = Some("node".into());
    restart.destroys = Some("the node's in-flight requests".into());
    restart.reversal = Reversal::irreversible("a restart cannot be taken back");
    restart.premises = vec![Premise {
        description: "the node is not serving normally".into(),
        any_of: vec![],
    }];
    let mut limit = ActionSpec::new(
        "update_limit",
        "Change one key's limit",
        vec![
            ParamSpec::new("key", "The key", ParamKind::String { max_len: 64 }),
            ParamSpec::new(
                "limit",
                "Checks allowed per window",
                ParamKind::Integer {
                    min: 1,
                    max: 100_000,
                },
            ),
            ParamSpec::new(
                "window",
                "The window",
                ParamKind::Enum {
                    values: vec!["1s".into(), "60s".into()],
                },
            ),
        ],
        Risk::Safe,
    );
    limit.reversal = Reversal::NothingToUndo;
    limit.loosens = Some("it can raise a key's limit".into());
    vec![restart, limit]
}

fn type_text(view: &mut View, text: &str) {
    for c in text.chars() {
        press(view, KeyCode::Char(c));
    }
}

#[test]
fn a_human_picks_an_action_fills_its_typed_params_and_sends_it() {
    let mut view = unknown_cause();
    view.catalog = catalog();
    press(&mut view, KeyCode::Char('x'));
    snap!("popup_picker_choose_120x36", screen(&view, 120, 36));

    // The second action: a text, a number checked as typed, an enum as a list.
    press(&mut view, KeyCode::Down);
    press(&mut view, KeyCode::Enter);
    type_text(&mut view, "tenant-7");
    press(&mut view, KeyCode::Enter);
    type_text(&mut view, "0");
    snap!("popup_picker_invalid_120x36", screen(&view, 120, 36));
    press(&mut view, KeyCode::Backspace);
    type_text(&mut view, "500");
    press(&mut view, KeyCode::Enter);
    press(&mut view, KeyCode::Right);
    press(&mut view, KeyCode::Enter);
    snap!("popup_picker_confirm_120x36", screen(&view, 120, 36));
    let effects = press(&mut view, KeyCode::Char('y'));
    let [Effect::Pick(pick)] = &effects[..] else {
        panic!("{effects:?}");
    };
    assert_eq!(pick.ticket, 1);
    assert_eq!(pick.action, "update_limit");
    assert_eq!(pick.params["limit"], json!(500));
    assert_eq!(pick.params["window"], json!("60s"));
    assert_eq!(pick.params["key"], json!("tenant-7"));
    assert_eq!(pick.override_for, None);
    assert!(view.picker.is_none() && view.ui.popups.is_empty());
}

#[test]
fn overriding_a_picks_premises_asks_for_the_targets_name() {
    let mut view = unknown_cause();
    view.catalog = catalog();
    press(&mut view, KeyCode::Char('x'));
    press(&mut view, KeyCode::Enter);
    // The node list starts at the ticket's target.
    press(&mut view, KeyCode::Enter);
    press(&mut view, KeyCode::Char('o'));
    type_text(&mut view, "node-3");
    snap!("popup_picker_override_80x24", screen(&view, 80, 24));
    assert!(
        press(&mut view, KeyCode::Enter).is_empty(),
        "a wrong name sends nothing"
    );
    for _ in 0.."node-3".len() {
        press(&mut view, KeyCode::Backspace);
    }
    type_text(&mut view, "node-2");
    let effects = press(&mut view, KeyCode::Enter);
    let [Effect::Pick(pick)] = &effects[..] else {
        panic!("{effects:?}");
    };
    assert_eq!(pick.params["node"], json!("node-2"));
    assert_eq!(pick.override_for.as_deref(), Some("node-2"));

    // Esc backs out one stage at a time, then closes.
    let mut view = unknown_cause();
    view.catalog = catalog();
    press(&mut view, KeyCode::Char('x'));
    press(&mut view, KeyCode::Enter);
    press(&mut view, KeyCode::Esc);
    assert!(view.picker.is_some());
    press(&mut view, KeyCode::Esc);
    assert!(view.picker.is_none() && view.ui.popups.is_empty());
}

fn on_context(mut view: View, protected: bool) -> View {
    view.header.context = Some(ContextLabel {
        name: "prod-eu".into(),
        color: Some("red".into()),
        protected,
    });
    view
}

#[test]
fn the_header_names_the_context_and_says_read_only() {
    let mut view = on_context(healthy(), true);
    view.header.read_only = true;
    snap!("screen_read_only_context_120x36", screen(&view, 120, 36));
    snap!("screen_read_only_context_80x24", screen(&view, 80, 24));
    let mut terminal = Terminal::new(TestBackend::new(120, 1)).unwrap();
    terminal
        .draw(|frame| {
            operator_widgets::panes::header::render(&view, frame.area(), frame.buffer_mut())
        })
        .unwrap();
    let buf = terminal.backend().buffer();
    assert_eq!(
        buf[(1, 0)].bg,
        ratatui::style::Color::Red,
        "the context in its colour"
    );
}

/// A refused key says why where it is read, even while a chapter's narrative fills its pane;
/// the reason steps aside after a while.
#[test]
fn a_refused_key_says_why_on_screen_above_the_chapter() {
    let mut view = resolved();
    view.ui.focus = Focus::Tickets;
    press(&mut view, KeyCode::Char('x'));
    let why = "#1 is resolved: nothing left";
    for (width, height) in [(120, 36), (80, 24)] {
        let text = screen(&view, width, height);
        assert!(text.contains(why), "{width}×{height}:\n{text}");
    }
    view.now_ms += 11_000;
    assert!(!screen(&view, 80, 24).contains(why));
}

#[test]
fn read_only_refuses_with_a_reason_and_opens_no_dialog_whose_answer_is_no() {
    let mut view = awaiting_approval();
    view.header.read_only = true;
    for code in [
        KeyCode::Char('c'),
        KeyCode::Char('1'),
        KeyCode::Char('a'),
        KeyCode::Char('u'),
        KeyCode::Char('x'),
    ] {
        let before = view.notices.len();
        assert!(press(&mut view, code).is_empty(), "{code:?} did something");
        assert!(view.ui.popups.is_empty(), "{code:?} opened a dialog");
        assert_eq!(view.notices.len(), before + 1, "{code:?} said nothing");
        assert!(
            view.notices
                .back()
                .is_some_and(|n| n.starts_with("read-only")),
            "{:?}",
            view.notices.back()
        );
    }
}

#[test]
fn a_protected_context_asks_for_its_name_before_chaos_or_anything_disruptive() {
    let mut view = on_context(gated(), true);
    view.catalog = catalog();
    // Chaos from the menu is held until the name is typed.
    assert!(press(&mut view, KeyCode::Char('1')).is_empty());
    snap!("popup_protected_context_120x36", screen(&view, 120, 36));
    type_text(&mut view, "prod");
    assert!(
        press(&mut view, KeyCode::Enter).is_empty(),
        "a wrong name runs nothing"
    );
    type_text(&mut view, "-eu");
    assert_eq!(
        press(&mut view, KeyCode::Enter),
        vec![Effect::InjectChaos("kill_node".into())]
    );
    assert!(view.ui.popups.is_empty() && view.guarded.is_none());

    // Esc cancels and says what was not done.
    press(&mut view, KeyCode::Char('1'));
    assert!(press(&mut view, KeyCode::Esc).is_empty());
    assert!(
        view.notices
            .back()
            .unwrap()
            .contains("not done: inject kill_node")
    );

    // A safe pick needs no name; an unprotected context asks nothing.
    let mut view = on_context(unknown_cause(), true);
    view.catalog = catalog();
    press(&mut view, KeyCode::Char('x'));
    press(&mut view, KeyCode::Down);
    press(&mut view, KeyCode::Enter);
    type_text(&mut view, "k");
    press(&mut view, KeyCode::Enter);
    type_text(&mut view, "5");
    press(&mut view, KeyCode::Enter);
    press(&mut view, KeyCode::Enter);
    assert!(matches!(
        &press(&mut view, KeyCode::Char('y'))[..],
        [Effect::Pick(_)]
    ));
    let mut view = on_context(healthy(), false);
    assert_eq!(
        press(&mut view, KeyCode::Char('1')),
        vec![Effect::InjectChaos("kill_node".into())]
    );
}

#[test]
fn pacing_lets_the_reasoning_out_a_few_characters_a_tick_and_the_diagnosis_after_it() {
    let mut view = diagnosed();
    view.transcripts.clear();
    view.pacing = 40;
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Reasoning {
            ticket: 1,
            event: ReasoningEvent::Text {
                text: "Hypothesis: process_crash, because the process exited.\nnext\n".into(),
            },
        }),
    );
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Diagnosis {
            ticket: 1,
            diagnosis: Box::new(diagnosis()),
        }),
    );
    let now = view.now_ms;
    update(
        &mut view,
        Msg::Tick {
            now_ms: now + 250,
            clock: "x".into(),
        },
    );
    let t = &view.transcripts[&1];
    assert_eq!(
        t.partial, "Hypothesis",
        "40 chars/s for 250 ms: 10 characters"
    );
    assert!(
        !screen(&view, 120, 36).contains("Root cause"),
        "the conclusion waits"
    );
    update(
        &mut view,
        Msg::Tick {
            now_ms: now + 2_250,
            clock: "x".into(),
        },
    );
    let t = &view.transcripts[&1];
    assert_eq!(t.lines.len(), 2);
    assert!(t.pending.is_empty());
    assert!(screen(&view, 120, 36).contains("Root cause"));
}

#[test]
fn no_color_leaves_the_words_and_takes_the_colours() {
    let view = node_down();
    let mut terminal = Terminal::new(TestBackend::new(120, 36)).unwrap();
    terminal
        .draw(|frame| {
            operator_widgets::draw(frame, &view);
            operator_widgets::theme::strip_colors(frame.buffer_mut());
        })
        .unwrap();
    let buf = terminal.backend().buffer();
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset)
    );
    assert_eq!(terminal.backend().to_string(), screen(&view, 120, 36));
}

/// A 60-store TiKV cluster with store-37 dead and two slow stores, and a long ticket history.
fn sixty_stores() -> View {
    let mut view = healthy();
    view.header.subject = "tikv".into();
    view.ops_history.clear();
    view.split_history.clear();
    let nodes = (1..=60)
        .map(|i| {
            let health = match i {
                37 => Health::Down,
                12 | 48 => Health::Degraded,
                _ => Health::Healthy,
            };
            NodeStatus {
                id: NodeId(format!("store-{i}")),
                role: "tikv".into(),
                health,
                facts: [("leaders".to_string(), json!(100 + i))]
                    .into_iter()
                    .collect(),
            }
        })
        .collect();
    update(
        &mut view,
        Msg::Engine(EngineUpdate::Observed {
            nodes,
            workload: None,
            violations: vec![],
        }),
    );
    for id in 1..=40 {
        let mut t = ticket_on(id, "slow_store", TicketStatus::Resolved);
        t.target = format!("store-{}", id % 60 + 1);
        update(&mut view, Msg::Engine(EngineUpdate::Ticket(t)));
    }
    let mut dead = ticket_on(41, "store_down", TicketStatus::Escalated);
    dead.target = "store-37".into();
    dead.reason = Some("needs a human: no known cause fits the evidence".into());
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(dead)));
    view
}

#[test]
fn sixty_stores_put_the_dead_one_first_and_summarise_the_rest() {
    let view = sixty_stores();
    for (name, w, h) in [
        ("screen_sixty_stores_120x36", 120, 36),
        ("screen_sixty_stores_80x24", 80, 24),
    ] {
        let text = screen(&view, w, h);
        assert!(text.contains("57 up · 1 down · 2 degraded"), "{text}");
        assert!(
            text.contains("✖ store-37"),
            "the dead store is on screen: {text}"
        );
        snap!(name, text);
    }

    // Focus the cluster, scroll down, and the title says where the list is.
    let mut view = sixty_stores();
    for _ in 0..3 {
        press(&mut view, KeyCode::Tab);
    }
    assert_eq!(view.ui.focus, Focus::Cluster);
    for _ in 0..10 {
        press(&mut view, KeyCode::Down);
    }
    let text = screen(&view, 120, 36);
    assert!(text.contains("cluster · 11–15 of 60"), "{text}");

    // A filter keeps what matches: a name, or a health.
    press(&mut view, KeyCode::Char('f'));
    type_text(&mut view, "degraded");
    press(&mut view, KeyCode::Enter);
    let text = screen(&view, 120, 36);
    assert!(
        text.contains("2 degraded · filter \"degraded\" (2 of 60)"),
        "{text}"
    );
    assert!(
        text.contains("◐ store-12") && text.contains("◐ store-48") && !text.contains("✖ store-37")
    );
    assert!(text.contains("no ticket matches the filter"), "{text}");
    // A node's name finds the node and its tickets.
    press(&mut view, KeyCode::Char('f'));
    for _ in 0.."degraded".len() {
        press(&mut view, KeyCode::Backspace);
    }
    type_text(&mut view, "store-37");
    press(&mut view, KeyCode::Enter);
    let text = screen(&view, 120, 36);
    assert!(
        text.contains("✖ store-37") && text.contains("▶#41  store_down on store-37"),
        "{text}"
    );
    assert!(!text.contains("#40 "), "{text}");
    press(&mut view, KeyCode::Char('f'));
    for _ in 0.."store-37".len() {
        press(&mut view, KeyCode::Backspace);
    }
    press(&mut view, KeyCode::Enter);
    assert_eq!(view.ui.filter, None);

    // An incident still open sorts above newer resolved ones.
    let mut view = sixty_stores();
    let mut newer = ticket_on(42, "slow_store", TicketStatus::Resolved);
    newer.target = "store-5".into();
    update(&mut view, Msg::Engine(EngineUpdate::Ticket(newer)));
    assert_eq!(view.tickets[0].id, 41);
    assert_eq!(view.tickets[1].id, 42);

    // The tickets pane counts, and keeps the selected ticket on screen however far down.
    let mut view = sixty_stores();
    for _ in 0..40 {
        press(&mut view, KeyCode::Down);
    }
    let text = screen(&view, 120, 36);
    assert!(
        text.contains("tickets · 1 active · 1 needs a human"),
        "{text}"
    );
    assert!(
        text.contains("▶#1 "),
        "the last ticket is selected and shown: {text}"
    );
}
