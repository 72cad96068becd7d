//! The whole screen: the layout of the panes, then any popups on top.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};

use crate::panes;
use crate::view::View;

pub fn draw(frame: &mut Frame, view: &View) {
    render(view, frame.area(), frame.buffer_mut());
}

pub fn render(view: &View, area: Rect, buf: &mut Buffer) {
    let compact = area.height < 30;
    let top_height = (view.nodes.len().max(3) as u16 + 2).min(if compact { 6 } else { 8 });
    let bottom_height = if compact { 6 } else { 8 };
    let [header, top, middle, bottom, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top_height),
        Constraint::Fill(1),
        Constraint::Length(bottom_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let [cluster, workload] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [tickets, reasoning] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(middle);
    let [actions, chapter] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    panes::header::render(view, header, buf);
    panes::cluster::render(view, cluster, buf);
    panes::workload::render(view, workload, buf);
    panes::tickets::render(view, tickets, buf);
    panes::reasoning::render(view, reasoning, buf);
    panes::actions::render(view, actions, buf);
    panes::chapter::render(view, chapter, buf);
    panes::footer::render(footer, buf);
    for popup in &view.ui.popups {
        panes::popups::render(view, *popup, area, buf);
    }
}
