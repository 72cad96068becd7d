//! The selected ticket's brain output, streaming live; once the diagnosis lands, its root
//! cause, evidence, rejected alternatives and recommendations are laid out under it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::panes::block;
use crate::theme;
use crate::view::{Focus, Transcript, View};

fn diagnosis_lines(t: &Transcript) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    // With demo pacing, the conclusion waits for the reasoning that leads to it.
    if let Some(d) = t.diagnosis.as_ref().filter(|_| t.pending.is_empty()) {
        lines.push(Line::raw(""));
        let cause = if d.is_unknown() {
            Span::styled(" unknown — needs a human ", theme::needs_a_human())
        } else {
            Span::styled(d.root_cause.category.clone(), theme::good())
        };
        lines.push(Line::from(vec![
            Span::styled("Root cause ", theme::title()),
            cause,
            Span::styled(
                format!("  {:.0}% confident", d.confidence * 100.0),
                theme::dim(),
            ),
        ]));
        lines.push(Line::raw(format!("  {}", d.root_cause.explanation)));
        if !d.evidence.is_empty() {
            lines.push(Line::styled("Evidence", theme::title()));
            for e in &d.evidence {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {} ", e.source), theme::key()),
                    Span::raw(e.observation.clone()),
                ]));
            }
        }
        if !d.alternatives.is_empty() {
            lines.push(Line::styled("Ruled out", theme::title()));
            for a in &d.alternatives {
                lines.push(Line::from(vec![
                    Span::styled(format!("  ✗ {} ", a.category), theme::bad()),
                    Span::styled(a.why_rejected.clone(), theme::dim()),
                ]));
            }
        }
        if !d.recommended_actions.is_empty() {
            lines.push(Line::styled("Recommended", theme::title()));
            for r in &d.recommended_actions {
                let params = serde_json::Value::Object(r.params.clone().into_iter().collect());
                lines.push(Line::from(vec![
                    Span::styled(format!("  → {} {params} ", r.action), theme::key()),
                    Span::styled(r.rationale.clone(), theme::dim()),
                ]));
            }
        }
        let c = &d.cost;
        let mut cost = format!(
            "  {} tool call{}",
            c.tool_calls,
            if c.tool_calls == 1 { "" } else { "s" }
        );
        if c.input_tokens + c.output_tokens > 0 {
            cost.push_str(&format!(
                ", {} tokens in, {} out",
                c.input_tokens, c.output_tokens
            ));
        }
        if let Some(usd) = c.usd {
            cost.push_str(&format!(", ${usd:.4}"));
        }
        lines.push(Line::styled(cost, theme::dim()));
    }
    if let Some(reason) = &t.refused {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("Refused ", theme::bad()),
            Span::raw(reason.clone()),
        ]));
    }
    lines
}

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let focused = view.ui.focus == Focus::Reasoning;
    let Some(ticket) = view.selected_ticket() else {
        let hint = Line::styled(
            " the brain's reasoning streams here when a ticket opens",
            theme::dim(),
        );
        Paragraph::new(hint)
            .block(block("reasoning", focused))
            .render(area, buf);
        return;
    };
    let title = format!(
        "reasoning · #{} {} · {}",
        ticket.id, ticket.invariant, view.header.brain
    );
    let inner = block("", false).inner(area);
    // Only the tail can be on screen: a wrapped line never takes fewer rows than one, so the
    // last (height + scroll) lines always cover the view, however long the transcript grows.
    let keep = (inner.height + view.ui.reasoning_scroll) as usize;
    let mut lines: Vec<Line> = Vec::new();
    match view.transcripts.get(&ticket.id) {
        None => lines.push(Line::styled(" waiting for the brain…", theme::dim())),
        Some(t) => {
            let tail = diagnosis_lines(t);
            // A conclusion taller than the pane is shown from its first line (the root cause,
            // "unknown — needs a human"), not its last: the verdict is what a person must see.
            let tail_rows = Paragraph::new(tail.clone())
                .wrap(Wrap { trim: false })
                .line_count(inner.width) as u16;
            if !tail.is_empty() && tail_rows >= inner.height && view.ui.reasoning_scroll == 0 {
                // Without the stream above it, the blank line that set it apart goes too.
                let skip = usize::from(tail[0].spans.iter().all(|s| s.content.is_empty()));
                Paragraph::new(tail[skip..].to_vec())
                    .wrap(Wrap { trim: false })
                    .block(block(&title, focused))
                    .render(area, buf);
                return;
            }
            let streamed = keep.saturating_sub(tail.len());
            let first = t.lines.len().saturating_sub(streamed);
            lines.extend(t.lines[first..].iter().map(|l| Line::raw(l.clone())));
            if !t.partial.is_empty() {
                lines.push(Line::from(vec![
                    Span::raw(t.partial.clone()),
                    Span::styled("▌", theme::key()),
                ]));
            }
            lines.extend(tail);
        }
    }
    if let Some(answer) = &view.answer {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Answer", theme::title()));
        lines.extend(answer.lines().map(|l| Line::raw(format!("  {l}"))));
    }
    // Follow the stream: show the bottom, minus what the user scrolled back.
    let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false });
    let total = paragraph.line_count(inner.width) as u16;
    let top = total
        .saturating_sub(inner.height)
        .saturating_sub(view.ui.reasoning_scroll);
    paragraph
        .scroll((top, 0))
        .block(block(&title, focused))
        .render(area, buf);
}
