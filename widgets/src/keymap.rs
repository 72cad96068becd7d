//! The keymap: one table that maps keys to commands and also draws the footer and the help.
//! Keys go to the top popup first, then to global bindings.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::update::{Command, Msg};
use crate::view::{Popup, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Code(KeyCode),
    /// 1 to 9: the chaos at that position in the catalog.
    Digit,
}

pub struct Binding {
    pub key: Key,
    /// How the key is written on screen.
    pub label: &'static str,
    pub command: Command,
    pub help: &'static str,
    /// Shown in the one-line footer (the help popup shows every binding).
    pub footer: bool,
}

const fn bind(
    key: Key,
    label: &'static str,
    command: Command,
    help: &'static str,
    footer: bool,
) -> Binding {
    Binding {
        key,
        label,
        command,
        help,
        footer,
    }
}

pub const BINDINGS: &[Binding] = &[
    bind(
        Key::Char('c'),
        "c",
        Command::OpenChaosMenu,
        "chaos menu: pick a fault to inject",
        true,
    ),
    bind(
        Key::Digit,
        "1-9",
        Command::Inject(0),
        "inject the fault with that number",
        false,
    ),
    bind(
        Key::Char('a'),
        "a",
        Command::Approve,
        "approve (run) the selected action",
        true,
    ),
    bind(
        Key::Char('r'),
        "r",
        Command::Reject,
        "reject the selected action",
        true,
    ),
    bind(
        Key::Char('m'),
        "m",
        Command::CycleMode,
        "cycle mode: observe → approve → execute",
        true,
    ),
    bind(
        Key::Char('K'),
        "K",
        Command::AskKillSwitch,
        "kill switch (asks first to engage)",
        true,
    ),
    bind(
        Key::Char('n'),
        "n",
        Command::NextChapter,
        "next demo chapter",
        true,
    ),
    bind(
        Key::Char('p'),
        "p",
        Command::PreviousChapter,
        "previous demo chapter",
        false,
    ),
    bind(
        Key::Code(KeyCode::Tab),
        "tab",
        Command::FocusNext,
        "focus the next pane",
        false,
    ),
    bind(
        Key::Code(KeyCode::Up),
        "↑",
        Command::SelectUp,
        "select the previous ticket (or action)",
        false,
    ),
    bind(
        Key::Code(KeyCode::Down),
        "↓",
        Command::SelectDown,
        "select the next ticket (or action)",
        false,
    ),
    bind(
        Key::Code(KeyCode::PageUp),
        "pgup",
        Command::ScrollUp,
        "scroll the reasoning back",
        false,
    ),
    bind(
        Key::Code(KeyCode::PageDown),
        "pgdn",
        Command::ScrollDown,
        "scroll the reasoning forward",
        false,
    ),
    bind(
        Key::Char('/'),
        "/",
        Command::OpenPrompt,
        "ask the brain a question",
        true,
    ),
    bind(
        Key::Char('?'),
        "?",
        Command::ToggleHelp,
        "help: every key",
        true,
    ),
    bind(
        Key::Char('q'),
        "q",
        Command::Quit,
        "quit (stops the cluster it started)",
        true,
    ),
];

fn command_for(binding: &Binding, event: &KeyEvent) -> Option<Command> {
    match (binding.key, event.code) {
        (Key::Char(c), KeyCode::Char(k)) if c == k => Some(binding.command),
        (Key::Code(c), k) if c == k => Some(binding.command),
        (Key::Digit, KeyCode::Char(d @ '1'..='9')) => {
            Some(Command::Inject(d as usize - '1' as usize))
        }
        _ => None,
    }
}

/// The command a key means outside any popup.
pub fn global(event: &KeyEvent) -> Option<Command> {
    if event.modifiers.contains(KeyModifiers::CONTROL) && event.code == KeyCode::Char('c') {
        return Some(Command::Quit);
    }
    BINDINGS.iter().find_map(|b| command_for(b, event))
}

/// Turns a key into a message; a key the prompt consumes changes its text and yields nothing.
pub fn handle_key(view: &mut View, event: KeyEvent) -> Option<Msg> {
    let command = match view.ui.top_popup() {
        Some(Popup::Prompt) => match event.code {
            KeyCode::Esc => Some(Command::Dismiss),
            KeyCode::Enter => return Some(Msg::Ask(view.prompt.lines().join("\n"))),
            _ => {
                view.prompt.input(event);
                None
            }
        },
        Some(Popup::ConfirmKillSwitch) => match event.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Command::ConfirmKillSwitch),
            _ => Some(Command::Dismiss),
        },
        Some(Popup::Chaos) => match event.code {
            KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('q') => Some(Command::Dismiss),
            _ => global(&event).filter(|c| matches!(c, Command::Inject(_))),
        },
        Some(Popup::Help) => match event.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') => Some(Command::Dismiss),
            _ => None,
        },
        None => global(&event),
    };
    command.map(Msg::Command)
}

/// The footer: the bindings marked for it, as "key label" pairs.
pub fn footer_items() -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.footer)
        .map(|b| {
            (
                b.label,
                b.help.split([':', '(']).next().unwrap_or(b.help).trim(),
            )
        })
        .collect()
}
