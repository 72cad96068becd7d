//! How a subject asks a process-based target (local child processes) to run its nodes, and
//! the state a target reports of a node's process or container.

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
    /// Redis at `host:port` answers PING with PONG. A connect alone is not enough: a stopped
    /// or busy Redis still has its port accepted by the kernel.
    RedisPing { address: String },
    /// A GET of the URL answers 200.
    Http { url: String },
}

impl ReadyProbe {
    /// The TCP port the node serves on, as its probe names it.
    pub fn port(&self) -> Option<u16> {
        let address = match self {
            ReadyProbe::Tcp { address } | ReadyProbe::RedisPing { address } => address.as_str(),
            ReadyProbe::Http { url } => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                rest.split('/').next().unwrap_or_default()
            }
        };
        address.rsplit_once(':')?.1.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_names_the_port_its_node_serves_on() {
        let http = ReadyProbe::Http {
            url: "http://127.0.0.1:18081/health".into(),
        };
        let redis = ReadyProbe::RedisPing {
            address: "127.0.0.1:6390".into(),
        };
        let none = ReadyProbe::Tcp {
            address: "localhost".into(),
        };
        assert_eq!(
            (http.port(), redis.port(), none.port()),
            (Some(18081), Some(6390), None)
        );
    }
}

crate::named_enum!(
    /// What a target knows of a node's process: a paused container counts as a stopped
    /// process, so the runbooks speak of one thing whatever the target.
    ProcessState {
        Running => "running",
        Stopped => "stopped",
        Exited => "exited",
    }
);
