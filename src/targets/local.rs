//! The local target: the subject's processes as children of operator-tui, each logging to its
//! own file. Owned children die with operator-tui, however it ends: they are killed on drop and
//! carry PR_SET_PDEATHSIG, so even a SIGKILLed operator leaves nothing behind. A detached
//! cluster (`cluster up`) is started in its own session instead and adopted by later runs.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use operator_protocol::{
    BoxFuture, ContractError, ContractResult, DeploymentTarget, NodeId, ProcessSpec, ProcessState,
    ReadyProbe,
};
use serde::{Deserialize, Serialize};

use super::listener::listener_of;

const READY_TIMEOUT: Duration = Duration::from_secs(15);

struct Proc {
    spec: ProcessSpec,
    child: Option<Child>,
    pid: Option<u32>,
    restarts: u32,
    log: PathBuf,
}

/// What a detached cluster leaves behind for later runs to adopt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdoptedProcess {
    pub spec: ProcessSpec,
    pub pid: u32,
    pub log: PathBuf,
}

pub struct LocalTarget {
    procs: Mutex<BTreeMap<NodeId, Proc>>,
    /// Processes we must stop when we go (false for an adopted, detached cluster).
    owned: bool,
    detached: bool,
    log_dir: PathBuf,
    http: reqwest::Client,
    /// Told the processes whenever one is started again, so that a detached cluster's record
    /// names the new process and `cluster down` stops it.
    on_respawn: Option<Box<dyn Fn(Vec<AdoptedProcess>) + Send + Sync>>,
}

/// The process state from /proc: running, stopped (SIGSTOP) or exited (a zombie too).
pub fn process_state(pid: u32) -> ProcessState {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name, which may itself hold spaces.
    match stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
    {
        Some('T' | 't') => ProcessState::Stopped,
        Some('Z' | 'X') | None => ProcessState::Exited,
        Some(_) => ProcessState::Running,
    }
}

/// Whether someone asked a stopped process to terminate: a SIGTERM waits, pending, until the
/// process runs again (`ShdPnd` in /proc/PID/status, the process-wide pending mask).
pub fn termination_pending(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
}

fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory effects; a stale pid yields ESRCH, reported as an error.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether Redis at `address` answers PING within half a second.
async fn redis_pongs(address: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.ok()?;
        Some(&reply == b"+PONG\r\n")
    };
    tokio::time::timeout(Duration::from_millis(500), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// "exit code 0", "killed by signal 9 (SIGKILL)": how a process ended, for evidence.
fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => {
            // SAFETY: strsignal returns a pointer to a static or thread-local string.
            let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(signal)) };
            format!("killed by signal {signal} ({})", name.to_string_lossy())
        }
        (None, None) => "ended".to_string(),
    }
}

fn contract(e: impl std::fmt::Display) -> ContractError {
    ContractError::Retryable(e.to_string())
}

impl LocalTarget {
    /// Starts every process and waits until each answers its readiness probe, reporting
    /// progress through `progress`.
    pub async fn launch(
        specs: Vec<ProcessSpec>,
        log_dir: &Path,
        detached: bool,
        progress: &dyn Fn(&str),
    ) -> Result<Self> {
        std::fs::create_dir_all(log_dir)
            .wrap_err_with(|| format!("creating {}", log_dir.display()))?;
        let target = Self::empty(log_dir, !detached, detached);
        for spec in specs {
            let log = log_dir.join(format!("{}.log", spec.id));
            let mut proc = Proc {
                spec,
                child: None,
                pid: None,
                restarts: 0,
                log,
            };
            target
                .spawn(&mut proc)
                .wrap_err_with(|| format!("starting {}", proc.spec.id))?;
            target.lock().insert(proc.spec.id.clone(), proc);
        }
        let ids: Vec<NodeId> = target.lock().keys().cloned().collect();
        for id in ids {
            progress(&format!("waiting for {id}"));
            let started = Instant::now();
            target
                .wait_ready(&id)
                .await
                .map_err(|e| crate::user_error!("{e}"))?;
            progress(&format!(
                "{id} ready in {} ms",
                started.elapsed().as_millis()
            ));
        }
        Ok(target)
    }

    /// Takes over processes a detached `cluster up` started.
    pub fn adopt(processes: Vec<AdoptedProcess>, log_dir: &Path) -> Self {
        let target = Self::empty(log_dir, false, true);
        for p in processes {
            let proc = Proc {
                spec: p.spec,
                child: None,
                pid: Some(p.pid),
                restarts: 0,
                log: p.log,
            };
            target.lock().insert(proc.spec.id.clone(), proc);
        }
        target
    }

    fn empty(log_dir: &Path, owned: bool, detached: bool) -> Self {
        Self {
            procs: Mutex::new(BTreeMap::new()),
            owned,
            detached,
            log_dir: log_dir.to_path_buf(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .expect("static client config"),
            on_respawn: None,
        }
    }

    /// Calls `record` with every process each time one is started again.
    pub fn on_respawn(
        mut self,
        record: impl Fn(Vec<AdoptedProcess>) + Send + Sync + 'static,
    ) -> Self {
        self.on_respawn = Some(Box::new(record));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Proc>> {
        self.procs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The processes as a detached cluster file records them.
    pub fn processes(&self) -> Vec<AdoptedProcess> {
        self.lock()
            .values()
            .filter_map(|p| {
                Some(AdoptedProcess {
                    spec: p.spec.clone(),
                    pid: p.pid?,
                    log: p.log.clone(),
                })
            })
            .collect()
    }

    fn spawn(&self, proc: &mut Proc) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&proc.log)?;
        let mut command = Command::new(&proc.spec.program);
        command
            .args(&proc.spec.args)
            .envs(proc.spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let detached = self.detached;
        // SAFETY: only async-signal-safe calls (prctl, setsid) run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if detached {
                    libc::setsid();
                } else {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| crate::user_error!("could not run {}: {e}", proc.spec.program))?;
        proc.pid = Some(child.id());
        proc.child = Some(child);
        Ok(())
    }

    fn pid_of(&self, node: &NodeId) -> ContractResult<Option<u32>> {
        let procs = self.lock();
        let proc = procs.get(node).ok_or_else(|| {
            ContractError::NotFound(format!("the local cluster has no node {node}"))
        })?;
        Ok(proc
            .pid
            .filter(|pid| process_state(*pid) != ProcessState::Exited))
    }

    /// Reaps an exited child so it does not linger as a zombie.
    fn reap(&self, node: &NodeId) {
        if let Some(proc) = self.lock().get_mut(node)
            && let Some(child) = proc.child.as_mut()
        {
            let _ = child.try_wait();
        }
    }

    async fn wait_ready(&self, node: &NodeId) -> ContractResult<()> {
        let probe = self
            .lock()
            .get(node)
            .map(|p| p.spec.ready.clone())
            .ok_or_else(|| contract(format!("no node {node}")))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let ready = match &probe {
                ReadyProbe::Tcp { address } => {
                    tokio::net::TcpStream::connect(address).await.is_ok()
                }
                ReadyProbe::RedisPing { address } => redis_pongs(address).await,
                ReadyProbe::Http { url } => self
                    .http
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200),
            };
            // Ready means our process serves: a port answered by another process (a copy
            // someone else started) is theirs, and ours has lost the race for it.
            if ready {
                match (probe.port().map(listener_of), self.pid_of(node)?) {
                    (None, Some(_)) => return Ok(()),
                    (Some(Some(serving)), Some(ours)) if serving == ours => return Ok(()),
                    (Some(Some(serving)), Some(ours)) => {
                        return Err(ContractError::Refused(format!(
                            "{node}'s port is served by pid {serving}, not by the process started here (pid {ours}): someone else runs {node}"
                        )));
                    }
                    // Not bound yet, or ours is gone: the checks below decide.
                    _ => {}
                }
            }
            if self.pid_of(node)?.is_none() {
                self.reap(node);
                let tail = self.tail(node, 5).unwrap_or_default().join("\n");
                return Err(contract(format!(
                    "{node} exited while starting; its log ends with:\n{tail}"
                )));
            }
            if Instant::now() > deadline {
                return Err(contract(format!(
                    "{node} did not become ready within {} s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn tail(&self, node: &NodeId, lines: usize) -> ContractResult<Vec<String>> {
        let path = self
            .lock()
            .get(node)
            .map(|p| p.log.clone())
            .ok_or_else(|| contract(format!("no node {node}")))?;
        let file =
            File::open(&path).map_err(|e| contract(format!("reading {}: {e}", path.display())))?;
        let all: Vec<String> = BufReader::new(file).lines().map_while(|l| l.ok()).collect();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    /// Kills the node's process and returns once it is gone: a restart must never probe the
    /// old process and take its answer for the new one's.
    async fn kill_now(&self, node: &NodeId) -> ContractResult<()> {
        let Some(pid) = self.pid_of(node)? else {
            return Ok(());
        };
        signal(pid, libc::SIGKILL)
            .map_err(|e| contract(format!("kill {node} (pid {pid}): {e}")))?;
        if let Some(proc) = self.lock().get_mut(node)
            && let Some(mut child) = proc.child.take()
        {
            let _ = child.wait();
        }
        // An adopted process is not our child: wait for whoever reaps it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_state(pid) != ProcessState::Exited {
            if Instant::now() > deadline {
                return Err(contract(format!(
                    "{node} (pid {pid}) did not exit within 5 s of SIGKILL"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Stops every process this target owns; called on drop too.
    pub fn shutdown(&self) {
        if !self.owned {
            // A detached cluster outlives us; its children are not ours to wait for.
            return;
        }
        let mut procs = self.lock();
        for proc in procs.values_mut() {
            if let Some(pid) = proc.pid {
                let _ = signal(pid, libc::SIGCONT);
                let _ = signal(pid, libc::SIGKILL);
            }
            if let Some(mut child) = proc.child.take() {
                let _ = child.wait();
            }
        }
    }

    /// Stops a detached cluster's processes (`cluster down`).
    /// Stops every process of the cluster: the ones recorded, and whatever serves a node's
    /// port running that node's program (a copy started after the record was written, by
    /// another operator or by hand, is this cluster's node all the same).
    pub fn stop_all(&self) {
        for proc in self.lock().values() {
            for pid in proc.pid.into_iter().chain(proc.serving_copy()) {
                if process_state(pid) != ProcessState::Exited {
                    let _ = signal(pid, libc::SIGCONT);
                    let _ = signal(pid, libc::SIGKILL);
                }
            }
        }
    }

    /// Each node with its recorded pid and state, and the pid that serves its port when that
    /// is another process: what `cluster status` shows.
    pub fn serving(&self) -> Vec<(NodeId, Option<u32>, ProcessState, Option<u32>)> {
        self.lock()
            .values()
            .map(|p| {
                let state = p.pid.map_or(ProcessState::Exited, process_state);
                let serving = p.spec.ready.port().and_then(listener_of);
                (
                    p.spec.id.clone(),
                    p.pid,
                    state,
                    serving.filter(|s| Some(*s) != p.pid),
                )
            })
            .collect()
    }
}

impl Proc {
    /// A process other than the recorded one that serves this node's port with this node's
    /// program.
    fn serving_copy(&self) -> Option<u32> {
        let pid = self.spec.ready.port().and_then(listener_of)?;
        let program = std::fs::canonicalize(&self.spec.program).ok()?;
        (Some(pid) != self.pid && super::listener::executable_of(pid) == Some(program))
            .then_some(pid)
    }
}

impl Drop for LocalTarget {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sets `--name value` in a command line: the value after the flag replaced where it is
/// given, both appended where it is not.
fn set_flag(args: &mut Vec<String>, name: &str, value: &str) {
    let flag = format!("--{name}");
    match args.iter().position(|a| *a == flag) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value.to_string(),
        _ => args.extend([flag, value.to_string()]),
    }
}

impl DeploymentTarget for LocalTarget {
    fn can(&self, disturbance: operator_protocol::Disturbance) -> bool {
        // Plain processes share the host's network: nothing to partition.
        disturbance != operator_protocol::Disturbance::Isolate
    }

    fn kind(&self) -> &str {
        "local"
    }

    fn nodes(&self) -> Vec<NodeId> {
        self.lock().keys().cloned().collect()
    }

    fn kill<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move { self.kill_now(node).await })
    }

    fn stop<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let Some(pid) = self.pid_of(node)? else {
                return Ok(());
            };
            let _ = signal(pid, libc::SIGCONT);
            signal(pid, libc::SIGTERM).map_err(|e| contract(format!("stop {node}: {e}")))?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.pid_of(node)?.is_some() {
                self.reap(node);
                if Instant::now() > deadline {
                    return self.kill_now(node).await;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.reap(node);
            Ok(())
        })
    }

    fn start<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        self.start_with(node, &[])
    }

    fn start_with<'a>(
        &'a self,
        node: &'a NodeId,
        flags: &'a [(String, String)],
    ) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            if !flags.is_empty() && self.pid_of(node)?.is_some() {
                return Err(ContractError::Refused(format!(
                    "{node} runs: stop it before starting it with other flags"
                )));
            }
            if self.pid_of(node)?.is_none() {
                // Someone else already serves this node (a person, another operator): a
                // second copy would only fail to bind, and restarting theirs is not ours to do.
                let port = self.lock().get(node).and_then(|p| p.spec.ready.port());
                if let Some(pid) = port.and_then(listener_of) {
                    return Err(ContractError::Refused(format!(
                        "{node}'s port {} is already served by pid {pid}, which this operator did not start: not starting a second {node}",
                        port.unwrap_or_default()
                    )));
                }
                {
                    let mut procs = self.lock();
                    let proc = procs
                        .get_mut(node)
                        .ok_or_else(|| contract(format!("no node {node}")))?;
                    if let Some(mut old) = proc.child.take() {
                        let _ = old.wait();
                    }
                    for (flag, value) in flags {
                        set_flag(&mut proc.spec.args, flag, value);
                    }
                    self.spawn(proc).map_err(contract)?;
                    proc.restarts += 1;
                }
                if let Some(record) = &self.on_respawn {
                    record(self.processes());
                }
            }
            self.wait_ready(node).await
        })
    }

    fn pause<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let pid = self
                .pid_of(node)?
                .ok_or_else(|| contract(format!("{node} is not running")))?;
            signal(pid, libc::SIGSTOP).map_err(|e| contract(format!("pause {node}: {e}")))
        })
    }

    fn resume<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async move {
            let pid = self
                .pid_of(node)?
                .ok_or_else(|| contract(format!("{node} is not running")))?;
            signal(pid, libc::SIGCONT).map_err(|e| contract(format!("resume {node}: {e}")))
        })
    }

    fn isolate<'a>(&'a self, _node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(async {
            Err(ContractError::Refused(
                "the local target runs plain processes and cannot partition them; use the docker target".into()
            ))
        })
    }

    fn heal<'a>(&'a self, node: &'a NodeId) -> BoxFuture<'a, ContractResult<()>> {
        self.isolate(node)
    }

    fn tail_logs<'a>(
        &'a self,
        node: &'a NodeId,
        lines: usize,
    ) -> BoxFuture<'a, ContractResult<Vec<String>>> {
        Box::pin(async move { self.tail(node, lines) })
    }

    fn describe<'a>(
        &'a self,
        node: &'a NodeId,
    ) -> BoxFuture<'a, ContractResult<serde_json::Value>> {
        Box::pin(async move {
            let mut procs = self.lock();
            let proc = procs
                .get_mut(node)
                .ok_or_else(|| contract(format!("no node {node}")))?;
            let state = proc.pid.map_or(ProcessState::Exited, process_state);
            // How a child of ours ended (an adopted process's end is not ours to see): a
            // clean exit is someone's deliberate stop (SIGTERM, a supervisor), not a crash.
            let exit = match (state, proc.child.as_mut()) {
                (ProcessState::Exited, Some(child)) => child.try_wait().ok().flatten(),
                _ => None,
            };
            Ok(serde_json::json!({
                "state": state,
                "pid": proc.pid.filter(|_| state != ProcessState::Exited),
                "restarts": proc.restarts,
                "log": proc.log.display().to_string(),
                "exit_status": exit.map(describe_exit),
                // A clean exit, or a SIGTERM waiting on a stopped process: someone's stop.
                "stopped_deliberately": (exit.is_some_and(|s| s.code() == Some(0))
                    || (state == ProcessState::Stopped
                        && proc.pid.is_some_and(termination_pending)))
                    .then_some(true),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::set_flag;

    #[test]
    fn a_flag_is_replaced_where_given_and_appended_where_not() {
        let mut args: Vec<String> = ["--node-id", "node-2", "--default-limit", "100"]
            .map(String::from)
            .to_vec();
        set_flag(&mut args, "default-limit", "250");
        set_flag(&mut args, "fail-mode", "closed");
        assert_eq!(
            args,
            [
                "--node-id",
                "node-2",
                "--default-limit",
                "250",
                "--fail-mode",
                "closed"
            ]
        );
    }
}
