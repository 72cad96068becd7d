//! The footer, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::keymap::footer_items;
use crate::theme;

pub fn render(area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (key, help) in footer_items() {
        spans.push(Span::styled(format!(" {key} "), theme::key()));
        spans.push(Span::styled(format!("{help} "), theme::dim()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
