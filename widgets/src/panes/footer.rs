//! The footer, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::keymap::footer_items;
use crate::theme;

pub fn render(area: Rect, buf: &mut Buffer) {
    // Whole items only: an item that does not fit is left out, never cut in half. The help
    // key is kept whatever the width: it leads to every other key.
    let items = footer_items();
    let width = |(key, word): &(&str, &str)| key.chars().count() + word.chars().count() + 3;
    let help = items.iter().find(|(key, _)| *key == "?").copied();
    let mut room = (area.width as usize).saturating_sub(help.as_ref().map_or(0, width));
    let mut shown = Vec::new();
    for item in items.iter().filter(|(key, _)| *key != "?") {
        if width(item) > room {
            break;
        }
        room -= width(item);
        shown.push(*item);
    }
    shown.extend(help);
    let spans: Vec<Span> = shown
        .into_iter()
        .flat_map(|(key, word)| {
            [
                Span::styled(format!(" {key} "), theme::key()),
                Span::styled(format!("{word} "), theme::dim()),
            ]
        })
        .collect();
    Paragraph::new(Line::from(spans)).render(area, buf);
}
