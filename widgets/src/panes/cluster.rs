//! The cluster: each node with a symbol and colour by health and its key facts.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::panes::{block, fit};
use crate::theme;
use operator_protocol::NodeStatus;

use crate::view::{Focus, View, health_summary};

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
    Some(if name == operator_protocol::SOMEONE_AT_WORK {
        format!("a person's: {shown}")
    } else if let Some(base) = name.strip_suffix("_ms") {
        format!("{} {shown} ms", base.replace('_', " "))
    } else if let Some(base) = name.strip_suffix("_per_sec") {
        format!("{shown} {}/s", base.replace('_', " "))
    } else {
        format!("{} {shown}", name.replace('_', " "))
    })
}

fn node_line(node: &NodeStatus, id_width: usize, inner_width: usize) -> Line<'static> {
    let (symbol, style) = theme::health(node.health);
    let facts: Vec<String> = node.facts.iter().filter_map(|(k, v)| fact(k, v)).collect();
    Line::from(vec![
        Span::styled(format!(" {symbol} "), style),
        Span::styled(format!("{:<id_width$} ", node.id.0), style),
        Span::styled(
            fit(&facts.join("  "), inner_width.saturating_sub(id_width + 4)),
            theme::dim(),
        ),
    ])
}

/// The unhealthy first; when they do not all fit, a summary line heads the list ("57 up ·
/// 1 down · 2 degraded") and ↑/↓ (with the pane focused) scroll the rest.
pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let rows = area.height.saturating_sub(2) as usize;
    let listed = view.listed_nodes();
    let mut lines: Vec<Line> = Vec::new();
    let error_rows = usize::from(view.observation_error.is_some());
    let room = rows.saturating_sub(error_rows);
    let summarised = listed.len() > room || view.ui.filter.is_some();
    if summarised {
        let mut summary = format!(" {}", health_summary(listed.iter().map(|n| &n.health)));
        if let Some(filter) = &view.ui.filter {
            summary.push_str(&format!(
                " · filter {filter:?} ({} of {})",
                listed.len(),
                view.nodes.len()
            ));
        }
        lines.push(Line::styled(fit(&summary, inner_width), theme::title()));
    }
    let room = room.saturating_sub(usize::from(summarised));
    let first = view
        .ui
        .cluster_scroll
        .min(listed.len().saturating_sub(room));
    let id_width = listed
        .iter()
        .map(|n| n.id.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    lines.extend(
        listed
            .iter()
            .skip(first)
            .take(room)
            .map(|node| node_line(node, id_width, inner_width)),
    );
    if view.nodes.is_empty() {
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
    let title = if listed.len() > room {
        let last = (first + room).min(listed.len());
        format!("cluster · {}–{} of {}", first + 1, last, listed.len())
    } else {
        "cluster".to_string()
    };
    Paragraph::new(lines)
        .block(block(&title, view.ui.focus == Focus::Cluster))
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fact_reads_as_words_with_its_unit_and_a_persons_work_says_whose() {
        assert_eq!(
            fact("p99_ms", &serde_json::json!(0.613)).as_deref(),
            Some("p99 0.61 ms")
        );
        assert_eq!(
            fact("checks_per_sec", &serde_json::json!(67)).as_deref(),
            Some("67 checks/s")
        );
        assert_eq!(fact("leaders", &serde_json::Value::Null), None);
        assert_eq!(
            fact(
                operator_protocol::SOMEONE_AT_WORK,
                &serde_json::json!("stopped deliberately (a clean exit)")
            )
            .as_deref(),
            Some("a person's: stopped deliberately (a clean exit)")
        );
    }
}
