//! The Docker target: a Compose project's containers as the subject's nodes, through the Docker
//! API (bollard). Nodes are found by their Compose labels (project + service); chaos and
//! remedies are container operations: kill, stop, start, pause, unpause, and disconnecting from
//! (or reconnecting to) the project's network for a partition.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use color_eyre::eyre::Result;
use futures::StreamExt;
use operator_protocol::{
    BoxFuture, ContractError, ContractResult, DeploymentTarget, NodeId, ProcessState,
};

const PROJECT_LABEL: &str = "com.docker.compose.project";
const SERVICE_LABEL: &str = "com.docker.compose.service";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One service's container and how to tell it is up.
#[derive(Debug, Clone)]
pub struct DockerNode {
    pub container: String,
    pub network: String,
    /// A loopback URL answering 200 when the node is up, or a TCP address.
    pub ready: Ready,
}

#[derive(Debug, Clone)]
pub enum Ready {
    Http(String),
    Tcp(String),
}

pub struct DockerTarget {
    docker: Docker,
    project: String,
    nodes: BTreeMap<NodeId, DockerNode>,
    http: reqwest::Client,
}

fn contract(e: impl std::fmt::Display) -> ContractError {
    ContractError::Retryable(e.to_string())
}

/// Says what a Docker failure means for the user.
fn explain(e: bollard::errors::Error) -> color_eyre::Report {
    let text = e.to_string();
    if text.contains("No such file") || text.contains("os error 2") {
        crate::user_error!("the Docker socket is missing: is the Docker engine running? ({text})")
    } else if text.contains("ermission denied") {
        crate::user_error!(
            "permission denied on the Docker socket: run as root or join the docker group ({text})"
        )
    } else {
        crate::user_error!("the Docker API failed: {text}")
    }
}

/// The host port a container publishes for `port`/tcp on loopback.
pub fn published_port(inspect: &ContainerInspectResponse, port: u16) -> Option<u16> {
    let ports = inspect.network_settings.as_ref()?.ports.as_ref()?;
    let bindings = ports.get(&format!("{port}/tcp"))?.as_ref()?;
    bindings
        .iter()
        .find_map(|b| b.host_port.as_deref()?.parse().ok())
}

/// The container's name without Docker's leading slash.
pub fn container_name(inspect: &ContainerInspectResponse) -> String {
    inspect
        .name
        .clone()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string()
}

/// The network a Compose container is on (the project's default network if it says none).
pub fn compose_network(inspect: &ContainerInspectResponse, project: &str) -> String {
    inspect
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|n| n.keys().next().cloned())
        .unwrap_or_else(|| format!("{project}_default"))
}

/// The value of `name` in the container's environment.
pub fn env_value(inspect: &ContainerInspectResponse, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    inspect
        .config
        .as_ref()?
        .env
        .as_ref()?
        .iter()
        .find_map(|kv| kv.strip_prefix(&prefix).map(String::from))
}

impl DockerTarget {
    /// The running project's containers, by Compose service name; `compose_file` is named in
    /// the error that says how to start the project.
    pub async fn discover(
        project: &str,
        compose_file: &str,
    ) -> Result<(Docker, HashMap<String, ContainerInspectResponse>)> {
        let docker = Docker::connect_with_local_defaults().map_err(explain)?;
        docker.ping().await.map_err(explain)?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{PROJECT_LABEL}={project}")],
        )]);
        let listed = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(explain)?;
        let mut services = HashMap::new();
        for summary in listed {
            let Some(id) = summary.id else { continue };
            let Some(service) = summary
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_LABEL))
                .cloned()
            else {
                continue;
            };
            let inspect = docker.inspect_container(&id, None).await.map_err(explain)?;
            services.insert(service, inspect);
        }
        if services.is_empty() {
            return Err(crate::user_error!(
                "no containers of Compose project {project:?}: start it with `docker-compose -p {project} -f {compose_file} up -d`"
            ));
        }
        Ok((docker, services))
    }

    pub fn new(docker: Docker, project: &str, nodes: BTreeMap<NodeId, DockerNode>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("static client config");
        Self {
            docker,
            project: project.to_string(),
            nodes,
            http,
        }
    }

    fn node(&self, node: &NodeId) -> ContractResult<&DockerNode> {
        self.nodes.get(node).ok_or_else(|| {
            contract(format!(
                "Compose project {} has no service {node}",
                self.project
            ))
        })
    }

    async fn wait_ready(&self, node: &NodeId) -> ContractResult<()> {
        let ready = self.node(node)?.ready.clone();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let up = match &ready {
                Ready::Http(url) => self
                    .http
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200),
                Ready::Tcp(address) => tokio::net::TcpStream::connect(address).await.is_ok(),
            };
            if up {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(contract(format!(
                    "{node} did not become ready within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A container the subject expects but Docker no longer has is a clear error.
    fn gone(&self, node: &NodeId, e: bollard::errors::Error) -> ContractError {
        let text = e.to_string();
        if text.contains("No such container") || text.contains("404") {
            contract(format!(
                "the container for {node} is gone from Docker; recreate it with docker-compose -p {} up -d",
                self.project
            ))
        } else {
            contract(format!("{node}: {text}"))
        }
    }
}

impl DeploymentTarget for DockerTarget {
    fn kind(&self) -> &str {
        "docker"
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().cloned().collect()
    }

    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let name = &self.node(node)?.container;
            // A paused container cannot be killed until it runs again.
            let _ = self.docker.unpause_container(name).await;
            match self
                .docker
                .kill_container(
                    name,
                    Some(
                        KillContainerOptionsBuilder::default()
                            .signal("SIGKILL")
                            .build(),
                    ),
                )
                .await
            {
                Ok(()) => Ok(()),
                // Killing what is not running is no error: the goal state holds.
                Err(e) if e.to_string().contains("is not running") => Ok(()),
                Err(e) => Err(self.gone(node, e)),
            }
        })
    }

    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let name = &self.node(node)?.container;
            self.docker
                .stop_container(
                    name,
                    Some(StopContainerOptionsBuilder::default().t(5).build()),
                )
                .await
                .map_err(|e| self.gone(node, e))
        })
    }

    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let name = &self.node(node)?.container;
            match self.docker.start_container(name, None).await {
                Ok(()) => {}
                Err(e)
                    if e.to_string().contains("304")
                        || e.to_string().contains("already started") => {}
                Err(e) => return Err(self.gone(node, e)),
            }
            self.wait_ready(node).await
        })
    }

    fn pause<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            self.docker
                .pause_container(&self.node(node)?.container)
                .await
                .map_err(|e| self.gone(node, e))
        })
    }

    fn resume<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            self.docker
                .unpause_container(&self.node(node)?.container)
                .await
                .map_err(|e| self.gone(node, e))
        })
    }

    fn isolate<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let n = self.node(node)?;
            let request = NetworkDisconnectRequest {
                container: n.container.clone(),
                force: Some(true),
            };
            self.docker
                .disconnect_network(&n.network, request)
                .await
                .map_err(|e| self.gone(node, e))
        })
    }

    fn heal<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let n = self.node(node)?;
            let endpoint = bollard::models::EndpointSettings {
                aliases: Some(vec![node.0.clone()]),
                ..Default::default()
            };
            let request = NetworkConnectRequest {
                container: n.container.clone(),
                endpoint_config: Some(endpoint),
            };
            match self.docker.connect_network(&n.network, request).await {
                Ok(()) => {}
                // Already connected: nothing to heal.
                Err(e) if e.to_string().contains("already exists") => {}
                Err(e) => return Err(self.gone(node, e)),
            }
            self.wait_ready(node).await
        })
    }

    fn tail_logs<'a>(
        &'a self,
        node: &'a NodeId,
        lines: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>> {
        Box::pin(async move {
            let name = &self.node(node)?.container;
            let options = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .tail(&lines.to_string())
                .build();
            let mut stream = self.docker.logs(name, Some(options));
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.gone(node, e))?;
                out.extend(chunk.to_string().lines().map(String::from));
            }
            Ok(out)
        })
    }

    fn describe<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            let n = self.node(node)?;
            let inspect = self
                .docker
                .inspect_container(&n.container, None)
                .await
                .map_err(|e| self.gone(node, e))?;
            let state = inspect.state.as_ref();
            let status = state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            // The runbook speaks of processes: a paused container is a stopped process.
            let process = match status.as_str() {
                "running" => ProcessState::Running,
                "paused" => ProcessState::Stopped,
                _ => ProcessState::Exited,
            };
            // How an exited container ended: exit 0 (`docker stop`, a clean shutdown) is
            // someone's deliberate stop; a kill (137), an error or the OOM killer is a crash.
            let exited = process == ProcessState::Exited && status != "created";
            let code = state.and_then(|s| s.exit_code).filter(|_| exited);
            let oom = state.and_then(|s| s.oom_killed).unwrap_or(false);
            let exit_status = code.map(|c| match (c, oom) {
                (_, true) => format!("exit code {c}, killed by the OOM killer"),
                (c, _) if c > 128 => format!("exit code {c} (killed by signal {})", c - 128),
                (c, _) => format!("exit code {c}"),
            });
            let connected = inspect
                .network_settings
                .as_ref()
                .and_then(|s| s.networks.as_ref())
                .is_some_and(|nets| nets.contains_key(&n.network));
            Ok(serde_json::json!({
                "state": process,
                "container": n.container,
                "container_status": status,
                "pid": state.and_then(|s| s.pid).filter(|p| *p > 0),
                "restarts": inspect.restart_count,
                "network": n.network,
                "connected": connected,
                "exit_status": exit_status,
                "stopped_deliberately": (code == Some(0) && !oom).then_some(true),
            }))
        })
    }
}
