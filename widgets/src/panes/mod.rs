//! One file per pane; each renders from `&View` into an area and nothing else.

pub mod actions;
pub mod chapter;
pub mod cluster;
pub mod footer;
pub mod header;
pub mod picker;
pub mod popups;
pub mod reasoning;
pub mod tickets;
pub mod workload;

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::widgets::{Block, BorderType};

use crate::theme;

/// A pane's frame; the focused one is drawn in the focus colour.
pub fn block(title: &str, focused: bool) -> Block<'_> {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(format!(" {title} "))
        .title_style(theme::title());
    if focused {
        block.border_style(theme::focused_border())
    } else {
        block.border_style(theme::dim())
    }
}

/// "1.24s", or "—" when the step has not happened.
pub fn seconds(ms: Option<u64>) -> String {
    ms.map(|v| format!("{:.2}s", v as f64 / 1000.0))
        .unwrap_or_else(|| "—".into())
}

/// Cuts a string to `width` characters, marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A rectangle of this size in the middle of `area` (smaller when `area` is).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
