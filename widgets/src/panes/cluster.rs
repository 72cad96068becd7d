//! The cluster: each node with a symbol and colour by health and its key facts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::panes::{block, fit};
use crate::theme;
use crate::view::View;

/// "p99_ms" → "p99 0.61 ms", "checks_per_sec" → "67 checks/s", anything else "name value".
fn fact(name: &str, value: &serde_json::Value) -> Option<String> {
    let shown = match value {
        serde_json::Value::Null => return None,
        serde_json::Value::Number(n) => {
            let f = n.as_f64()?;
            if f.fract() == 0.0 {
                format!("{f:.0}")
            } else {
                format!("{f:.2}")
            }
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(if let Some(base) = name.strip_suffix("_ms") {
        format!("{} {shown} ms", base.replace('_', " "))
    } else if let Some(base) = name.strip_suffix("_per_sec") {
        format!("{shown} {}/s", base.replace('_', " "))
    } else {
        format!("{} {shown}", name.replace('_', " "))
    })
}

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = view
        .nodes
        .iter()
        .map(|node| {
            let (symbol, style) = theme::health(node.health);
            let facts: Vec<String> = node.facts.iter().filter_map(|(k, v)| fact(k, v)).collect();
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
