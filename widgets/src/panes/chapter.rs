//! The demo chapter: where the story is, its narrative, and the countdown to the next fault.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::chapters::Phase;
use crate::panes::block;
use crate::theme;
use crate::view::View;

/// How long a notice stays above the chapter's narrative.
const NOTICE_SHOWN_MS: u64 = 10_000;

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let run = &view.chapters;
    let Some(chapter) = run.current() else {
        let notice = view
            .notices
            .back()
            .cloned()
            .unwrap_or_else(|| "no demo chapters loaded".into());
        Paragraph::new(Line::styled(format!(" {notice}"), theme::dim()))
            .block(block("story", false))
            .render(area, buf);
        return;
    };
    let title = format!(
        "chapter {}/{} · {}",
        run.index + 1,
        run.len(),
        chapter.title
    );
    let status = match (run.phase, &chapter.fault) {
        (Some(Phase::Countdown { .. }), Some(fault)) => Span::styled(
            format!("{fault} in {} s", run.countdown_s(view.now_ms).unwrap_or(0)),
            theme::awaiting_approval(),
        ),
        (Some(Phase::Waiting { .. }), _) => Span::styled(
            format!("waiting for: {:?}", chapter.wait_for).to_lowercase(),
            theme::key(),
        ),
        (Some(Phase::Done { met: false, .. }), _) => Span::styled(
            "not seen within 2 minutes · next chapter soon",
            theme::awaiting_approval(),
        ),
        (Some(Phase::Done { .. }), _) if run.autoplay => {
            Span::styled("done · next chapter soon", theme::good())
        }
        (Some(Phase::Done { .. }), _) => {
            Span::styled("done · press n for the next chapter", theme::good())
        }
        _ => Span::raw(""),
    };
    let mut lines = vec![Line::from(status)];
    // A fresh notice (a refused key says why) goes above the narrative, which may fill the
    // pane; an old one gives the space back.
    if let Some(notice) = view.notices.back()
        && view.now_ms.saturating_sub(view.notice_at_ms) < NOTICE_SHOWN_MS
    {
        lines.push(Line::styled(notice.clone(), theme::awaiting_approval()));
    }
    lines.push(Line::raw(
        chapter
            .narrative
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    ));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(block(&title, false))
        .render(area, buf);
}
