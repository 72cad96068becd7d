//! Brains: the offline rules brain here; the LLM brains arrive with their own modules.

pub mod rules;
mod template;

pub use rules::RulesBrain;
pub use template::fill;
