//! Brains: the offline rules brain, and LLM brains (Claude over the Messages API, and any
//! OpenAI-compatible server) that share one agent loop.

pub mod anthropic;
mod anthropic_wire;
pub mod llm;
pub mod openai;
pub mod prompt;
pub mod rules;
mod template;

pub use rules::RulesBrain;
pub use template::fill;
