//! Brains: the offline rules brain, and LLM brains (Claude over the Messages API, and any
//! OpenAI-compatible server) that share one agent loop.

pub mod anthropic;
mod anthropic_wire;
pub mod llm;
mod narrated;
pub mod openai;
pub mod prompt;
pub mod rules;
mod template;

pub use narrated::NarratedTools;
pub use rules::RulesBrain;
pub use template::fill;

use std::sync::Arc;

use operator_protocol::Brain;

/// The brains operator-tui ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrainName {
    Rules,
    Anthropic,
    Openai,
}

/// Which brain diagnoses tickets, and with which model; unnamed means chosen by `choose`.
#[derive(Debug, Clone, Default)]
pub struct BrainChoice {
    pub brain: Option<BrainName>,
    pub model: Option<String>,
}

/// The brain asked for: anthropic when a key is set and none is named, else rules.
pub fn choose(args: &BrainChoice) -> Result<Arc<dyn Brain>, String> {
    let name = args.brain.unwrap_or(
        if std::env::var("ANTHROPIC_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
            BrainName::Anthropic
        } else {
            BrainName::Rules
        },
    );
    Ok(match name {
        BrainName::Rules => Arc::new(RulesBrain),
        BrainName::Anthropic => Arc::new(anthropic::AnthropicBrain::new(
            anthropic::AnthropicConfig::from_env(args.model.clone())?,
        )?),
        BrainName::Openai => Arc::new(openai::OpenAiBrain::new(openai::OpenAiConfig::from_env(
            args.model.clone(),
        ))?),
    })
}
