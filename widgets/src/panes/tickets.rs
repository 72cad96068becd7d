//! Tickets: status, invariant, target, occurrences, and the timeline (detected, diagnosed,
//! fixed in), grouped by incident with each cause's symptoms under it. The selected one
//! drives the reasoning and actions panes.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::panes::{block, fit, seconds};
use crate::theme;
use crate::view::{Focus, View};

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let width = area.width.saturating_sub(2) as usize;
    let selected = view.selected_ticket().map(|t| t.id);
    // Two rows a ticket (three for the selected one): start where the selection shows.
    let fits = (area.height.saturating_sub(3) / 2).max(1) as usize;
    let listed = view.listed_tickets();
    let at = selected
        .and_then(|id| listed.iter().position(|t| t.id == id))
        .unwrap_or(0);
    let start = (at + 1).saturating_sub(fits);
    let mut lines = Vec::new();
    for t in listed.iter().skip(start).take(fits + 1) {
        let is_selected = Some(t.id) == selected;
        let marker = if is_selected { "▶" } else { " " };
        // A symptom sits under its incident's cause, when the cause is on screen.
        let under_its_cause = t.incident != t.id && view.tickets.iter().any(|c| c.id == t.incident);
        let branch = if under_its_cause { "└" } else { "" };
        let mut head = vec![
            Span::raw(format!("{marker}{branch}#{:<3} ", t.id)),
            Span::styled(
                fit(
                    &format!("{} on {}", t.invariant, t.target),
                    width.saturating_sub(10),
                ),
                theme::severity(t.severity),
            ),
        ];
        if t.occurrences > 1 {
            head.push(Span::styled(format!(" ×{}", t.occurrences), theme::dim()));
        }
        let mut line = Line::from(head);
        if is_selected {
            line = line.patch_style(ratatui::style::Style::new().add_modifier(Modifier::BOLD));
        }
        lines.push(line);
        let timeline = format!(
            " · detect {} · diagnose {} · fix {}",
            seconds(t.detect_ms),
            seconds(t.diagnose_ms),
            seconds(t.mitigate_ms)
        );
        let status = if t.needs_a_human() {
            Span::styled(" NEEDS A HUMAN ", theme::needs_a_human())
        } else if t.incident != t.id {
            Span::styled(
                format!("{}, a symptom of #{}", t.status.as_str(), t.incident),
                theme::ticket(t.status),
            )
        } else {
            Span::styled(t.status.as_str(), theme::ticket(t.status))
        };
        let used = 5 + status.width();
        lines.push(Line::from(vec![
            Span::raw("     "),
            status,
            Span::styled(fit(&timeline, width.saturating_sub(used)), theme::dim()),
        ]));
        if let Some(reason) = t.reason.as_ref().filter(|_| is_selected) {
            lines.push(Line::styled(
                fit(&format!("     {reason}"), width),
                theme::dim(),
            ));
        }
    }
    if lines.is_empty() && view.tickets.is_empty() {
        lines.push(Line::styled(
            " no tickets: every invariant holds",
            theme::good(),
        ));
    } else if lines.is_empty() {
        lines.push(Line::styled(" no ticket matches the filter", theme::dim()));
    }
    let count = |keep: &dyn Fn(&crate::view::TicketRow) -> bool| {
        view.tickets.iter().filter(|t| keep(t)).count()
    };
    // What matters most first; the rest is left off where the title has no room.
    let mut parts = vec![format!(
        "tickets · {} active",
        count(&|t| t.status.is_active())
    )];
    let humans = count(&|t| t.needs_a_human());
    if humans > 0 {
        let verb = if humans == 1 { "needs" } else { "need" };
        parts.push(format!("{humans} {verb} a human"));
    }
    if start > 0 {
        parts.push(format!("{start} above"));
    }
    let resolved = count(&|t| t.status == operator_protocol::TicketStatus::Resolved);
    if resolved > 0 {
        parts.push(format!("{resolved} resolved"));
    }
    while parts.len() > 1 && parts.join(" · ").chars().count() + 4 > area.width as usize {
        parts.pop();
    }
    let title = parts.join(" · ");
    Paragraph::new(lines)
        .block(block(&title, view.ui.focus == Focus::Tickets))
        .render(area, buf);
}
