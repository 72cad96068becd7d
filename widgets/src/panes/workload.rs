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
    if chart.height == 0 || chart.width < 8 || view.ops_history.is_empty() {
        return;
    }
    // One band a series: the first of the split (or the total) takes what the others leave,
    // each other (a denied rate, say) a row of its own in its own colour.
    let width = chart.width.saturating_sub(LABEL) as usize;
    let names: Vec<String> = view
        .split_history
        .back()
        .map(|split| split.keys().cloned().collect())
        .unwrap_or_default();
    let mut series: Vec<(String, Vec<u64>)> = if names.len() >= 2 {
        names
            .iter()
            .map(|name| {
                let values = view
                    .split_history
                    .iter()
                    .map(|s| s.get(name).copied().unwrap_or(0))
                    .collect();
                (name.clone(), values)
            })
            .collect()
    } else {
        vec![(
            "ops/s".to_string(),
            view.ops_history.iter().copied().collect(),
        )]
    };
    series.truncate(chart.height as usize);
    let others = series.len().saturating_sub(1) as u16;
    let mut constraints = vec![Constraint::Fill(1)];
    constraints.extend((0..others).map(|_| Constraint::Length(1)));
    let bands = Layout::vertical(constraints).split(chart);
    for (i, ((name, values), band)) in series.iter().zip(bands.iter()).enumerate() {
        let [plot, label] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(LABEL)]).areas(*band);
        let newest: Vec<u64> = values.iter().rev().take(width).rev().copied().collect();
        let scale = Scale::of(&newest);
        let color = SERIES_COLORS[i % SERIES_COLORS.len()];
        Sparkline::default()
            .data(scale.apply(&newest))
            .max(scale.top)
            .style(Style::new().fg(color))
            .render(plot, buf);
        let range = format!("{}–{}", scale.low, scale.high);
        let lines = if label.height >= 2 {
            vec![
                Line::styled(format!(" {name}"), Style::new().fg(color)),
                Line::styled(format!(" {range}"), theme::dim()),
            ]
        } else {
            vec![Line::from(vec![
                Span::styled(format!(" {name} "), Style::new().fg(color)),
                Span::styled(range, theme::dim()),
            ])]
        };
        Paragraph::new(lines).render(label, buf);
    }
}

/// Columns on the right for each series' name and the range it spans on screen.
const LABEL: u16 = 14;

const SERIES_COLORS: [Color; 3] = [Color::Cyan, Color::Red, Color::Yellow];

/// A window's values scaled to their own range, so that a steady rate sits mid-height
/// instead of a flat full block and a dip or a surge shows at a glance.
struct Scale {
    low: u64,
    high: u64,
    floor: u64,
    top: u64,
}

impl Scale {
    fn of(values: &[u64]) -> Self {
        let low = values.iter().copied().min().unwrap_or(0);
        let high = values.iter().copied().max().unwrap_or(0);
        // Noise of a few percent should not look like a swing: the band is at least 10 % of
        // the value wide.
        let span = (high - low).max(high / 10).max(2);
        let floor = low.saturating_sub(span / 2);
        Self {
            low,
            high,
            floor,
            top: high + span / 2 - floor,
        }
    }

    fn apply(&self, values: &[u64]) -> Vec<u64> {
        values.iter().map(|v| v - self.floor).collect()
    }
}
