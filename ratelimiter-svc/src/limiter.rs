//! The Redis side of the rate limiter: one atomic script per check, plus the admin reads and
//! writes on limits and counters. All Redis key names are built here and nowhere else.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::Serialize;

/// Keys and limits are validated at the HTTP boundary against these.
pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_COST: u64 = 1_000_000;
pub const MAX_LIMIT: u64 = 1_000_000_000;
pub const MAX_WINDOW_MS: u64 = 86_400_000;

/// Redis's answer to one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisDecision {
    pub allowed: bool,
    pub limit: u64,
    /// Units used in this window after this check (allowed units only).
    pub used: u64,
    pub reset_at_ms: u64,
    pub window: WindowRef,
}

/// Identifies one counter: which store incarnation, which reset generation, which window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WindowRef {
    pub epoch: String,
    pub generation: u64,
    pub window_id: u64,
    pub window_ms: u64,
    /// The Redis key holding this window's count, so observers need not know the layout.
    pub counter_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyState {
    pub key: String,
    pub limit: u64,
    pub window_ms: u64,
    /// True when the limit comes from a per-key override rather than the node default.
    pub overridden: bool,
    pub generation: u64,
    pub window_id: u64,
    pub used: u64,
    /// Milliseconds until the counter expires; negative when it does not exist.
    pub counter_ttl_ms: i64,
    pub reset_at_ms: u64,
    pub counter_key: String,
    /// Milliseconds until the current window ends, at Redis's clock: what happens in this
    /// window's count (a drift, a reset) lasts that long.
    pub window_ends_in_ms: u64,
}

/// Why Redis gave no decision.
#[derive(Debug)]
pub enum RedisFailure {
    Timeout,
    Error(redis::RedisError),
}

impl RedisFailure {
    /// What kind of failure this is, in one word: `/health` and the `kind` label of
    /// `rl_redis_failures` use it, so an operator can tell a slow Redis ("timeout") from one
    /// that is gone ("connection") from one that answers and refuses ("oom", "readonly",
    /// "auth", ...). Always one of [`FAILURE_CLASSES`].
    pub fn class(&self) -> &'static str {
        let RedisFailure::Error(e) = self else {
            return "timeout";
        };
        if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
            return "connection";
        }
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            return "auth";
        }
        match e.code() {
            Some("OOM") => "oom",
            Some("READONLY") => "readonly",
            Some("NOAUTH" | "WRONGPASS") => "auth",
            Some("NOPERM") => "noperm",
            Some("LOADING") => "loading",
            Some("BUSY") => "busy",
            Some("MASTERDOWN") => "masterdown",
            Some(_) => "reply_error",
            None => "other",
        }
    }
}

/// Every value [`RedisFailure::class`] returns.
pub const FAILURE_CLASSES: [&str; 11] = [
    "timeout",
    "connection",
    "auth",
    "oom",
    "readonly",
    "noperm",
    "loading",
    "busy",
    "masterdown",
    "reply_error",
    "other",
];

impl std::fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisFailure::Timeout => write!(f, "redis did not answer within the timeout"),
            RedisFailure::Error(e) => write!(f, "redis error: {e}"),
        }
    }
}

pub struct Limiter {
    conn: ConnectionManager,
    timeout: Duration,
    prefix: String,
    default_limit: u64,
    default_window_ms: u64,
    check_script: Script,
    inspect_script: Script,
    reset_script: Script,
}

impl Limiter {
    /// Connects lazily: a node starts, and stays up, without Redis.
    pub fn new(
        redis_url: &str,
        prefix: &str,
        timeout: Duration,
        default_limit: u64,
        default_window_ms: u64,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(100))))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            timeout,
            prefix: prefix.to_string(),
            default_limit,
            default_window_ms,
            check_script: Script::new(include_str!("check.lua")),
            inspect_script: Script::new(include_str!("inspect.lua")),
            reset_script: Script::new(include_str!("reset.lua")),
        })
    }

    fn config_key(&self, key: &str) -> String {
        format!("{}:cfg:{key}", self.prefix)
    }

    fn counter_prefix(&self, key: &str) -> String {
        format!("{}:cnt:{key}:", self.prefix)
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// Bounds any Redis call by the node's timeout, whatever the connection is doing
    /// (reconnecting, or talking to a paused server).
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(RedisFailure::Timeout),
            Ok(Err(e)) if e.is_timeout() => Err(RedisFailure::Timeout),
            Ok(Err(e)) => Err(RedisFailure::Error(e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// One check: exactly one Redis round trip (EVALSHA; the script is reloaded on NOSCRIPT).
    pub async fn check(&self, key: &str, cost: u64) -> Result<RedisDecision, RedisFailure> {
        let mut conn = self.conn.clone();
        let mut invocation = self.check_script.prepare_invoke();
        invocation
            .key(self.config_key(key))
            .key(self.epoch_key())
            .arg(self.counter_prefix(key))
            .arg(cost)
            .arg(self.default_limit)
            .arg(self.default_window_ms);
        let reply: (u8, u64, u64, u64, u64, u64, u64, String, String) =
            self.bounded(invocation.invoke_async(&mut conn)).await?;
        let (
            allowed,
            limit,
            used,
            reset_at_ms,
            window_id,
            window_ms,
            generation,
            epoch,
            counter_key,
        ) = reply;
        Ok(RedisDecision {
            allowed: allowed == 1,
            limit,
            used,
            reset_at_ms,
            window: WindowRef {
                epoch,
                generation,
                window_id,
                window_ms,
                counter_key,
            },
        })
    }

    /// The health probe: a round trip that also returns Redis's clock (TIME, in ms).
    pub async fn probe(&self) -> Result<(Duration, u64), RedisFailure> {
        let mut conn = self.conn.clone();
        let started = Instant::now();
        let (secs, micros): (u64, u64) = self
            .bounded(redis::cmd("TIME").query_async(&mut conn))
            .await?;
        Ok((started.elapsed(), secs * 1000 + micros / 1000))
    }

    pub async fn inspect(&self, key: &str) -> Result<KeyState, RedisFailure> {
        let mut conn = self.conn.clone();
        let mut invocation = self.inspect_script.prepare_invoke();
        invocation
            .key(self.config_key(key))
            .arg(self.counter_prefix(key))
            .arg(self.default_limit)
            .arg(self.default_window_ms);
        let reply: (u64, u64, u8, u64, u64, u64, i64, u64, String, u64) =
            self.bounded(invocation.invoke_async(&mut conn)).await?;
        let (
            limit,
            window_ms,
            overridden,
            generation,
            window_id,
            used,
            ttl,
            reset_at_ms,
            counter_key,
            window_ends_in_ms,
        ) = reply;
        Ok(KeyState {
            key: key.to_string(),
            limit,
            window_ms,
            overridden: overridden == 1,
            generation,
            window_id,
            used,
            counter_ttl_ms: ttl,
            reset_at_ms,
            counter_key,
            window_ends_in_ms,
        })
    }

    /// Stores a per-key limit that every node reads on its next check.
    pub async fn set_limit(
        &self,
        key: &str,
        limit: u64,
        window_ms: u64,
    ) -> Result<(), RedisFailure> {
        let mut conn = self.conn.clone();
        let fields = [("limit", limit), ("window_ms", window_ms)];
        self.bounded(conn.hset_multiple::<_, _, _, ()>(self.config_key(key), &fields))
            .await
    }

    /// Drops a key's override (the generation stays, so counters are not resurrected).
    pub async fn delete_limit(&self, key: &str) -> Result<bool, RedisFailure> {
        let mut conn = self.conn.clone();
        let removed: u64 = self
            .bounded(conn.hdel(self.config_key(key), &["limit", "window_ms"]))
            .await?;
        Ok(removed > 0)
    }

    /// Starts the key afresh on every node; returns the new generation.
    pub async fn reset(&self, key: &str) -> Result<u64, RedisFailure> {
        let mut conn = self.conn.clone();
        let mut invocation = self.reset_script.prepare_invoke();
        invocation
            .key(self.config_key(key))
            .arg(self.counter_prefix(key))
            .arg(self.default_window_ms);
        self.bounded(invocation.invoke_async(&mut conn)).await
    }
}
