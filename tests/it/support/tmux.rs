//! A private tmux server for the tests that drive the full screen as a person would: keys in
//! with send-keys, the screen out with capture-pane. Killed with everything in it when dropped.

use std::process::Command;

pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    /// A server whose socket name no other test uses.
    pub fn new(name: &str) -> Self {
        Self {
            socket: format!("operator-test-{}-{name}", std::process::id()),
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed (scripts/test installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` in a detached 120×36 session named "t".
    pub fn start(&self, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "36",
            "-s",
            "t",
            command,
        ]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
