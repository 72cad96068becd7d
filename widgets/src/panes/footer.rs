//! The footer, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::keymap::footer_items;
use crate::theme;

pub fn render(area: Rect, buf: &mut Buffer) {
    // Whole items only: an item that does not fit is left out, never cut in half.
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, word) in footer_items() {
        let width = key.chars().count() + word.chars().count() + 3;
        if used + width > area.width as usize {
            break;
        }
        used += width;
        spans.push(Span::styled(format!(" {key} "), theme::key()));
        spans.push(Span::styled(format!("{word} "), theme::dim()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
