//! The workload: an ops/s sparkline with the current rate and its split.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget};

use crate::panes::block;
use crate::theme;
use crate::view::View;

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let outer = block("workload", false);
    let inner = outer.inner(area);
    outer.render(area, buf);
    let [summary, chart] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    let line = match &view.workload {
        Some(w) => {
            let mut spans = vec![Span::styled(
                format!(" {:.0} ops/s ", w.ops_per_sec),
                theme::title(),
            )];
            for (name, rate) in &w.split {
                spans.push(Span::styled(format!(" {name} {rate:.0}/s"), theme::dim()));
            }
            if w.errors_per_sec > 0.0 {
                spans.push(Span::styled(
                    format!("  errors {:.0}/s", w.errors_per_sec),
                    theme::bad(),
                ));
            }
            Line::from(spans)
        }
        None => Line::styled(" no traffic observed yet", theme::dim()),
    };
    Paragraph::new(line).render(summary, buf);
    // Newest on the right: as many samples as there are columns.
    let width = chart.width as usize;
    let data: Vec<u64> = view
        .ops_history
        .iter()
        .rev()
        .take(width)
        .rev()
        .copied()
        .collect();
    Sparkline::default()
        .data(&data)
        .style(Style::new().fg(Color::Cyan))
        .render(chart, buf);
}
