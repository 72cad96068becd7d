//! TiKV's read-only tools for brains and premises: stores, PD members, the cluster, PD's
//! operators, metrics, logs and regions, in PD's own terms.

use operator_protocol::*;
use serde_json::{Value, json};

use crate::facts::*;
use crate::subject::*;

pub fn specs() -> Vec<ToolSpec> {
    vec![
    ToolSpec { name: "store_detail".into(), description: "A store as PD reports it: state, whether it heartbeats, leaders, regions, slow score, disk capacity and what is left, the operators PD is running on it".into(), params: vec![ParamSpec::new("store", "store-N", ParamKind::String { max_len: 32 })] },
    ToolSpec { name: "pd_member".into(), description: "A PD member as PD's health check reports it: healthy, whether it leads, how many members serve; and its process as the deployment target sees it (running, stopped, exited)".into(), params: vec![ParamSpec::new("member", "the member's name, e.g. pd2", ParamKind::String { max_len: 64 })] },
    ToolSpec { name: "cluster_overview".into(), description: "PD's leader and members, every store, the region checks, the workload".into(), params: vec![] },
    ToolSpec { name: "operators".into(), description: "Operators PD is running".into(), params: vec![] },
    ToolSpec { name: "metric_query".into(), description: "Read metrics: a PromQL instant query when Prometheus is configured, else a selector like tikv_raftstore_region_count{type=\"leader\"} over the latest scrape of PD and every store (labelled by instance)".into(), params: vec![ParamSpec::new("query", "PromQL, or a metric name with label matchers", ParamKind::String { max_len: 400 })] },
    ToolSpec { name: "log_tail".into(), description: "The last lines of a node's log (a store like store-2, or a PD member like pd1)".into(), params: vec![ParamSpec::new("node", "store-N or pdN", ParamKind::String { max_len: 32 }), ParamSpec { required: false, ..ParamSpec::new("lines", "how many lines (default 30)", ParamKind::Integer { min: 1, max: MAX_LOG_LINES as i64 }) }] },
    ToolSpec { name: "region_detail".into(), description: "A region as PD reports it: peers and their stores, leader, down and pending peers".into(), params: vec![ParamSpec::new("region", "region id", ParamKind::Integer { min: 1, max: i64::MAX })] },
]
}

/// How far back a store's log is read for a disk it blames.
const DISK_BLAME_LINES: usize = 50;

/// Whether a store's log, since its process last started, warns that its disk is slow or
/// stalls ("disk I/O is slow: raft log append took 900ms").
fn log_blames_disk(lines: &[String]) -> bool {
    let since_start = lines
        .iter()
        .rposition(|l| l.contains("TiKV is ready to serve") || l.contains("Welcome to TiKV"))
        .map_or(lines, |at| &lines[at..]);
    since_start.iter().any(|line| {
        let line = line.to_ascii_lowercase();
        (line.contains("[warn]") || line.contains("[error]"))
            && line.contains("disk")
            && (line.contains("slow") || line.contains("stall"))
    })
}

impl TikvSubject {
    pub(crate) async fn run_tool(
        &self,
        call: &ToolCall,
        target: &dyn DeploymentTarget,
    ) -> ContractResult<Value> {
        match call.tool.as_str() {
            "store_detail" => {
                let store = store_param(&call.args)?;
                let info = self.pd.store(store).await.map_err(pd_error)?;
                // `heartbeating` saves a runbook from listing states: PD only calls a store
                // Disconnected or Down once its heartbeats stop.
                let heartbeating = !info.store.state_name.is_silent();
                let mut detail = json!({ "store": store_node(store), "state_name": info.store.state_name, "heartbeating": heartbeating, "leader_count": info.status.leader_count, "region_count": info.status.region_count, "slow_score": info.status.slow_score, "status_address": info.store.status_address });
                // The store's own metrics come from the latest observation (a tick old
                // at most): whether its status server answers tells a dead process from
                // one that only lost PD.
                if let Some(own) = self.last_store_facts(store) {
                    detail["status_server_answers"] = json!(own.metrics_error.is_none());
                    detail["status_server_error"] = json!(own.metrics_error);
                    detail["append_log_ms"] =
                        json!(own.metrics.as_ref().and_then(|m| m.append_log_ms));
                    detail["own_metrics"] = json!(own.metrics);
                    detail["capacity_bytes"] = json!(own.capacity_bytes);
                    detail["available_bytes"] = json!(own.available_bytes);
                    detail["disk_used_share"] = json!(own.disk_used_share());
                    detail["operators_in_flight"] = json!(self.last_operators_on(store));
                    // A slow disk stays slow across a restart; a stalled process does not.
                    // The store's own log tells them apart when it blames its disk.
                    detail["log_blames_disk"] = match target
                        .tail_logs(&NodeId(store_node(store)), DISK_BLAME_LINES)
                        .await
                    {
                        Ok(lines) => json!(log_blames_disk(&lines)),
                        Err(_) => Value::Null,
                    };
                    detail["leader_eviction"] = json!(own.leader_eviction);
                    detail["leaders_evicted_by_someone_else"] = json!(matches!(
                        own.leader_eviction,
                        Some(LeaderEviction::BySomeoneElse | LeaderEviction::ByPd)
                    ));
                }
                Ok(detail)
            }
            "metric_query" => {
                let query = text_param(&call.args, "query")?;
                let mut samples = self
                    .telemetry
                    .query(query)
                    .await
                    .map_err(ContractError::Permanent)?;
                let total = samples.len();
                samples.truncate(MAX_QUERY_SAMPLES);
                Ok(
                    json!({ "source": self.telemetry.describe(), "samples": samples, "total": total, "truncated": total > MAX_QUERY_SAMPLES }),
                )
            }
            "log_tail" => {
                let node = text_param(&call.args, "node")?;
                let lines = call.args.get("lines").and_then(Value::as_u64).unwrap_or(30);
                let lines = target
                    .tail_logs(&NodeId::from(node), lines.min(MAX_LOG_LINES) as usize)
                    .await?;
                Ok(json!({ "node": node, "lines": lines }))
            }
            "pd_member" => {
                let name = text_param(&call.args, "member")?;
                let health = self.pd.health().await.map_err(pd_error)?;
                let member = health.iter().find(|m| m.name == name).ok_or_else(|| {
                    let known: Vec<&str> = health.iter().map(|m| m.name.as_str()).collect();
                    ContractError::Refused(format!(
                        "PD has no member {name}; it has {}",
                        known.join(", ")
                    ))
                })?;
                let leader = self.pd.leader().await.ok().flatten().map(|m| m.name);
                // What the target sees of its process tells a member that exited from one that
                // runs and answers nobody (stopped, paused); a target that cannot say says why.
                let process = match target.describe(&NodeId::from(name)).await {
                    Ok(process) => process,
                    Err(e) => json!({ "error": e.to_string() }),
                };
                Ok(json!({
                    "member": name,
                    "healthy": member.health,
                    "process": process,
                    "leads": leader.as_deref() == Some(name),
                    "leader": leader,
                    "healthy_members": health.iter().filter(|m| m.health).count(),
                    "members": health.len(),
                }))
            }
            "cluster_overview" => Ok(serde_json::to_value(self.facts().await).unwrap_or_default()),
            "operators" => Ok(json!(self.pd.operators().await.map_err(pd_error)?)),
            "region_detail" => {
                let id = int_param(&call.args, "region")?;
                let region =
                    self.pd.region(id).await.map_err(pd_error)?.ok_or_else(|| {
                        ContractError::NotFound(format!("PD knows no region {id}"))
                    })?;
                Ok(json!({
                    "region": region.id,
                    "stores": region.peers.iter().map(|p| store_node(p.store_id)).collect::<Vec<_>>(),
                    "leader": (region.leader.store_id != 0).then(|| store_node(region.leader.store_id)),
                    "leader_store_id": (region.leader.store_id != 0).then_some(region.leader.store_id),
                    "down_stores": Self::brief(&region).down_stores,
                    "pending_peers": region.pending_peers.len(),
                }))
            }
            other => Err(ContractError::NotFound(format!("TiKV has no tool {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_is_blamed_only_by_warnings_since_the_process_started() {
        let warn = "[2026/12/07 10:00:01.000 +00:00] [WARN] [raft_log_engine.rs] [\"disk I/O is slow: raft log append took 900ms\"]".to_string();
        let ready =
            "[2026/12/07 10:00:02.000 +00:00] [INFO] [server.rs] [\"TiKV is ready to serve\"]"
                .to_string();
        let info = "[2026/12/07 10:00:03.000 +00:00] [INFO] [raft.rs] [\"became leader after an election\"]".to_string();
        assert!(log_blames_disk(std::slice::from_ref(&warn)));
        assert!(log_blames_disk(&[ready.clone(), warn.clone()]));
        assert!(
            !log_blames_disk(&[warn.clone(), ready.clone(), info.clone()]),
            "a warning from before the restart is the old process's"
        );
        assert!(!log_blames_disk(&[info]));
        assert!(!log_blames_disk(&[]));
    }
}
