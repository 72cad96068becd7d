//! Deployment targets: where a subject's processes run, and the means to disturb them.

pub mod docker;
pub mod local;
pub mod watch_only;
