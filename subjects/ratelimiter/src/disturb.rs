//! What the generated eval can do to a rate limiter's Redis and traffic from outside the
//! operator, with the ranges it draws from, and the world as an outside observer reads it
//! (Redis's counters and limits directly, the nodes' own accounting, the processes) for the
//! harm oracle. Signals and people's restarts are the eval's own: any target can do those.

use std::collections::BTreeMap;
use std::time::Duration;

use operator_protocol::*;

use crate::cluster::REDIS_NODE;
use crate::drills::{RateLimiterDrills, failed};

/// The limit a traffic disturbance's abusive client runs into.
const ABUSER_LIMIT: u64 = 50;
/// How long one probe of the world may take per part.
const PROBE: Duration = Duration::from_millis(400);

named_enum!(
    /// Every disturbance the rate limiter offers the generated eval: its list and its dispatch
    /// both match on it.
    DisturbanceName {
        RedisClientPause => "redis_client_pause",
        RedisMaxmemory => "redis_maxmemory",
        RedisEviction => "redis_eviction",
        RedisMaxclients => "redis_maxclients",
        RedisPassword => "redis_password",
        RedisScriptFlush => "redis_script_flush",
        RedisFlushall => "redis_flushall",
        RedisClientKill => "redis_client_kill",
        RedisLongScript => "redis_long_script",
        TrafficBurst => "traffic_burst",
        TrafficManyKeys => "traffic_many_keys",
        TrafficOverLimit => "traffic_over_limit",
        TrafficQuiet => "traffic_quiet",
        PersonRestartOtherFlags => "person_restart_other_flags",
    }
);

/// The flags a person may start a node with, by the `flag` parameter: the numeric ones take
/// the drawn `value`; the fail mode turns closed.
const PERSON_FLAGS: [&str; 3] = ["default-limit", "redis-timeout-ms", "fail-mode"];

/// The flag and value a drawn `person_restart_other_flags` starts its node with.
pub fn person_flags(d: &DrawnDisturbance) -> Vec<(String, String)> {
    let flag = PERSON_FLAGS[d.int("flag", 0).clamp(0, PERSON_FLAGS.len() as i64 - 1) as usize];
    let value = match flag {
        "fail-mode" => "closed".to_string(),
        _ => d.int("value", 100).max(1).to_string(),
    };
    vec![(flag.to_string(), value)]
}

fn spec(
    name: DisturbanceName,
    family: Family,
    description: &str,
    params: Vec<DrawnRange>,
    held: bool,
    loses: Loses,
) -> DisturbanceSpec {
    DisturbanceSpec {
        name: name.as_str().into(),
        family,
        description: description.into(),
        targets: vec![],
        params,
        held,
        loses,
        deliberate: false,
        lasts_ms_param: None,
        needs: vec![],
    }
}

/// A moment that lasts by itself for its `ms` parameter.
fn lasting(spec: DisturbanceSpec) -> DisturbanceSpec {
    DisturbanceSpec {
        lasts_ms_param: Some("ms".into()),
        ..spec
    }
}

const POLICIES: [&str; 3] = ["allkeys-lru", "allkeys-random", "volatile-ttl"];

/// The node a person's disturbance is drawn on.
pub fn person_node(d: &DrawnDisturbance) -> ContractResult<NodeId> {
    d.target
        .as_deref()
        .map(NodeId::from)
        .ok_or_else(|| ContractError::Permanent(format!("{} needs a node", d.name)))
}

/// Everything the rate limiter adds to the eval's own signals and people.
pub fn specs() -> Vec<DisturbanceSpec> {
    use DisturbanceName::*;
    use Family::*;
    vec![
        lasting(spec(
            RedisClientPause,
            Dependency,
            "CLIENT PAUSE {ms} ALL on Redis (what failover tooling does)",
            vec![DrawnRange::log("ms", 500, 40_000)],
            false,
            Loses::Nothing,
        )),
        spec(
            RedisMaxmemory,
            Dependency,
            "CONFIG SET maxmemory {kb}kb on Redis (noeviction: writes refused once full)",
            vec![DrawnRange::log("kb", 600, 20_000)],
            true,
            Loses::Nothing,
        ),
        spec(
            RedisEviction,
            Dependency,
            "CONFIG SET maxmemory {kb}kb with an evicting policy (#{policy}) on Redis",
            vec![
                DrawnRange::log("kb", 600, 20_000),
                DrawnRange::new("policy", 0, POLICIES.len() as i64 - 1),
            ],
            true,
            Loses::State,
        ),
        spec(
            RedisMaxclients,
            Dependency,
            "CONFIG SET maxclients {clients} on Redis, and its clients dropped",
            vec![DrawnRange::new("clients", 1, 16)],
            true,
            Loses::Nothing,
        ),
        spec(
            RedisPassword,
            Dependency,
            "CONFIG SET requirepass on Redis, and every client dropped",
            vec![],
            true,
            Loses::Nothing,
        ),
        spec(
            RedisScriptFlush,
            Dependency,
            "SCRIPT FLUSH on Redis: every loaded script forgotten",
            vec![],
            false,
            Loses::Nothing,
        ),
        spec(
            RedisFlushall,
            Dependency,
            "FLUSHALL on Redis: every count and limit gone",
            vec![],
            false,
            Loses::State,
        ),
        spec(
            RedisClientKill,
            Dependency,
            "CLIENT KILL TYPE normal on Redis: every connection dropped once",
            vec![],
            false,
            Loses::Nothing,
        ),
        lasting(spec(
            RedisLongScript,
            Dependency,
            "a script that keeps Redis busy for {ms} ms, from another client",
            vec![DrawnRange::log("ms", 100, 8_000)],
            false,
            Loses::Nothing,
        )),
        DisturbanceSpec {
            targets: crate::cluster::node_names(),
            deliberate: true,
            needs: vec![Disturbance::Reconfigure],
            ..spec(
                PersonRestartOtherFlags,
                Person,
                "a person stops {target} (SIGTERM) and starts it again by hand with other flags (flag #{flag} of default-limit, redis-timeout-ms, fail-mode; value {value}) when the hold ends",
                vec![
                    DrawnRange::new("flag", 0, PERSON_FLAGS.len() as i64 - 1),
                    DrawnRange::log("value", 5, 10_000),
                ],
                true,
                // The node's process exits: its in-memory windows go with it.
                Loses::State,
            )
        },
        spec(
            TrafficBurst,
            Traffic,
            "a burst of {rate} checks a second on one key",
            vec![DrawnRange::log("rate", 200, 3_000)],
            true,
            Loses::Nothing,
        ),
        spec(
            TrafficManyKeys,
            Traffic,
            "{rate} checks a second spread over {keys} keys",
            vec![
                DrawnRange::log("rate", 200, 2_000),
                DrawnRange::log("keys", 50, 5_000),
            ],
            true,
            Loses::Nothing,
        ),
        spec(
            TrafficQuiet,
            Traffic,
            "the clients go quiet: the steady traffic stops until the hold ends",
            vec![],
            true,
            Loses::Nothing,
        ),
        spec(
            TrafficOverLimit,
            Traffic,
            "one client sending {rate} checks a second on a key limited to 50 a second",
            vec![DrawnRange::log("rate", 100, 1_500)],
            true,
            Loses::Nothing,
        ),
    ]
}

impl RateLimiterDrills {
    /// Quiets the steady workload this process runs, or lets it run again.
    fn quiet(&self, quiet: bool) -> ContractResult<()> {
        let workload = self.workload.as_ref().ok_or_else(|| {
            ContractError::Refused(
                "no steady traffic runs from here to quiet (`cluster up` runs its own)".into(),
            )
        })?;
        workload.set_quiet(quiet);
        Ok(())
    }

    fn password_now(&self) -> Option<String> {
        self.password
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn redis_now(&self, args: &[&str]) -> ContractResult<()> {
        self.command(self.password_now().as_deref(), args).await
    }

    pub(crate) async fn disturb(&self, d: &DrawnDisturbance) -> ContractResult<()> {
        let int = |name: &str| d.int(name, 0).to_string();
        let name = DisturbanceName::parse(&d.name)
            .ok_or_else(|| ContractError::NotFound(format!("no disturbance {}", d.name)))?;
        match name {
            DisturbanceName::RedisClientPause => {
                self.redis_now(&["CLIENT", "PAUSE", &int("ms"), "ALL"])
                    .await
            }
            DisturbanceName::RedisMaxmemory => {
                self.redis_now(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                    .await?;
                self.redis_now(&["CONFIG", "SET", "maxmemory", &format!("{}kb", int("kb"))])
                    .await
            }
            DisturbanceName::RedisEviction => {
                let policy = POLICIES[d.int("policy", 0).clamp(0, 2) as usize];
                self.redis_now(&["CONFIG", "SET", "maxmemory-policy", policy])
                    .await?;
                self.redis_now(&["CONFIG", "SET", "maxmemory", &format!("{}kb", int("kb"))])
                    .await
            }
            DisturbanceName::RedisMaxclients => {
                self.redis_now(&["CONFIG", "SET", "maxclients", &int("clients")])
                    .await?;
                self.redis_now(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
                    .await
            }
            DisturbanceName::RedisPassword => {
                let password = format!("generated-{}", std::process::id());
                self.redis_now(&["CONFIG", "SET", "requirepass", &password])
                    .await?;
                *self.password.lock().unwrap_or_else(|p| p.into_inner()) = Some(password);
                self.redis_now(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
                    .await
            }
            DisturbanceName::RedisScriptFlush => self.redis_now(&["SCRIPT", "FLUSH"]).await,
            DisturbanceName::RedisFlushall => self.redis_now(&["FLUSHALL"]).await,
            DisturbanceName::RedisClientKill => {
                self.redis_now(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
                    .await
            }
            DisturbanceName::RedisLongScript => {
                let mut conn = self.redis(self.password_now().as_deref()).await?;
                let ms = int("ms");
                // Busy on purpose: Redis serves nobody else until the script returns.
                let script = "local s = redis.call('TIME') local t0 = s[1] * 1000 + s[2] / 1000 \
                    while true do local n = redis.call('TIME') \
                    if n[1] * 1000 + n[2] / 1000 - t0 > tonumber(ARGV[1]) then return 1 end end";
                self.keep_running(&d.name, async move {
                    let _ = redis::cmd("EVAL")
                        .arg(script)
                        .arg(0)
                        .arg(ms)
                        .exec_async(&mut conn)
                        .await;
                });
                Ok(())
            }
            DisturbanceName::TrafficBurst => {
                self.traffic(
                    256,
                    &d.name,
                    d.int("rate", 500) as f64,
                    1,
                    "burst-",
                    Some("burst-hot".into()),
                );
                Ok(())
            }
            DisturbanceName::TrafficManyKeys => {
                self.traffic(
                    256,
                    &d.name,
                    d.int("rate", 500) as f64,
                    d.int("keys", 100) as usize,
                    "many-",
                    None,
                );
                Ok(())
            }
            DisturbanceName::PersonRestartOtherFlags => self.target.stop(&person_node(d)?).await,
            DisturbanceName::TrafficQuiet => self.quiet(true),
            DisturbanceName::TrafficOverLimit => {
                self.set_limit("abuser-generated", ABUSER_LIMIT).await?;
                self.traffic(
                    256,
                    &d.name,
                    d.int("rate", 500) as f64,
                    1,
                    "abuser-",
                    Some("abuser-generated".into()),
                );
                Ok(())
            }
        }
    }

    pub(crate) async fn undisturb(&self, d: &DrawnDisturbance) -> ContractResult<()> {
        self.stop_running(&d.name);
        match DisturbanceName::parse(&d.name) {
            // It ends by itself, and a paused Redis may not even take a new connection to
            // hear UNPAUSE: a courtesy, not a step that can fail.
            Some(DisturbanceName::RedisClientPause) => {
                let _ = self.redis_now(&["CLIENT", "UNPAUSE"]).await;
                Ok(())
            }
            Some(DisturbanceName::RedisMaxmemory | DisturbanceName::RedisEviction) => {
                self.redis_now(&["CONFIG", "SET", "maxmemory", "0"]).await?;
                self.redis_now(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
                    .await
            }
            Some(DisturbanceName::TrafficQuiet) => self.quiet(false),
            Some(DisturbanceName::PersonRestartOtherFlags) => {
                self.target
                    .start_with(&person_node(d)?, &person_flags(d))
                    .await
            }
            Some(DisturbanceName::RedisMaxclients) => {
                self.redis_now(&["CONFIG", "SET", "maxclients", "10000"])
                    .await
            }
            Some(DisturbanceName::RedisPassword) => {
                if self.password_now().is_some() {
                    self.redis_now(&["CONFIG", "SET", "requirepass", ""])
                        .await?;
                    *self.password.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The world now, read directly: Redis's counters and limits, the nodes' own accounting
    /// of what they allowed per counter, every process, and how many nodes serve.
    pub(crate) async fn sample_world(&self) -> World {
        let at_ms = unix_now_ms();
        let mut world = World {
            at_ms,
            ..World::default()
        };
        let http = reqwest::Client::builder()
            .timeout(PROBE)
            .build()
            .unwrap_or_default();
        let mut healthy = 0usize;
        // What the nodes say they allowed, per counter; None once a node does not answer.
        let mut backed: Option<BTreeMap<String, u64>> = Some(BTreeMap::new());
        for (node, url) in &self.endpoints.nodes {
            let answers = matches!(
                http.get(format!("{url}/health")).send().await,
                Ok(r) if r.status().is_success()
            );
            let serving = answers && !self.bypassing(&http, &node.0, url).await;
            healthy += usize::from(serving);
            world
                .processes
                .insert(node.0.clone(), self.process(node, serving).await);
            let windows: Option<serde_json::Value> =
                match http.get(format!("{url}/v1/windows")).send().await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
            match (windows, backed.as_mut()) {
                (Some(w), Some(sums)) => {
                    for key in w["keys"].as_array().into_iter().flatten() {
                        for slot in [&key["current"], &key["previous"]] {
                            if let (Some(counter), Some(units)) =
                                (slot["counter_key"].as_str(), slot["allowed_units"].as_u64())
                            {
                                *sums.entry(counter.to_string()).or_default() += units;
                            }
                        }
                    }
                }
                _ => backed = None,
            }
        }
        world.serving = healthy as f64 / self.endpoints.nodes.len().max(1) as f64;
        let redis_up = self.read_redis(&mut world, backed.as_ref()).await;
        let redis = NodeId::from(REDIS_NODE);
        if self.target.nodes().contains(&redis) {
            world
                .processes
                .insert(REDIS_NODE.into(), self.process(&redis, redis_up).await);
        }
        if !redis_up {
            world.unreadable.push(REDIS_NODE.into());
        }
        world
    }

    /// Whether the node made decisions without asking Redis since the last look (its own
    /// `rl_checks_total{source="skipped"}` grew): it answers, but it does not limit.
    async fn bypassing(&self, http: &reqwest::Client, node: &str, url: &str) -> bool {
        let Ok(answer) = http.get(format!("{url}/metrics")).send().await else {
            return false;
        };
        let Ok(counters) =
            crate::observe::NodeCounters::parse(&answer.text().await.unwrap_or_default())
        else {
            return false;
        };
        let skipped: f64 = counters
            .checks
            .iter()
            .filter(|((_, source), _)| source == "skipped")
            .map(|(_, v)| v)
            .sum();
        let before = self
            .bypassed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node.to_string(), skipped);
        before.is_some_and(|b| skipped > b)
    }

    async fn process(&self, node: &NodeId, serving: bool) -> ProcessSeen {
        let described = self.target.describe(node).await.unwrap_or_default();
        ProcessSeen {
            pid: described["pid"].as_u64().map(|p| p as u32),
            state: described["state"].as_str().unwrap_or("absent").to_string(),
            serving,
        }
    }

    /// Counts and limits from Redis itself; false when Redis did not answer in time.
    async fn read_redis(&self, world: &mut World, backed: Option<&BTreeMap<String, u64>>) -> bool {
        let read = async {
            let mut conn = self.redis(self.password_now().as_deref()).await?;
            let prefix = &self.endpoints.redis_prefix;
            let counters: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:cnt:*"))
                .query_async(&mut conn)
                .await
                .map_err(|e| failed("KEYS", e))?;
            for counter in counters {
                // The expiry counts from when the TTL was read, not from the sample's start.
                let asked_ms = unix_now_ms();
                let (value, ttl): (Option<u64>, i64) = redis::pipe()
                    .get(&counter)
                    .pttl(&counter)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| failed("GET", e))?;
                let Some(value) = value else { continue };
                world.counts.insert(
                    counter.clone(),
                    Count {
                        value,
                        holder: REDIS_NODE.into(),
                        expires_at_ms: (ttl > 0).then(|| asked_ms + ttl as u64),
                        backed: backed.map(|b| b.get(&counter).copied().unwrap_or(0)),
                    },
                );
            }
            world
                .counts_read_ms
                .insert(REDIS_NODE.into(), unix_now_ms());
            let configs: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:cfg:*"))
                .query_async(&mut conn)
                .await
                .map_err(|e| failed("KEYS", e))?;
            for config in configs {
                let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
                    .arg(&config)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| failed("HGETALL", e))?;
                let key = config.rsplit_once(":cfg:").map_or("", |(_, k)| k);
                for (field, name, looser) in [
                    ("limit", "limit", Looser::Higher),
                    ("window_ms", "window", Looser::Lower),
                ] {
                    if let Some(value) = fields.get(field).and_then(|v| v.parse::<f64>().ok()) {
                        world
                            .protections
                            .insert(format!("{name}:{key}"), Protection { value, looser });
                    }
                }
            }
            Ok::<_, ContractError>(())
        };
        matches!(tokio::time::timeout(PROBE * 2, read).await, Ok(Ok(())))
    }
}

impl Disturber for RateLimiterDrills {
    fn disturbances(&self) -> Vec<DisturbanceSpec> {
        specs()
    }

    fn apply<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.disturb(disturbance))
    }

    fn undo<'a>(&'a self, disturbance: &'a DrawnDisturbance) -> BoxFuture<'a, ContractResult<()>> {
        Box::pin(self.undisturb(disturbance))
    }

    fn world(&self) -> BoxFuture<'_, World> {
        Box::pin(self.sample_world())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_disturbance_is_listed_once_with_ranges_that_hold() {
        let listed = specs();
        assert_eq!(listed.len(), DisturbanceName::ALL.len());
        for spec in &listed {
            assert!(
                DisturbanceName::parse(&spec.name).is_some(),
                "{}",
                spec.name
            );
            for range in &spec.params {
                assert!(
                    range.min <= range.max && (!range.log_scale || range.min > 0),
                    "{range:?}"
                );
                assert!(
                    spec.description.contains(&format!("{{{}}}", range.name)),
                    "{}",
                    spec.name
                );
            }
        }
    }
}
