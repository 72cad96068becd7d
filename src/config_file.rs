//! The config file: the defaults people set once, at `$XDG_CONFIG_HOME/operator-tui/config.toml`
//! (or `--config FILE`). A flag or an environment variable always wins over it; an unknown key
//! is an error that names it, so a typo never silently does nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};
use serde::Deserialize;

use crate::brains::BrainName;
use crate::model::Mode;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// rules, anthropic or openai.
    pub brain: Option<String>,
    pub model: Option<String>,
    /// observe, approve or execute.
    pub mode: Option<String>,
    /// Never act, never inject chaos, by any path.
    #[serde(default)]
    pub read_only: bool,
    /// The context shown in the header (one of `contexts`, or any name).
    pub context: Option<String>,
    /// The confidence each risk needs before execute mode acts alone (0–1).
    #[serde(default)]
    pub gates: GatesConfig,
    /// Named contexts: how each looks, and whether it asks for its name before anything
    /// disruptive.
    #[serde(default)]
    pub contexts: BTreeMap<String, ContextConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesConfig {
    pub safe: Option<f64>,
    pub disruptive: Option<f64>,
    pub destructive: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// red, green, yellow, blue, magenta, cyan, white or gray.
    pub color: Option<String>,
    /// Type the context's name before any disruptive action or chaos.
    #[serde(default)]
    pub protected: bool,
}

/// `$XDG_CONFIG_HOME/operator-tui/config.toml`, else `~/.config/operator-tui/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("operator-tui").join("config.toml"))
}

impl FileConfig {
    /// Reads `explicit` (which must exist), else the default path when it exists, else nothing.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => match default_path().filter(|p| p.exists()) {
                Some(path) => path,
                None => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("reading the config file {}", path.display()))?;
        let config: Self = toml::from_str(&text)
            .wrap_err_with(|| format!("the config file {} does not parse", path.display()))?;
        config
            .check()
            .wrap_err_with(|| format!("in the config file {}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        self.brain_name()?;
        self.mode()?;
        for (name, gate) in [
            ("safe", self.gates.safe),
            ("disruptive", self.gates.disruptive),
            ("destructive", self.gates.destructive),
        ] {
            if let Some(v) = gate.filter(|v| !(0.0..=1.0).contains(v)) {
                return Err(crate::user_error!(
                    "gates.{name} = {v} is not between 0 and 1"
                ));
            }
        }
        for (name, context) in &self.contexts {
            if let Some(color) = &context.color
                && operator_widgets::theme::named_color(color).is_none()
            {
                return Err(crate::user_error!(
                    "contexts.{name}.color = {color:?} is not one of {}",
                    operator_widgets::theme::COLOR_NAMES.join(", ")
                ));
            }
        }
        Ok(())
    }

    pub fn brain_name(&self) -> Result<Option<BrainName>> {
        self.brain
            .as_deref()
            .map(|b| {
                <BrainName as clap::ValueEnum>::from_str(b, false).map_err(|_| {
                    crate::user_error!("brain = {b:?} is not one of rules, anthropic, openai")
                })
            })
            .transpose()
    }

    pub fn mode(&self) -> Result<Option<Mode>> {
        self.mode
            .as_deref()
            .map(|m| {
                Mode::parse(m).ok_or_else(|| {
                    crate::user_error!("mode = {m:?} is not one of observe, approve, execute")
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig> {
        let config: FileConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn the_documented_example_parses() {
        let config = parse(
            r#"
            brain = "rules"
            mode = "approve"
            context = "prod-eu"
            [gates]
            disruptive = 0.9
            [contexts.prod-eu]
            color = "red"
            protected = true
            [contexts.staging]
            color = "green"
            "#,
        )
        .unwrap();
        assert_eq!(config.brain_name().unwrap(), Some(BrainName::Rules));
        assert_eq!(config.mode().unwrap(), Some(Mode::Approve));
        assert_eq!(config.gates.disruptive, Some(0.9));
        assert!(config.contexts["prod-eu"].protected);
        assert!(!config.read_only);
    }

    #[test]
    fn a_typo_or_a_bad_value_is_an_error_that_names_it() {
        for (text, says) in [
            ("mdoe = \"execute\"", "mdoe"),
            ("mode = \"yolo\"", "mode = \"yolo\""),
            ("brain = \"gpt\"", "brain = \"gpt\""),
            ("[gates]\nsafe = 2.0", "gates.safe = 2"),
            ("[contexts.prod]\ncolor = \"purple\"", "contexts.prod.color"),
        ] {
            let error = format!("{:#}", parse(text).unwrap_err());
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
