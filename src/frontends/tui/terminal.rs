//! The terminal's lifecycle: raw mode and the alternate screen on the way in, restored on the
//! way out and on panic. Output goes to stdout and, when recording, to the recorder too.

use std::io::{Stdout, Write};
use std::sync::{Arc, Mutex};

use color_eyre::eyre::Result;
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::recording::Recorder;

/// Stdout, copied into the recording when there is one.
pub struct Tee {
    stdout: Stdout,
    recorder: Option<Arc<Mutex<Recorder>>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.stdout.write(buf)?;
        if let Some(r) = &self.recorder {
            r.lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stdout.flush()?;
        if let Some(r) = &self.recorder {
            r.lock().unwrap_or_else(|p| p.into_inner()).flush_frame()?;
        }
        Ok(())
    }
}

fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

pub struct Screen {
    terminal: Terminal<CrosstermBackend<Tee>>,
    recorder: Option<Arc<Mutex<Recorder>>>,
    active: bool,
    /// False for NO_COLOR and --color never: frames are drawn without colours.
    colors: bool,
}

impl Screen {
    pub fn enter(recorder: Option<Recorder>, colors: bool) -> Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let recorder = recorder.map(|r| Arc::new(Mutex::new(r)));
        let mut tee = Tee {
            stdout: std::io::stdout(),
            recorder: recorder.clone(),
        };
        terminal::enable_raw_mode()?;
        execute!(tee, terminal::EnterAlternateScreen, cursor::Hide)?;
        let terminal = Terminal::new(CrosstermBackend::new(tee))?;
        Ok(Self {
            terminal,
            recorder,
            active: true,
            colors,
        })
    }

    pub fn draw(&mut self, view: &operator_widgets::View) -> Result<()> {
        let colors = self.colors;
        self.terminal.draw(|frame| {
            operator_widgets::draw(frame, view);
            if !colors {
                operator_widgets::theme::strip_colors(frame.buffer_mut());
            }
        })?;
        Ok(())
    }

    pub fn resized(&mut self, width: u16, height: u16) {
        if let Some(r) = &self.recorder {
            let _ = r
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .resized(width, height);
        }
    }

    pub fn leave(&mut self) -> Result<()> {
        if self.active {
            self.active = false;
            let backend = self.terminal.backend_mut();
            execute!(backend, terminal::LeaveAlternateScreen, cursor::Show)?;
            terminal::disable_raw_mode()?;
        }
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if self.active {
            restore();
        }
    }
}
