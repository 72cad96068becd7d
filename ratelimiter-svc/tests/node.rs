//! ratelimiter-svc against a real redis-server: exactness under concurrency, windows, limits,
//! resets, Redis outages, auth, chaos routes and bad input.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use support::{Node, RedisServer, TOKEN, admin, check, metric};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn admin_flags() -> Vec<&'static str> {
    vec!["--admin-token", TOKEN]
}

async fn cluster(redis: &RedisServer, extra: &[&str]) -> Vec<Node> {
    let c = client();
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let node = Node::start(&format!("node-{i}"), &redis.url(), extra);
        node.wait_healthy(&c).await;
        nodes.push(node);
    }
    nodes
}

async fn set_limit(c: &reqwest::Client, node: &Node, key: &str, limit: u64, window_ms: u64) {
    let r = admin(
        c,
        Method::PUT,
        format!("{}/admin/limits/{}", node.url, key.replace('/', "%2F")),
    )
    .json(&serde_json::json!({ "limit": limit, "window_ms": window_ms }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn commandstat(info: &str, command: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_limit_allowed_when_three_nodes_and_fifty_clients_hammer_one_key() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis, &admin_flags()).await;
    let c = client();
    const LIMIT: u64 = 600;
    // An hour-long window: the whole test lands in one window (grouping below copes if not).
    set_limit(&c, &nodes[0], "hot", LIMIT, 3_600_000).await;
    // Redis does not know the script until a node's first EVALSHA misses (NOSCRIPT) and loads
    // it; concurrent first checks can each miss. One check per node first, on another key, so
    // the count below is the steady state alone.
    for node in &nodes {
        check(&c, &node.url, "warm-up", 1).await;
    }
    let mut conn = redis.connection();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();

    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let clients = (0..50).map(|i| {
        let c = c.clone();
        let url = urls[i % 3].clone();
        tokio::spawn(async move {
            let mut replies = Vec::new();
            for _ in 0..40 {
                replies.push(check(&c, &url, "hot", 1).await);
            }
            replies
        })
    });
    let mut by_window: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut checks = 0u64;
    for replies in futures::future::join_all(clients).await {
        for r in replies.unwrap() {
            checks += 1;
            assert!(
                r.status == 200 || r.status == 429,
                "unexpected status {}",
                r.status
            );
            assert_eq!(r.body["source"], "redis");
            let window = r.body["reset_at_ms"].as_u64().unwrap();
            let entry = by_window.entry(window).or_default();
            if r.body["allowed"] == true {
                entry.0 += 1
            } else {
                entry.1 += 1
            }
        }
    }
    assert_eq!(checks, 2000);
    for (window, (allowed, denied)) in &by_window {
        assert!(
            *allowed <= LIMIT,
            "window {window}: {allowed} allowed over the limit {LIMIT}"
        );
        if *denied > 0 {
            assert_eq!(
                *allowed, LIMIT,
                "window {window} denied requests before it was full"
            );
        }
    }
    // One window saw most of the traffic, and it held exactly the limit.
    let (allowed, _) = by_window.values().max_by_key(|(a, d)| a + d).unwrap();
    assert_eq!(*allowed, LIMIT);

    // Redis holds allowed units only, and the nodes' window accounting agrees with it.
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    let script_calls = commandstat(&info, "evalsha") + commandstat(&info, "eval");
    assert_eq!(
        script_calls, checks,
        "expected one script call per check ({checks}), Redis saw {script_calls}"
    );
    let mut node_sum = HashMap::<String, u64>::new();
    for node in &nodes {
        let w: serde_json::Value = c
            .get(format!("{}/v1/windows", node.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for key in w["keys"].as_array().unwrap() {
            for slot in [&key["current"], &key["previous"]] {
                if let Some(counter) = slot["counter_key"].as_str() {
                    *node_sum.entry(counter.to_string()).or_default() +=
                        slot["allowed_units"].as_u64().unwrap();
                }
            }
        }
    }
    assert!(!node_sum.is_empty());
    for (counter, units) in node_sum {
        let held: u64 = redis::cmd("GET").arg(&counter).query(&mut conn).unwrap();
        assert_eq!(
            held, units,
            "counter {counter}: Redis holds {held}, nodes allowed {units}"
        );
    }
}

#[tokio::test]
async fn windows_reset_and_denied_requests_do_not_consume_quota() {
    let redis = RedisServer::start();
    let node = Node::start(
        "node-1",
        &redis.url(),
        &["--default-limit", "3", "--default-window-ms", "1000"],
    );
    let c = client();
    node.wait_healthy(&c).await;
    let mut conn = redis.connection();
    // Five checks must share one window to test it; a sequence that straddles a boundary by
    // chance is retried on a fresh key.
    for attempt in 0..3 {
        let key = format!("k{attempt}");
        let mut replies = Vec::new();
        for _ in 0..5 {
            replies.push(check(&c, &node.url, &key, 1).await);
        }
        if replies
            .iter()
            .any(|r| r.body["reset_at_ms"] != replies[0].body["reset_at_ms"])
        {
            continue;
        }
        let allowed: Vec<bool> = replies.iter().map(|r| r.body["allowed"] == true).collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert_eq!(replies[3].status, 429);
        let counters: Vec<String> = redis::cmd("KEYS")
            .arg(format!("rl:cnt:{key}:*"))
            .query(&mut conn)
            .unwrap();
        let held: u64 = redis::cmd("GET")
            .arg(&counters[0])
            .query(&mut conn)
            .unwrap();
        assert_eq!(held, 3, "denied requests must not be counted");
        // After the window ends the key has its full quota again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = check(&c, &node.url, &key, 1).await;
        assert_eq!(r.body["allowed"], true);
        assert_eq!(r.body["remaining"], 2);
        return;
    }
    panic!("three sequences of five checks each crossed a window boundary");
}

#[tokio::test]
async fn a_limit_set_through_one_node_holds_on_all_three() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis, &admin_flags()).await;
    let c = client();
    set_limit(&c, &nodes[0], "tenant/42", 2, 3_600_000).await;
    for node in &nodes {
        let r: serde_json::Value = admin(
            &c,
            Method::GET,
            format!("{}/admin/limits/tenant%2F42", node.url),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(r["limit"], 2);
        assert_eq!(r["overridden"], true);
    }
    assert_eq!(
        check(&c, &nodes[1].url, "tenant/42", 1).await.body["limit"],
        2
    );
    assert_eq!(
        check(&c, &nodes[2].url, "tenant/42", 1).await.body["allowed"],
        true
    );
    let third = check(&c, &nodes[0].url, "tenant/42", 1).await;
    assert_eq!(
        third.body["allowed"], false,
        "the third check across nodes exceeds the limit of 2"
    );

    let r = admin(
        &c,
        Method::DELETE,
        format!("{}/admin/limits/tenant%2F42", nodes[2].url),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        check(&c, &nodes[0].url, "tenant/42", 1).await.body["limit"],
        100
    );
}

#[tokio::test]
async fn reset_gives_the_key_its_full_quota_on_every_node() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis, &admin_flags()).await;
    let c = client();
    set_limit(&c, &nodes[0], "r", 5, 3_600_000).await;
    check(&c, &nodes[0].url, "r", 5).await;
    assert_eq!(
        check(&c, &nodes[1].url, "r", 1).await.body["allowed"],
        false
    );
    let r: serde_json::Value = admin(
        &c,
        Method::POST,
        format!("{}/admin/keys/r/reset", nodes[2].url),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(r["generation"], 1);
    let state: serde_json::Value = admin(&c, Method::GET, format!("{}/admin/keys/r", nodes[1].url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["used"], 0);
    assert_eq!(state["limit"], 5);
    let after = check(&c, &nodes[1].url, "r", 1).await;
    assert_eq!(after.body["allowed"], true);
    assert_eq!(after.body["remaining"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_within_the_timeout_honours_the_fail_mode_and_recovers() {
    let redis = RedisServer::start();
    let url = redis.url();
    let open = Node::start(
        "open",
        &url,
        &["--fail-mode", "open", "--redis-timeout-ms", "25"],
    );
    let closed = Node::start(
        "closed",
        &url,
        &["--fail-mode", "closed", "--redis-timeout-ms", "25"],
    );
    let c = client();
    open.wait_healthy(&c).await;
    closed.wait_healthy(&c).await;
    assert_eq!(check(&c, &open.url, "k", 1).await.body["source"], "redis");

    let port = redis.kill();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let o = check(&c, &open.url, "k", 1).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            (
                o.status,
                o.body["allowed"].clone(),
                o.body["source"].clone()
            ),
            (200, true.into(), "fail_open".into())
        );
        let started = Instant::now();
        let d = check(&c, &closed.url, "k", 1).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            (
                d.status,
                d.body["allowed"].clone(),
                d.body["source"].clone()
            ),
            (429, false.into(), "fail_closed".into())
        );
    }
    // 25 ms timeout plus a margin for a shared 2-core machine.
    assert!(
        slowest < Duration::from_millis(25 + 125),
        "slowest answer took {slowest:?}"
    );
    let fail_open = metric(
        &c,
        &open.url,
        r#"rl_checks_total{decision="allowed",source="fail_open"}"#,
    )
    .await;
    assert!(
        fail_open >= 20.0,
        "every fail-open decision is counted, saw {fail_open}"
    );
    let fail_closed = metric(
        &c,
        &closed.url,
        r#"rl_checks_total{decision="denied",source="fail_closed"}"#,
    )
    .await;
    assert!(fail_closed >= 20.0);

    // Health reports it, and the node stays up (no crash loop).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let h = c.get(format!("{}/health", open.url)).send().await.unwrap();
    assert_eq!(h.status(), 503);
    let h: serde_json::Value = h.json().await.unwrap();
    assert_eq!(h["redis"]["reachable"], false);

    // Redis returns on the same port: the nodes recover on their own.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let o = check(&c, &open.url, "k", 1).await;
        let d = check(&c, &closed.url, "k", 1).await;
        if o.body["source"] == "redis" && d.body["source"] == "redis" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not recover within 5 s of Redis returning"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    open.wait_healthy(&c).await;
}

#[tokio::test]
async fn a_paused_redis_times_out_within_the_bound_and_counts_the_timeout() {
    let redis = RedisServer::start();
    let node = Node::start("node-1", &redis.url(), &["--redis-timeout-ms", "30"]);
    let c = client();
    node.wait_healthy(&c).await;
    check(&c, &node.url, "k", 1).await;
    let pid = redis.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let r = check(&c, &node.url, "k", 1).await;
    let took = started.elapsed();
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(r.body["source"], "fail_open");
    assert!(took < Duration::from_millis(30 + 120), "took {took:?}");
    let timeouts = metric(&c, &node.url, r#"rl_redis_failures_total{kind="timeout"}"#).await;
    assert!(timeouts >= 1.0);
}

#[tokio::test]
async fn a_redis_that_answers_but_refuses_writes_shows_in_health_and_metrics_by_class() {
    let redis = RedisServer::start();
    let node = Node::start("node-1", &redis.url(), &[]);
    let c = client();
    node.wait_healthy(&c).await;
    assert_eq!(check(&c, &node.url, "k", 1).await.body["source"], "redis");
    // Out of memory with nothing to evict: Redis still answers the probe, refuses the script.
    let mut conn = redis.connection();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .exec(&mut conn)
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .exec(&mut conn)
        .unwrap();
    let r = check(&c, &node.url, "k2", 1).await;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("0")
        .exec(&mut conn)
        .unwrap();
    assert_eq!(r.body["source"], "fail_open", "{:?}", r.body);
    let h = c.get(format!("{}/health", node.url)).send().await.unwrap();
    assert_eq!(
        h.status(),
        200,
        "the probe still passes: /health alone looks fine"
    );
    let health: serde_json::Value = h.json().await.unwrap();
    assert_eq!(health["redis"]["last_check_error_class"], "oom", "{health}");
    assert_eq!(health["redis"]["checks_failing"], true, "{health}");
    let oom = metric(&c, &node.url, r#"rl_redis_failures_total{kind="oom"}"#).await;
    assert!(oom >= 1.0);
    // The next check Redis decides clears the flag.
    assert_eq!(check(&c, &node.url, "k3", 1).await.body["source"], "redis");
    let health: serde_json::Value = c
        .get(format!("{}/health", node.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["redis"]["checks_failing"], false, "{health}");
}

#[tokio::test]
async fn a_node_starts_without_redis_and_turns_healthy_when_it_appears() {
    let port = support::free_port();
    let node = Node::start("node-1", &format!("redis://127.0.0.1:{port}"), &[]);
    let c = client();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let h = c.get(format!("{}/health", node.url)).send().await.unwrap();
    assert_eq!(h.status(), 503, "healthy only after the first good probe");
    assert_eq!(
        check(&c, &node.url, "k", 1).await.body["source"],
        "fail_open"
    );
    let _redis = RedisServer::start_on(port);
    node.wait_healthy(&c).await;
    assert_eq!(check(&c, &node.url, "k", 1).await.body["source"], "redis");
}

#[tokio::test]
async fn admin_routes_refuse_requests_without_the_token() {
    let redis = RedisServer::start();
    let with_token = Node::start("a", &redis.url(), &admin_flags());
    let without = Node::start("b", &redis.url(), &[]);
    let c = client();
    let url = format!("{}/admin/keys/k", with_token.url);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .get(format!("{}/admin/keys/k", without.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("--admin-token"));
}

#[tokio::test]
async fn chaos_routes_exist_only_with_enable_chaos() {
    let redis = RedisServer::start();
    let plain = Node::start("plain", &redis.url(), &admin_flags());
    let chaotic = Node::start(
        "chaotic",
        &redis.url(),
        &["--admin-token", TOKEN, "--enable-chaos"],
    );
    let c = client();
    chaotic.wait_healthy(&c).await;
    let r = admin(&c, Method::POST, format!("{}/chaos/ghost", plain.url))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(format!("{}/chaos/ghost", chaotic.url))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "chaos needs the admin token too");

    // Ghost-allow: answers skip Redis, and every one is counted as such.
    let r = admin(&c, Method::POST, format!("{}/chaos/ghost", chaotic.url))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for _ in 0..3 {
        let reply = check(&c, &chaotic.url, "g", 1).await;
        assert_eq!(
            (reply.body["allowed"].clone(), reply.body["source"].clone()),
            (true.into(), "skipped".into())
        );
    }
    let skipped = metric(
        &c,
        &chaotic.url,
        r#"rl_checks_total{decision="allowed",source="skipped"}"#,
    )
    .await;
    assert_eq!(skipped, 3.0);

    // Latency: every check waits at least that long.
    admin(&c, Method::POST, format!("{}/chaos/clear", chaotic.url))
        .send()
        .await
        .unwrap();
    admin(&c, Method::POST, format!("{}/chaos/latency", chaotic.url))
        .json(&serde_json::json!({"ms": 60}))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let reply = check(&c, &chaotic.url, "g", 1).await;
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert_eq!(reply.body["source"], "redis");
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_changes_no_counter() {
    let redis = RedisServer::start();
    let node = Node::start("node-1", &redis.url(), &admin_flags());
    let c = client();
    node.wait_healthy(&c).await;
    let long_key = "x".repeat(257);
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{\"key\": ".into(), "application/json"),
        ("empty key", r#"{"key":""}"#.into(), "application/json"),
        (
            "key over 256 bytes",
            format!(r#"{{"key":"{long_key}"}}"#),
            "application/json",
        ),
        (
            "cost 0",
            r#"{"key":"k","cost":0}"#.into(),
            "application/json",
        ),
        (
            "absurd cost",
            r#"{"key":"k","cost":1000000000000}"#.into(),
            "application/json",
        ),
        (
            "negative cost",
            r#"{"key":"k","cost":-1}"#.into(),
            "application/json",
        ),
        (
            "unknown field",
            r#"{"key":"k","tenant":"x"}"#.into(),
            "application/json",
        ),
        ("wrong content type", r#"{"key":"k"}"#.into(), "text/plain"),
        ("not an object", r#"["k"]"#.into(), "application/json"),
    ];
    for (what, body, content_type) in cases {
        let r = c
            .post(format!("{}/v1/check", node.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{what}: status {status}");
        let body: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e})"));
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{what}: {body}"
        );
    }
    let r = admin(&c, Method::PUT, format!("{}/admin/limits/k", node.url))
        .json(&serde_json::json!({"limit": 0, "window_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("rl:*").query(&mut conn).unwrap();
    assert!(keys.is_empty(), "bad input wrote to Redis: {keys:?}");
    let checks = metric(
        &c,
        &node.url,
        r#"rl_checks_total{decision="allowed",source="redis"}"#,
    )
    .await
        + metric(
            &c,
            &node.url,
            r#"rl_checks_total{decision="denied",source="redis"}"#,
        )
        .await;
    assert_eq!(checks, 0.0);
}

#[tokio::test]
async fn sigterm_shuts_the_node_down_cleanly() {
    let redis = RedisServer::start();
    let mut node = Node::start("node-1", &redis.url(), &[]);
    let c = client();
    node.wait_healthy(&c).await;
    let status = node
        .terminate()
        .expect("the node exits within 5 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn metrics_describe_the_node_in_prometheus_text() {
    let redis = RedisServer::start();
    let node = Node::start("node-7", &redis.url(), &[]);
    let c = client();
    node.wait_healthy(&c).await;
    check(&c, &node.url, "m", 2).await;
    let text = c
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"rl_node_info{node_id="node-7""#,
        "rl_check_duration_seconds_bucket",
        "rl_redis_call_duration_seconds_count",
        r#"rl_key_allowed_units_total{key="m"} 2"#,
        "rl_redis_up 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_reports_what_the_nodes_decided() {
    use ratelimiter_svc::load::{LiveStats, LoadConfig, run};
    let redis = RedisServer::start();
    let nodes = cluster(&redis, &["--default-limit", "1000000"]).await;
    let stats = std::sync::Arc::new(LiveStats::default());
    let config = LoadConfig {
        targets: nodes.iter().map(|n| n.url.clone()).collect(),
        rate: Some(400.0),
        duration: Some(Duration::from_secs(1)),
        hot_key: Some("hot".into()),
        hot_fraction: 0.5,
        ..LoadConfig::default()
    };
    let summary = run(config, stats.clone(), std::future::pending())
        .await
        .unwrap();
    let t = summary.totals;
    assert!(
        (380..=400).contains(&t.sent),
        "sent {} at 400/s for 1 s",
        t.sent
    );
    assert_eq!(t.allowed, t.sent, "{summary}");
    assert_eq!((t.denied, t.errors), (0, 0));
    assert!(summary.p50_ms > 0.0 && summary.p99_ms >= summary.p50_ms);
    let mut conn = redis.connection();
    let hot: Vec<String> = redis::cmd("KEYS")
        .arg("rl:cnt:hot:*")
        .query(&mut conn)
        .unwrap();
    assert!(!hot.is_empty(), "the hot key received traffic");
}
