//! How a subject asks a process-based target (local child processes) to run its nodes.

use serde::{Deserialize, Serialize};

use crate::NodeId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    pub id: NodeId,
    pub program: String,
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Considered up once this answers.
    pub ready: ReadyProbe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReadyProbe {
    /// A TCP connect to `host:port` succeeds.
    Tcp { address: String },
    /// A GET of the URL answers 200.
    Http { url: String },
}
