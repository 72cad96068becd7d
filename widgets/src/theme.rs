//! Colours and symbols, in one place: where colour carries meaning (health, severity,
//! lifecycle state, a human being needed), it is chosen here.

use operator_protocol::{ActionStatus, Health, Mode, Severity, TicketStatus};
use ratatui::style::{Color, Modifier, Style};

pub fn health(h: Health) -> (&'static str, Style) {
    match h {
        Health::Healthy => ("●", Style::new().fg(Color::Green)),
        Health::Degraded => ("◐", Style::new().fg(Color::Yellow)),
        Health::Down => (
            "✖",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Health::Unknown => ("?", Style::new().fg(Color::DarkGray)),
    }
}

pub fn severity(s: Severity) -> Style {
    match s {
        Severity::Info => Style::new().fg(Color::Blue),
        Severity::Warning => Style::new().fg(Color::Yellow),
        Severity::Critical => Style::new().fg(Color::Red),
    }
}

pub fn ticket(status: TicketStatus) -> Style {
    match status {
        TicketStatus::Open | TicketStatus::Diagnosing => Style::new().fg(Color::Yellow),
        TicketStatus::Diagnosed | TicketStatus::Acting | TicketStatus::Verifying => {
            Style::new().fg(Color::Cyan)
        }
        TicketStatus::Resolved => Style::new().fg(Color::Green),
        TicketStatus::Escalated => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        TicketStatus::Held => Style::new().fg(Color::Magenta),
    }
}

pub fn action(status: ActionStatus) -> Style {
    match status {
        ActionStatus::Proposed | ActionStatus::Validated => Style::new().fg(Color::Yellow),
        ActionStatus::Executing => Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ActionStatus::Completed => Style::new().fg(Color::Green),
        ActionStatus::Failed => Style::new().fg(Color::Red),
        ActionStatus::Cancelled => Style::new().fg(Color::DarkGray),
        // Not an error: the executor declined on evidence, and a human decides next.
        ActionStatus::PremiseFailed => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
        // It made things worse and was taken back: a human looks next.
        ActionStatus::RolledBack => Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD),
    }
}

/// The operator declined on evidence and a human decides next: its own state, not an error.
pub fn needs_a_human() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Magenta)
        .add_modifier(Modifier::BOLD)
}

/// What an action loses or gives away.
pub fn destroys() -> Style {
    Style::new().fg(Color::LightRed)
}

/// An action waiting for a human stands out from everything else on screen.
pub fn awaiting_approval() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

pub fn mode(m: Option<Mode>) -> Style {
    match m {
        Some(Mode::Execute) => Style::new()
            .fg(Color::Black)
            .bg(Color::Green)
            .add_modifier(Modifier::BOLD),
        Some(Mode::Approve) => Style::new()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
        Some(Mode::Observe) | None => Style::new()
            .fg(Color::Black)
            .bg(Color::Blue)
            .add_modifier(Modifier::BOLD),
    }
}

pub fn kill_switch_on() -> Style {
    Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD)
}

pub fn simulated() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Magenta)
        .add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

pub fn title() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn focused_border() -> Style {
    Style::new().fg(Color::Cyan)
}

pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub fn good() -> Style {
    Style::new().fg(Color::Green)
}

pub fn bad() -> Style {
    Style::new().fg(Color::Red)
}

/// The colours a context may be given in the config file.
pub const COLOR_NAMES: &[&str] = &[
    "red", "green", "yellow", "blue", "magenta", "cyan", "white", "gray",
];

pub fn named_color(name: &str) -> Option<Color> {
    Some(match name {
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "white" => Color::White,
        "gray" | "grey" => Color::Gray,
        _ => return None,
    })
}

/// The context's label: black on its colour (bold white on red when none was chosen for a
/// protected one, reversed otherwise), so that "which cluster am I on" is never a question.
pub fn context(color: Option<&str>, protected: bool) -> Style {
    match color.and_then(named_color) {
        Some(bg) => Style::new()
            .fg(Color::Black)
            .bg(bg)
            .add_modifier(Modifier::BOLD),
        None if protected => kill_switch_on(),
        None => Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
    }
}

/// Nothing can run: as loud as the kill switch, in its own colour.
pub fn read_only() -> Style {
    Style::new()
        .fg(Color::Black)
        .bg(Color::Cyan)
        .add_modifier(Modifier::BOLD)
}

/// Takes the colours out of a drawn frame for NO_COLOR and `--color never`; what stood out
/// on a background colour stands out reversed instead, and bold stays bold.
pub fn strip_colors(buf: &mut ratatui::buffer::Buffer) {
    for cell in &mut buf.content {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}
