//! Actions: lifecycle state, params, attempts, what each destroys; one awaiting a human is
//! highlighted with the gate that holds it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use operator_protocol::{ActionStatus, Mode};

use crate::panes::{block, fit};
use crate::theme;
use crate::view::{Focus, View};

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(2) as usize;
    let mode = view.header.mode;
    let selected = view.selected_action().map(|a| a.id);
    let mut lines = Vec::new();
    for a in view.visible_actions() {
        let marker = if Some(a.id) == selected { "▶" } else { " " };
        let waiting = a.awaiting_approval(mode);
        let (state, state_style) = if view.header.read_only && a.status == ActionStatus::Validated {
            (" READ-ONLY · NOT RUN ".to_string(), theme::read_only())
        } else if waiting && a.waiting.is_some() && mode == Some(Mode::Execute) {
            (
                " WAITING FOR A HUMAN ".to_string(),
                theme::awaiting_approval(),
            )
        } else if waiting {
            (
                " AWAITING APPROVAL ".to_string(),
                theme::awaiting_approval(),
            )
        } else if a.status == ActionStatus::PremiseFailed {
            (" PREMISE FAILED ".to_string(), theme::needs_a_human())
        } else {
            (a.status.as_str().to_string(), theme::action(a.status))
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{marker}A{:<3} ", a.id)),
            Span::styled(fit(&state, width.saturating_sub(18)), state_style),
            Span::styled(
                format!("  attempt {}/{}", a.attempts, a.max_attempts),
                theme::dim(),
            ),
        ]));
        lines.push(Line::from(vec![
            Span::styled(format!("      {} ", a.name), theme::title()),
            Span::raw(fit(&a.params, width.saturating_sub(a.name.len() + 7))),
        ]));
        if let Some(loss) = &a.destroys {
            lines.push(Line::styled(
                fit(&format!("      destroys: {loss}"), width),
                theme::destroys(),
            ));
        }
        if let Some(reason) = a.waiting.as_ref().filter(|_| waiting) {
            // The label already says a human is needed; the line says why.
            let why = reason
                .strip_prefix("waiting for a human: ")
                .unwrap_or(reason);
            lines.push(Line::styled(
                fit(&format!("      {why}"), width),
                theme::dim(),
            ));
        }
        if let Some(detail) = a.error.as_ref().or(a.outcome.as_ref()) {
            lines.push(Line::styled(
                fit(&format!("      {detail}"), width),
                theme::dim(),
            ));
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled(" no actions yet", theme::dim()));
    }
    Paragraph::new(lines)
        .block(block("actions", view.ui.focus == Focus::Actions))
        .render(area, buf);
}
