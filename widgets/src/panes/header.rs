//! The header: subject, target (SIMULATED when it is), brain, mode, kill switch, how many
//! tickets wait for a human, clock.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::theme;
use crate::view::View;

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let h = &view.header;
    let mut spans = Vec::new();
    if let Some(context) = &h.context {
        spans.push(Span::styled(
            format!(" {} ", context.name),
            theme::context(context.color.as_deref(), context.protected),
        ));
    }
    if h.read_only {
        spans.push(Span::styled(" READ-ONLY ", theme::read_only()));
    }
    spans.extend([
        Span::styled(" operator-tui ", theme::title()),
        Span::styled(format!("{} ", h.subject), Style::new()),
        Span::styled(format!("on {} ", h.target), theme::dim()),
    ]);
    if h.simulated {
        spans.push(Span::styled(" SIMULATED ", theme::simulated()));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled(format!("brain {} ", h.brain), theme::dim()));
    let mode = h
        .mode
        .map(|m| m.as_str().to_uppercase())
        .unwrap_or_else(|| "…".into());
    spans.push(Span::styled(format!(" {mode} "), theme::mode(h.mode)));
    spans.push(Span::raw(" "));
    let waiting = view.waiting_for_a_human();
    let waiting = (waiting > 0).then(|| {
        Span::styled(
            format!(" {waiting} WAITING FOR A HUMAN "),
            theme::needs_a_human(),
        )
    });
    if h.kill_switch {
        spans.push(Span::styled(" KILL SWITCH ON ", theme::kill_switch_on()));
        spans.push(Span::raw(" "));
    } else {
        // The usual state gives way on a narrow screen (to a human being needed, first).
        let off = "kill switch off ";
        let needed = Line::from(spans.clone()).width()
            + off.len()
            + waiting.as_ref().map_or(0, |w| w.width());
        if needed <= area.width as usize {
            spans.push(Span::styled(off, theme::dim()));
        }
    }
    spans.extend(waiting);
    let left = Line::from(spans);
    let used = left.width();
    Paragraph::new(left).render(area, buf);
    // The clock goes right, where there is room for it.
    if used + h.clock.len() + 2 <= area.width as usize {
        let clock = Line::from(Span::styled(format!("{} ", h.clock), theme::dim())).right_aligned();
        Paragraph::new(clock).render(area, buf);
    }
}
