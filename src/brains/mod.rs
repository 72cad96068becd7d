//! Brains: the offline rules brain, and the Claude brain over the Messages API.

pub mod anthropic;
pub mod prompt;
pub mod rules;
mod template;

pub use rules::RulesBrain;
pub use template::fill;
