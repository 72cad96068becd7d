//! Popups drawn over the panes: help (every binding), the chaos menu, the kill switch and
//! approval confirmations, and the prompt to ask the brain a question.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use crate::keymap::BINDINGS;
use crate::panes::{block, centered, fit};
use crate::theme;
use crate::view::{Popup, View};

/// The rows a popup of `width` needs for these lines wrapped inside its border.
fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    rows as u16 + 2
}

pub fn render(view: &View, popup: Popup, area: Rect, buf: &mut Buffer) {
    match popup {
        Popup::Help => {
            let lines: Vec<Line> = BINDINGS
                .iter()
                .map(|b| {
                    Line::from(vec![
                        Span::styled(format!(" {:>5}  ", b.label), theme::key()),
                        Span::raw(b.help),
                    ])
                })
                .collect();
            let rect = centered(area, 64, lines.len() as u16 + 2);
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .block(block("keys · esc closes", true))
                .render(rect, buf);
        }
        Popup::Chaos => {
            // Columns: number, name, what it does, the invariant it breaks.
            let name_width = view.chaos.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let breaks_width = view.chaos.iter().map(|c| c.breaks.len()).max().unwrap_or(0);
            let longest = view
                .chaos
                .iter()
                .map(|c| c.description.chars().count())
                .max();
            // Border 2, " 9 " 3, the name and 2, "  breaks " 9, the invariant.
            let fixed = 2 + 3 + name_width + 2 + 9 + breaks_width;
            let width =
                (fixed + longest.unwrap_or(40)).min(area.width.saturating_sub(4) as usize) as u16;
            let description_width = (width as usize).saturating_sub(fixed);
            let mut lines: Vec<Line> = view
                .chaos
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    Line::from(vec![
                        Span::styled(format!(" {} ", i + 1), theme::key()),
                        Span::styled(format!("{:<name_width$}  ", c.name), theme::title()),
                        Span::styled(
                            format!(
                                "{:<description_width$}",
                                fit(&c.description, description_width)
                            ),
                            theme::dim(),
                        ),
                        Span::styled(
                            format!("  breaks {}", c.breaks),
                            theme::severity(operator_protocol::Severity::Warning),
                        ),
                    ])
                })
                .collect();
            if lines.is_empty() {
                lines.push(Line::raw(
                    " nothing this subject offers can be injected on this target",
                ));
            }
            let rect = centered(area, width, lines.len() as u16 + 2);
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .block(block("inject a fault · number to pick, esc to close", true))
                .render(rect, buf);
        }
        Popup::ConfirmKillSwitch => {
            let rect = centered(area, 56, 5);
            Clear.render(rect, buf);
            let lines = vec![
                Line::styled("Engage the kill switch?", theme::title()),
                Line::raw("Running actions stop and no new one starts."),
                Line::from(vec![
                    Span::styled(" y ", theme::kill_switch_on()),
                    Span::raw(" engage   any other key: cancel"),
                ]),
            ];
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block("kill switch", true))
                .render(rect, buf);
        }
        Popup::ConfirmApproval(id) => {
            let Some(action) = view.actions.iter().find(|a| a.id == id) else {
                return;
            };
            let mut lines = vec![Line::styled(
                format!("Approve A{} {} {}?", action.id, action.name, action.params),
                theme::title(),
            )];
            if let Some(loss) = &action.destroys {
                lines.push(Line::from(vec![
                    Span::styled("It destroys: ", theme::destroys()),
                    Span::raw(loss.clone()),
                ]));
            }
            if let Some(why) = &action.irreversible {
                lines.push(Line::from(vec![
                    Span::styled("It cannot be undone: ", theme::destroys()),
                    Span::raw(why.clone()),
                ]));
            }
            lines.push(Line::from(vec![
                Span::styled(" y ", theme::awaiting_approval()),
                Span::raw(" approve   any other key: cancel"),
            ]));
            let rect = centered(area, 64, wrapped_height(&lines, 64));
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block("approve", true))
                .render(rect, buf);
        }
        Popup::ConfirmUndo(id) => {
            let Some(action) = view.actions.iter().find(|a| a.id == id) else {
                return;
            };
            let lines = vec![
                Line::styled(
                    format!("Undo A{} {} {}?", action.id, action.name, action.params),
                    theme::title(),
                ),
                Line::from(vec![
                    Span::styled("It runs: ", theme::title()),
                    Span::raw(action.undo.clone().unwrap_or_default()),
                    Span::raw(" (the mode, the kill switch and the policy still apply)"),
                ]),
                Line::from(vec![
                    Span::styled(" y ", theme::awaiting_approval()),
                    Span::raw(" undo   any other key: cancel"),
                ]),
            ];
            let rect = centered(area, 64, wrapped_height(&lines, 64));
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block("undo", true))
                .render(rect, buf);
        }
        Popup::ConfirmContext => {
            let (Some((effect, typed)), Some(context)) = (&view.guarded, &view.header.context)
            else {
                return;
            };
            let lines = vec![
                Line::from(vec![
                    Span::styled(
                        format!(" {} ", context.name),
                        theme::context(context.color.as_deref(), true),
                    ),
                    Span::styled(" is a protected context.", theme::title()),
                ]),
                Line::raw(format!(
                    "To {}, type its name and press enter (esc cancels):",
                    crate::update::describe(effect)
                )),
                Line::styled(format!("  {}▌", typed.lines().join("")), theme::title()),
            ];
            let rect = centered(area, 64, wrapped_height(&lines, 64));
            Clear.render(rect, buf);
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block("protected context", true))
                .render(rect, buf);
        }
        Popup::Filter => {
            let rect = centered(area, 64, 3);
            Clear.render(rect, buf);
            let outer = block(
                "filter nodes: name, role, down / degraded / up · enter, esc",
                true,
            );
            let inner = outer.inner(rect);
            outer.render(rect, buf);
            view.filter_input.render(inner, buf);
        }
        Popup::Picker => {
            if let Some(picker) = &view.picker {
                crate::panes::picker::render(picker, area, buf);
            }
        }
        Popup::Prompt => {
            let rect = centered(area, 80, 5);
            Clear.render(rect, buf);
            let outer = block("ask the brain · enter sends, esc closes", true);
            let inner = outer.inner(rect);
            outer.render(rect, buf);
            view.prompt.render(inner, buf);
        }
    }
}
