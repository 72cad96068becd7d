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
    /// The word in the one-line footer; bindings without one show only in the help popup.
    pub footer: Option<&'static str>,
}

#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    Binding { key: Key::Char('c'), label: "c", command: Command::OpenChaosMenu, help: "chaos menu: pick a fault to inject", footer: Some("chaos") },
    Binding { key: Key::Digit, label: "1-9", command: Command::Inject(0), help: "inject the fault with that number", footer: None },
    Binding { key: Key::Char('a'), label: "a", command: Command::Approve, help: "approve (run) the selected action", footer: Some("approve") },
    Binding { key: Key::Char('r'), label: "r", command: Command::Reject, help: "reject the selected action", footer: Some("reject") },
    Binding { key: Key::Char('x'), label: "x", command: Command::OpenPicker, help: "pick an action yourself for the selected ticket", footer: Some("act") },
    Binding { key: Key::Char('u'), label: "u", command: Command::Undo, help: "undo the selected completed action (asks first)", footer: None },
    Binding { key: Key::Char('f'), label: "f", command: Command::OpenFilter, help: "filter nodes and tickets (name, invariant, health)", footer: None },
    Binding { key: Key::Char('m'), label: "m", command: Command::CycleMode, help: "cycle mode: observe → approve → execute", footer: Some("mode") },
    Binding { key: Key::Char('K'), label: "K", command: Command::AskKillSwitch, help: "kill switch (asks first to engage)", footer: Some("kill switch") },
    Binding { key: Key::Char('n'), label: "n", command: Command::NextChapter, help: "next demo chapter", footer: Some("next chapter") },
    Binding { key: Key::Char('p'), label: "p", command: Command::PreviousChapter, help: "previous demo chapter", footer: None },
    Binding { key: Key::Code(KeyCode::Tab), label: "tab", command: Command::FocusNext, help: "focus the next pane", footer: None },
    Binding { key: Key::Code(KeyCode::Up), label: "↑", command: Command::SelectUp, help: "select the previous ticket (or action; or scroll the cluster)", footer: None },
    Binding { key: Key::Code(KeyCode::Down), label: "↓", command: Command::SelectDown, help: "select the next ticket (or action; or scroll the cluster)", footer: None },
    Binding { key: Key::Code(KeyCode::PageUp), label: "pgup", command: Command::ScrollUp, help: "scroll the reasoning back", footer: None },
    Binding { key: Key::Code(KeyCode::PageDown), label: "pgdn", command: Command::ScrollDown, help: "scroll the reasoning forward", footer: None },
    Binding { key: Key::Char('/'), label: "/", command: Command::OpenPrompt, help: "ask the brain a question", footer: Some("ask") },
    Binding { key: Key::Char('?'), label: "?", command: Command::ToggleHelp, help: "help: every key", footer: Some("help") },
    Binding { key: Key::Char('q'), label: "q", command: Command::Quit, help: "quit (stops the cluster it started)", footer: Some("quit") },
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
        Some(Popup::Filter) => match event.code {
            KeyCode::Esc => Some(Command::Dismiss),
            KeyCode::Enter => return Some(Msg::Filter(view.filter_input.lines().join(""))),
            _ => {
                view.filter_input.input(event);
                None
            }
        },
        Some(Popup::Picker) => {
            let picker = view.picker.as_mut()?;
            match picker.key(event) {
                crate::picker::Outcome::Stay => None,
                crate::picker::Outcome::Close => Some(Command::Dismiss),
                crate::picker::Outcome::Send(pick) => return Some(Msg::Pick(pick)),
            }
        }
        Some(Popup::ConfirmContext) => {
            let (_, typed) = view.guarded.as_mut()?;
            match event.code {
                KeyCode::Esc => Some(Command::Dismiss),
                KeyCode::Enter => {
                    let name = view.header.context.as_ref().map(|c| c.name.as_str());
                    (Some(typed.lines().join("").trim()) == name).then_some(Command::ConfirmContext)
                }
                _ => {
                    typed.input(event);
                    None
                }
            }
        }
        Some(Popup::ConfirmApproval(id)) => match event.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Command::ConfirmApproval(id)),
            _ => Some(Command::Dismiss),
        },
        Some(Popup::ConfirmUndo(id)) => match event.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => Some(Command::ConfirmUndo(id)),
            _ => Some(Command::Dismiss),
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

/// The footer: the bindings that have a footer word, in table order.
pub fn footer_items() -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter_map(|b| Some((b.label, b.footer?)))
        .collect()
}
