//! The action picker's popup: the catalog to choose from, the chosen action's parameters as
//! they are filled (each checked as typed), then what it will do before it is sent.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use operator_protocol::{ActionSpec, Risk};

use crate::panes::{block, centered, fit};
use crate::picker::{Field, Picker, Stage};
use crate::theme;

fn risk(r: Risk) -> Span<'static> {
    let style = match r {
        Risk::ReadOnly | Risk::Safe => theme::good(),
        Risk::Disruptive => theme::awaiting_approval(),
        Risk::Destructive => theme::destroys(),
    };
    Span::styled(format!(" {:<11}", r.as_str().replace('_', "-")), style)
}

/// What the action does, loses and whether it can be taken back.
fn consequences(spec: &ActionSpec, lines: &mut Vec<Line<'static>>) {
    if let Some(loss) = &spec.destroys {
        lines.push(Line::from(vec![
            Span::styled("  destroys: ", theme::destroys()),
            Span::raw(loss.clone()),
        ]));
    }
    if let Some(what) = &spec.loosens {
        lines.push(Line::from(vec![
            Span::styled("  loosens a protection: ", theme::awaiting_approval()),
            Span::raw(what.clone()),
        ]));
    }
    if let Some(why) = spec.reversal.irreversible_because() {
        lines.push(Line::from(vec![
            Span::styled("  cannot be undone: ", theme::destroys()),
            Span::raw(why),
        ]));
    }
    if !spec.premises.is_empty() {
        let names: Vec<&str> = spec
            .premises
            .iter()
            .map(|p| p.description.as_str())
            .collect();
        lines.push(Line::styled(
            format!("  checked first: {}", names.join("; ")),
            theme::dim(),
        ));
    }
}

fn choose_lines(p: &Picker, selected: usize, width: usize) -> Vec<Line<'static>> {
    let name_width = p.catalog.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut lines: Vec<Line> = p
        .catalog
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let marker = if i == selected { "▶ " } else { "  " };
            let name = format!("{:<name_width$}  ", spec.name);
            let used = 2 + name.len() + 13;
            Line::from(vec![
                Span::raw(marker),
                Span::styled(
                    name,
                    if i == selected {
                        theme::key()
                    } else {
                        theme::title()
                    },
                ),
                risk(spec.risk),
                Span::styled(
                    format!(" {}", fit(&spec.description, width.saturating_sub(used))),
                    theme::dim(),
                ),
            ])
        })
        .collect();
    if let Some(spec) = p.catalog.get(selected) {
        lines.push(Line::raw(""));
        lines.push(Line::styled(spec.description.clone(), theme::title()));
        for param in &spec.params {
            lines.push(Line::from(vec![
                Span::styled(format!("  {} ", param.name), theme::key()),
                Span::styled(format!("({}) ", param.kind), theme::dim()),
                Span::raw(param.description.clone()),
            ]));
        }
        consequences(spec, &mut lines);
    }
    if p.catalog.is_empty() {
        lines.push(Line::raw(" this subject offers no actions"));
    }
    lines
}

fn fill_lines(p: &Picker, spec: &ActionSpec, current: usize) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", spec.name), theme::title()),
        risk(spec.risk),
        Span::styled(format!(" {}", spec.description), theme::dim()),
    ])];
    let values = p.values();
    for (i, (param, field)) in spec.params.iter().zip(&p.fields).enumerate() {
        let active = i == current;
        let shown = match field {
            Field::Choice { values, at } => {
                let value = values.get(*at).cloned().unwrap_or_else(|| "—".into());
                if active {
                    format!("◀ {value} ▶  ({}/{})", at + 1, values.len())
                } else {
                    value
                }
            }
            Field::Text(text) => {
                let typed = text.lines().join("");
                if active { format!("{typed}▌") } else { typed }
            }
        };
        lines.push(Line::from(vec![
            Span::raw(if active { "▶ " } else { "  " }),
            Span::styled(format!("{} = ", param.name), theme::key()),
            Span::styled(
                shown,
                if active {
                    theme::title()
                } else {
                    Default::default()
                },
            ),
            Span::styled(
                format!("   {} ({})", param.description, param.kind),
                theme::dim(),
            ),
        ]));
        let check = match values.get(i) {
            Some(Ok(_)) => Span::styled("    ✓", theme::good()),
            Some(Err(problem)) => Span::styled(format!("    ✗ {problem}"), theme::bad()),
            None => Span::raw(""),
        };
        lines.push(Line::from(check));
    }
    lines.push(Line::styled(
        "←/→ choose · type a value · ↑/↓ field · enter next · esc back",
        theme::dim(),
    ));
    lines
}

fn confirm_lines(p: &Picker, spec: &ActionSpec, typing: Option<&str>) -> Vec<Line<'static>> {
    let params: serde_json::Map<String, serde_json::Value> = spec
        .params
        .iter()
        .zip(p.values())
        .filter_map(|(param, v)| Some((param.name.clone(), v.ok()?)))
        .collect();
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!(
                    "Run {} {} for #{}? ",
                    spec.name,
                    serde_json::Value::Object(params),
                    p.ticket
                ),
                theme::title(),
            ),
            risk(spec.risk),
        ]),
        Line::raw(
            "It is yours: approved by you, audited as a human's action, and still gated by the mode, the kill switch and the blast-radius policy.",
        ),
    ];
    consequences(spec, &mut lines);
    let target = p.override_target();
    match typing {
        None if spec.premises.is_empty() => lines.push(Line::from(vec![
            Span::styled(" y ", theme::awaiting_approval()),
            Span::raw(" run   esc back"),
        ])),
        None => lines.push(Line::from(vec![
            Span::styled(" y ", theme::awaiting_approval()),
            Span::raw(" run   "),
            Span::styled(" o ", theme::destroys()),
            Span::raw(format!(
                " run without checking its premises (type {target})   esc back"
            )),
        ])),
        Some(typed) => {
            lines.push(Line::styled(
                format!(
                    "Type {target} to run it without checking its premises (enter sends, esc back):"
                ),
                theme::destroys(),
            ));
            lines.push(Line::styled(format!("  {typed}▌"), theme::title()));
        }
    }
    lines
}

pub fn render(p: &Picker, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(4).min(100);
    let inner = width.saturating_sub(2) as usize;
    let (title, lines) = match &p.stage {
        Stage::Choose { selected } => (
            format!("pick an action for #{} · ↑/↓ enter · esc closes", p.ticket),
            choose_lines(p, *selected, inner),
        ),
        Stage::Fill { field } => match p.spec() {
            Some(spec) => (
                format!("parameters · #{}", p.ticket),
                fill_lines(p, spec, *field),
            ),
            None => return,
        },
        Stage::Confirm { typing } => match p.spec() {
            Some(spec) => {
                let typed = typing.as_ref().map(|t| t.lines().join(""));
                (
                    format!("confirm · #{}", p.ticket),
                    confirm_lines(p, spec, typed.as_deref()),
                )
            }
            None => return,
        },
    };
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let height = paragraph.line_count(width.saturating_sub(2)) as u16 + 2;
    let rect = centered(area, width, height);
    Clear.render(rect, buf);
    paragraph.block(block(&title, true)).render(rect, buf);
}
