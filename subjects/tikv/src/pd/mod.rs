//! The PD HTTP client. Any PD member can be asked: followers forward to the leader, and a
//! follower without a leader answers 503, so requests go to each configured member in turn.
//! Errors come back as JSON strings, errcode objects or plain text; all become a `PdError`.

pub mod types;

use std::sync::Arc;
use std::time::Duration;

use operator_protocol::{HttpRequest, HttpTransport, ReqwestTransport};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use types::*;

/// What PD answered instead of a result: its status and its message, whatever the body shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdError {
    /// None when no PD member could be reached at all.
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for PdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "PD answered {status}: {}", self.message),
            None => write!(f, "no PD member answered: {}", self.message),
        }
    }
}

impl std::error::Error for PdError {}

/// The text of an error body: a JSON string, an errcode object `{code, msg}`, or plain text.
pub fn error_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::String(s)) => s,
        Ok(Value::Object(o)) => match (
            o.get("code").and_then(Value::as_str),
            o.get("msg").and_then(Value::as_str),
        ) {
            (Some(code), Some(msg)) => format!("{code}: {msg}"),
            (None, Some(msg)) => msg.to_string(),
            _ => Value::Object(o).to_string(),
        },
        _ => body.trim().to_string(),
    }
}

pub struct PdClient {
    members: Vec<String>,
    transport: Arc<dyn HttpTransport>,
}

const API: &str = "/pd/api/v1";

impl PdClient {
    /// `members`: PD client URLs, e.g. `http://127.0.0.1:2379`.
    pub fn new(members: Vec<String>) -> Result<Self, String> {
        Self::with_transport(
            members,
            Arc::new(ReqwestTransport::new(Duration::from_secs(3))?),
        )
    }

    /// PD at `members`, reached through `transport` (a simulation answers in-process).
    pub fn with_transport(
        members: Vec<String>,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Self, String> {
        if members.is_empty() {
            return Err("at least one PD address is needed".into());
        }
        Ok(Self {
            members: members
                .into_iter()
                .map(|m| m.trim_end_matches('/').to_string())
                .collect(),
            transport,
        })
    }

    /// Sends to each member until one answers with something other than "no leader".
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), PdError> {
        let mut last = PdError {
            status: None,
            message: "no member tried".into(),
        };
        for member in &self.members {
            let url = format!("{member}{API}{path}");
            let request = HttpRequest::new(method, &url).json(body);
            let answer = match self.transport.send(request).await {
                Ok(answer) => answer,
                Err(e) => {
                    last = PdError {
                        status: None,
                        message: format!("{member}: {e}"),
                    };
                    continue;
                }
            };
            if answer.status == 503 {
                // A follower that knows no leader; another member may.
                last = PdError {
                    status: Some(503),
                    message: format!("{member}: {}", error_message(&answer.body)),
                };
                continue;
            }
            return Ok((answer.status, answer.body));
        }
        Err(last)
    }

    /// A JSON answer, whatever its content type (region endpoints send application/octet-stream).
    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, PdError> {
        let (status, text) = self.send("GET", path, None).await?;
        if !(200..300).contains(&status) {
            return Err(PdError {
                status: Some(status),
                message: error_message(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| PdError {
            status: Some(status),
            message: format!("unexpected shape from {path}: {e}"),
        })
    }

    /// A call whose success answer is a message ("The operator is created.").
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, PdError> {
        let (status, text) = self.send(method, path, body).await?;
        if (200..300).contains(&status) {
            Ok(error_message(&text))
        } else {
            Err(PdError {
                status: Some(status),
                message: error_message(&text),
            })
        }
    }

    pub async fn stores(&self) -> Result<StoresInfo, PdError> {
        self.get_json("/stores").await
    }

    pub async fn store(&self, id: u64) -> Result<StoreInfo, PdError> {
        self.get_json(&format!("/store/{id}")).await
    }

    /// A region, or None for an unknown id (v8.5 answers a zero region, older PDs `null`, newer 404).
    pub async fn region(&self, id: u64) -> Result<Option<RegionInfo>, PdError> {
        match self
            .get_json::<Option<RegionInfo>>(&format!("/region/id/{id}"))
            .await
        {
            Ok(region) => Ok(region.filter(|r| r.id != 0)),
            Err(PdError {
                status: Some(404), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn regions_check(&self, check: RegionCheck) -> Result<Vec<RegionInfo>, PdError> {
        let info: RegionsInfo = self
            .get_json(&format!("/regions/check/{}", check.path()))
            .await?;
        Ok(info.regions.unwrap_or_default())
    }

    pub async fn health(&self) -> Result<Vec<HealthEntry>, PdError> {
        self.get_json("/health").await
    }

    pub async fn members(&self) -> Result<MembersInfo, PdError> {
        self.get_json("/members").await
    }

    /// The leader, or None while PD has none.
    pub async fn leader(&self) -> Result<Option<Member>, PdError> {
        self.get_json("/leader").await
    }

    pub async fn max_replicas(&self) -> Result<u64, PdError> {
        let config: Value = self.get_json("/config/replicate").await?;
        config["max-replicas"].as_u64().ok_or_else(|| PdError {
            status: Some(200),
            message: "no max-replicas in /config/replicate".into(),
        })
    }

    pub async fn max_store_down_time(&self) -> Result<Duration, PdError> {
        let config: Value = self.get_json("/config/schedule").await?;
        config["max-store-down-time"]
            .as_str()
            .and_then(parse_go_duration)
            .ok_or_else(|| PdError {
                status: Some(200),
                message: "no readable max-store-down-time in /config/schedule".into(),
            })
    }

    pub async fn operators(&self) -> Result<Vec<String>, PdError> {
        self.get_json("/operators").await
    }

    pub async fn transfer_leader(&self, region: u64, to_store: u64) -> Result<String, PdError> {
        let body =
            json!({ "name": "transfer-leader", "region_id": region, "to_store_id": to_store });
        self.call("POST", "/operators", Some(&body)).await
    }

    pub async fn transfer_peer(
        &self,
        region: u64,
        from_store: u64,
        to_store: u64,
    ) -> Result<String, PdError> {
        let body = json!({ "name": "transfer-peer", "region_id": region, "from_store_id": from_store, "to_store_id": to_store });
        self.call("POST", "/operators", Some(&body)).await
    }

    /// The names of the schedulers PD runs (`balance-leader-scheduler`, ...).
    pub async fn schedulers(&self) -> Result<Vec<String>, PdError> {
        self.get_json("/schedulers").await
    }

    /// A scheduler's configuration (`/scheduler-config/NAME/list`); None when the scheduler
    /// does not run (PD answers 404 then).
    async fn scheduler_config(&self, name: &str) -> Result<Option<Value>, PdError> {
        match self
            .get_json(&format!("/scheduler-config/{name}/list"))
            .await
        {
            Ok(config) => Ok(Some(config)),
            Err(PdError {
                status: Some(404), ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stores evict-leader-scheduler evicts from; none when the scheduler does not exist.
    pub async fn evict_leader_stores(&self) -> Result<Vec<u64>, PdError> {
        let Some(config) = self.scheduler_config("evict-leader-scheduler").await? else {
            return Ok(Vec::new());
        };
        let ranges = config["store-id-ranges"]
            .as_object()
            .ok_or_else(|| PdError {
                status: Some(200),
                message: "no store-id-ranges in evict-leader-scheduler's config".into(),
            })?;
        Ok(ranges.keys().filter_map(|id| id.parse().ok()).collect())
    }

    /// The store PD's evict-slow-store-scheduler evicts leaders from (none when it evicts
    /// nothing, or does not run).
    pub async fn evict_slow_stores(&self) -> Result<Vec<u64>, PdError> {
        let Some(config) = self.scheduler_config("evict-slow-store-scheduler").await? else {
            return Ok(Vec::new());
        };
        Ok(config["evict-stores"]
            .as_array()
            .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default())
    }

    pub async fn add_evict_leader(&self, store: u64) -> Result<String, PdError> {
        let body = json!({ "name": "evict-leader-scheduler", "store_id": store });
        self.call("POST", "/schedulers", Some(&body)).await
    }

    pub async fn remove_evict_leader(&self, store: u64) -> Result<String, PdError> {
        self.call(
            "DELETE",
            &format!("/schedulers/evict-leader-scheduler-{store}"),
            None,
        )
        .await
    }

    /// Cancels a store's offline: it serves and may lead again.
    pub async fn set_store_up(&self, id: u64) -> Result<String, PdError> {
        self.call("POST", &format!("/store/{id}/state?state=Up"), None)
            .await
    }

    /// Takes a store offline; PD refuses (400) when too few Up stores would remain.
    pub async fn delete_store(&self, id: u64) -> Result<String, PdError> {
        self.call("DELETE", &format!("/store/{id}"), None).await
    }
}
