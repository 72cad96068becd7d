//! `--record`: an asciicast v2 file of the session as drawn (a header line, then one timed
//! output event per frame), playable with `asciinema play`. Known secrets are scrubbed from
//! every frame before it is written, as a backstop: nothing on screen should show one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use color_eyre::eyre::{Result, WrapErr};

pub struct Recorder {
    out: BufWriter<File>,
    started: Instant,
    pending: Vec<u8>,
    secrets: Vec<String>,
}

/// Replaces every secret (of 8 characters or more) with a marker.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    out
}

impl Recorder {
    pub fn create(path: &Path, title: &str, secrets: Vec<String>) -> Result<Self> {
        let file = File::create(path)
            .wrap_err_with(|| format!("creating the recording {}", path.display()))?;
        let (width, height) = crossterm::terminal::size().unwrap_or((120, 36));
        let mut out = BufWriter::new(file);
        let header = serde_json::json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "title": title,
            "env": { "TERM": std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()) },
        });
        writeln!(out, "{header}")?;
        Ok(Self {
            out,
            started: Instant::now(),
            pending: Vec::new(),
            secrets,
        })
    }

    pub fn record(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Writes what was drawn since the last flush as one output event.
    pub fn flush_frame(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = scrub(&String::from_utf8_lossy(&self.pending), &self.secrets);
        self.pending.clear();
        let event = serde_json::json!([self.started.elapsed().as_secs_f64(), "o", text]);
        writeln!(self.out, "{event}")?;
        self.out.flush()
    }

    pub fn resized(&mut self, width: u16, height: u16) -> std::io::Result<()> {
        let event = serde_json::json!([
            self.started.elapsed().as_secs_f64(),
            "r",
            format!("{width}x{height}")
        ]);
        writeln!(self.out, "{event}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_recording() {
        let secrets = vec!["0123456789abcdef".to_string(), "short".to_string()];
        assert_eq!(
            scrub("token=0123456789abcdef; short", &secrets),
            "token=[redacted]; short"
        );
    }

    #[test]
    fn a_recording_is_an_asciicast_v2_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.cast");
        let mut r = Recorder::create(&path, "t", vec!["sk-secret-value".into()]).unwrap();
        r.record(b"\x1b[1;1Hhello sk-secret-value");
        r.flush_frame().unwrap();
        drop(r);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(header["version"], 2);
        assert!(header["width"].as_u64().unwrap() > 0);
        let event: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(event[1], "o");
        assert!(event[2].as_str().unwrap().contains("hello [redacted]"));
        assert!(!text.contains("sk-secret-value"));
    }
}
