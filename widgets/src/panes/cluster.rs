//! The cluster: each node with a symbol and colour by health and its key facts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::panes::{block, fit};
use crate::theme;
use crate::view::View;

fn fact(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Number(n) => Some(
            n.as_f64()
                .map(|f| {
                    if f.fract() == 0.0 {
                        format!("{f:.0}")
                    } else {
                        format!("{f:.2}")
                    }
                })
                .unwrap_or_else(|| n.to_string()),
        ),
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = view
        .nodes
        .iter()
        .map(|node| {
            let (symbol, style) = theme::health(node.health);
            let facts: Vec<String> = node
                .facts
                .iter()
                .filter_map(|(k, v)| fact(v).map(|v| format!("{} {v}", k.replace('_', " "))))
                .collect();
            Line::from(vec![
                Span::styled(format!(" {symbol} "), style),
                Span::styled(format!("{:<8}", node.id.0), style),
                Span::styled(
                    fit(&facts.join("  "), inner_width.saturating_sub(12)),
                    theme::dim(),
                ),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            " waiting for the first observation…",
            theme::dim(),
        ));
    }
    if let Some(error) = &view.observation_error {
        lines.push(Line::styled(
            fit(&format!(" ✖ cannot observe: {error}"), inner_width),
            theme::bad(),
        ));
    }
    Paragraph::new(lines)
        .block(block("cluster", false))
        .render(area, buf);
}
