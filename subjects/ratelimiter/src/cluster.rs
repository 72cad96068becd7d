//! Where the rate limiter runs: its endpoints, and the plan for a local cluster of Redis plus
//! three nodes as child processes (ports, flags, a fresh admin token).

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use operator_protocol::{NodeId, ProcessSpec, ReadyProbe};
use serde::{Deserialize, Serialize};

pub const REDIS_NODE: &str = "redis";
pub const NODE_COUNT: usize = 3;

/// The nodes' names, "node-1" to "node-3".
pub fn node_names() -> Vec<String> {
    (1..=NODE_COUNT).map(|i| format!("node-{i}")).collect()
}

/// Everything the adapter needs to reach a running cluster.
#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoints {
    pub nodes: Vec<(NodeId, String)>,
    pub redis_url: String,
    pub redis_prefix: String,
    /// Sent as a bearer token; never logged, stored or shown.
    pub admin_token: String,
    /// False when Redis belongs to someone else (`--redis-url`): it is not restarted or killed.
    pub redis_managed: bool,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("nodes", &self.nodes)
            .field("redis_url", &self.redis_url)
            .field("admin_token", &"<redacted>")
            .finish()
    }
}

impl Endpoints {
    pub fn node_url(&self, node: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(id, _)| id.0 == node)
            .map(|(_, url)| url.as_str())
    }

    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|(id, _)| id.0.clone()).collect()
    }
}

pub struct LocalPlan {
    pub specs: Vec<ProcessSpec>,
    pub endpoints: Endpoints,
}

/// The node binary: `$RATELIMITER_SVC_BIN`, else beside this executable (or one folder up, as
/// for test binaries in target/*/deps), else on PATH.
pub fn find_node_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("RATELIMITER_SVC_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dirs = exe
        .parent()
        .into_iter()
        .chain(exe.parent().and_then(Path::parent));
    for dir in dirs {
        let candidate = dir.join("ratelimiter-svc");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    which("ratelimiter-svc").ok_or_else(|| {
        "the ratelimiter-svc binary was not found beside operator-tui nor on PATH: \
         build it with `cargo build --release -p ratelimiter-svc` (scripts/demo does), \
         or point RATELIMITER_SVC_BIN at it"
            .to_string()
    })
}

pub fn find_redis_server() -> Result<PathBuf, String> {
    which("redis-server").ok_or_else(|| {
        "redis-server is not installed: install Debian's package with `apt-get install -y redis-server`, \
         or use a Redis you already run with --redis-url redis://HOST:PORT"
            .to_string()
    })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Free loopback ports for one plan. Each stays bound until the plan is made, so the kernel
/// cannot hand the same port out twice (a released port may come back on the next bind: two
/// nodes once got one port, and the second found the first serving it).
#[derive(Default)]
struct FreePorts(Vec<TcpListener>);

impl FreePorts {
    fn take(&mut self) -> Result<u16, String> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free loopback port: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        self.0.push(listener);
        Ok(port)
    }
}

/// 128 random bits as hex, from the kernel.
pub fn fresh_token() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom for an admin token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub struct LocalOptions {
    pub node_binary: PathBuf,
    /// Use this Redis instead of starting one.
    pub external_redis: Option<String>,
    /// Redis's working directory (no persistence is configured; it is only cwd).
    pub data_dir: PathBuf,
    pub default_limit: u64,
    pub default_window_ms: u64,
}

pub fn plan_local(options: &LocalOptions) -> Result<LocalPlan, String> {
    let token = fresh_token()?;
    let mut ports = FreePorts::default();
    let mut specs = Vec::new();
    let (redis_url, redis_managed) = match &options.external_redis {
        Some(url) => (url.clone(), false),
        None => {
            let redis = find_redis_server()?;
            let port = ports.take()?;
            specs.push(ProcessSpec {
                id: NodeId::from(REDIS_NODE),
                program: redis.display().to_string(),
                args: [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    &options.data_dir.display().to_string(),
                ]
                .map(String::from)
                .to_vec(),
                env: vec![],
                ready: ReadyProbe::RedisPing {
                    address: format!("127.0.0.1:{port}"),
                },
            });
            (format!("redis://127.0.0.1:{port}"), true)
        }
    };
    let mut nodes = Vec::new();
    for i in 1..=NODE_COUNT {
        let id = NodeId(format!("node-{i}"));
        let port = ports.take()?;
        let url = format!("http://127.0.0.1:{port}");
        specs.push(ProcessSpec {
            id: id.clone(),
            program: options.node_binary.display().to_string(),
            args: vec![
                "--node-id".into(),
                id.0.clone(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--redis-url".into(),
                redis_url.clone(),
                "--default-limit".into(),
                options.default_limit.to_string(),
                "--default-window-ms".into(),
                options.default_window_ms.to_string(),
                "--enable-chaos".into(),
            ],
            // The token travels in the environment, not argv, so `ps` does not show it.
            env: vec![
                ("RL_ADMIN_TOKEN".into(), token.clone()),
                ("RL_LOG".into(), "info".into()),
            ],
            ready: ReadyProbe::Http {
                url: format!("{url}/health"),
            },
        });
        nodes.push((id, url));
    }
    Ok(LocalPlan {
        specs,
        endpoints: Endpoints {
            nodes,
            redis_url,
            redis_prefix: "rl".into(),
            admin_token: token,
            redis_managed,
        },
    })
}
