//! operator-tui's widgets: the read model (`View`), the pure `update` that turns messages into
//! state changes and effects, the keymap that turns keys into messages, and the panes that
//! render from `&View`. No tokio, no I/O: the runtime in operator-tui does the rest.

pub mod chapters;
pub mod keymap;
pub mod panes;
pub mod picker;
pub mod screen;
pub mod theme;
pub mod update;
pub mod view;

pub use keymap::{BINDINGS, handle_key};
pub use screen::draw;
pub use update::{Effect, EngineUpdate, Msg, update};
pub use view::View;
