//! The node's HTTP API: checks, health, metrics, window accounting, admin and chaos routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::chaos::{ChaosState, GhostRequest, LatencyRequest, MAX_CHAOS_LATENCY_MS};
use crate::config::{FailMode, NodeConfig};
use crate::health::HealthState;
use crate::limiter::{
    KeyState, Limiter, MAX_COST, MAX_KEY_BYTES, MAX_LIMIT, MAX_WINDOW_MS, RedisFailure,
};
use crate::metrics::{DecisionSource, NodeMetrics};
use crate::windows::{KeyWindows, WindowBook};

pub struct AppState {
    pub config: NodeConfig,
    pub limiter: Arc<Limiter>,
    pub metrics: Arc<NodeMetrics>,
    pub windows: Arc<WindowBook>,
    pub health: Arc<HealthState>,
    pub chaos: ChaosState,
    pub started: Instant,
}

/// Every error the API returns: a status and a JSON body saying what was wrong.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    fn redis(failure: RedisFailure) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "redis_unavailable",
            failure.to_string(),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ => "invalid_json",
        };
        Self::new(rejection.status(), code, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

/// A JSON body that must be an object of exactly `T`'s fields. serde alone would also accept
/// an array for a struct; the API promises objects only.
pub struct JsonObject<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        serde_json::from_value(value).map(JsonObject).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_json",
                e.to_string(),
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub key: String,
    #[serde(default = "one")]
    pub cost: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Limit, remaining and reset are unknown when Redis was not asked.
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at_ms: Option<u64>,
    pub node_id: String,
    pub source: DecisionSource,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    pub limit: u64,
    pub window_ms: u64,
}

fn validate_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::bad_request("key must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "key is {} bytes; the most is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "key must not contain control characters",
        ));
    }
    Ok(())
}

pub fn router(state: Arc<AppState>) -> Router {
    let admin = Router::new()
        .route(
            "/admin/limits/{key}",
            get(get_limit).put(put_limit).delete(delete_limit),
        )
        .route("/admin/keys/{key}", get(get_key))
        .route("/admin/keys/{key}/reset", post(reset_key));
    let admin = if state.config.enable_chaos {
        admin
            .route("/chaos", get(get_chaos))
            .route("/chaos/latency", post(chaos_latency))
            .route("/chaos/ghost", post(chaos_ghost))
            .route("/chaos/clear", post(chaos_clear))
    } else {
        admin
    };
    let admin = admin.route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/windows", get(windows))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(admin)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is off: start the node with --admin-token or RL_ADMIN_TOKEN",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        ))
    }
}

async fn check(
    State(state): State<Arc<AppState>>,
    JsonObject(request): JsonObject<CheckRequest>,
) -> Result<Response, ApiError> {
    validate_key(&request.key)?;
    if request.cost == 0 || request.cost > MAX_COST {
        return Err(ApiError::bad_request(format!(
            "cost must be between 1 and {MAX_COST}"
        )));
    }
    let started = Instant::now();
    let decision = decide(&state, &request).await;
    let status = if decision.allowed {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    state.metrics.record_decision(
        decision.allowed,
        decision.source,
        started.elapsed().as_secs_f64(),
    );
    Ok((status, Json(decision)).into_response())
}

async fn decide(state: &AppState, request: &CheckRequest) -> Decision {
    let answer = |allowed: bool, source: DecisionSource| Decision {
        allowed,
        limit: None,
        remaining: None,
        reset_at_ms: None,
        node_id: state.config.node_id.clone(),
        source,
    };
    let delay = state.chaos.latency();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if state.chaos.ghosting() {
        return answer(true, DecisionSource::Skipped);
    }
    let call_started = Instant::now();
    state.windows.begin(&request.key, request.cost);
    // Over when this guard drops, on every path: after the decision is recorded.
    let _in_flight = InFlight {
        windows: &state.windows,
        key: &request.key,
        units: request.cost,
    };
    match state.limiter.check(&request.key, request.cost).await {
        Ok(d) => {
            state.health.check_decided();
            state
                .metrics
                .record_redis_call(call_started.elapsed().as_secs_f64());
            let units = if d.allowed { request.cost } else { 0 };
            let tracked = state
                .windows
                .record(&request.key, &d.window, units, d.limit);
            if units > 0 {
                state
                    .metrics
                    .record_allowed_units(tracked.then_some(request.key.as_str()), units);
            }
            Decision {
                allowed: d.allowed,
                limit: Some(d.limit),
                remaining: Some(d.limit.saturating_sub(d.used)),
                reset_at_ms: Some(d.reset_at_ms),
                node_id: state.config.node_id.clone(),
                source: DecisionSource::Redis,
            }
        }
        Err(failure) => {
            state.metrics.record_redis_failure(&failure);
            state.health.check_failed(&failure);
            match failure {
                RedisFailure::Timeout => {
                    state.windows.record_uncertain(&request.key, request.cost);
                }
                RedisFailure::Error(ref e) => {
                    tracing::debug!(error = %e, "check fell back to the fail mode");
                }
            }
            match state.config.fail_mode {
                FailMode::Open => answer(true, DecisionSource::FailOpen),
                FailMode::Closed => answer(false, DecisionSource::FailClosed),
            }
        }
    }
}

/// Ends a check's time in flight when dropped (decided and recorded, failed, or the request
/// cancelled), so the count never leaks.
struct InFlight<'a> {
    windows: &'a WindowBook,
    key: &'a str,
    units: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.windows.end(self.key, self.units);
    }
}

async fn windows(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let keys: Vec<KeyWindows> = state.windows.snapshot();
    Json(serde_json::json!({
        "node_id": state.config.node_id,
        "watching_since_ms": state.windows.watching_since_ms(),
        "keys": keys,
    }))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let redis = state.health.redis();
    let healthy = redis.reachable;
    let body = serde_json::json!({
        "node_id": state.config.node_id,
        "status": if healthy { "ok" } else { "unhealthy" },
        "healthy": healthy,
        "uptime_ms": state.started.elapsed().as_millis() as u64,
        "fail_mode": state.config.fail_mode,
        // The settings it was started with, by flag name: a node started by hand with other
        // flags than its peers decides differently from them.
        "flags": {
            "default-limit": state.config.default_limit.to_string(),
            "default-window-ms": state.config.default_window_ms.to_string(),
            "redis-timeout-ms": state.config.redis_timeout_ms.to_string(),
            "fail-mode": clap::ValueEnum::to_possible_value(&state.config.fail_mode)
                .map(|v| v.get_name().to_string()),
        },
        "redis": redis,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn get_limit(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_key(&key)?;
    let s: KeyState = state.limiter.inspect(&key).await.map_err(ApiError::redis)?;
    Ok(Json(serde_json::json!({
        "key": key, "limit": s.limit, "window_ms": s.window_ms, "overridden": s.overridden,
    })))
}

async fn put_limit(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    JsonObject(request): JsonObject<LimitRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_key(&key)?;
    if request.limit == 0 || request.limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    if request.window_ms == 0 || request.window_ms > MAX_WINDOW_MS {
        return Err(ApiError::bad_request(format!(
            "window_ms must be between 1 and {MAX_WINDOW_MS}"
        )));
    }
    state
        .limiter
        .set_limit(&key, request.limit, request.window_ms)
        .await
        .map_err(ApiError::redis)?;
    tracing::info!(%key, limit = request.limit, window_ms = request.window_ms, "limit set");
    Ok(Json(serde_json::json!({
        "key": key, "limit": request.limit, "window_ms": request.window_ms, "overridden": true,
    })))
}

async fn delete_limit(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_key(&key)?;
    let removed = state
        .limiter
        .delete_limit(&key)
        .await
        .map_err(ApiError::redis)?;
    tracing::info!(%key, removed, "limit override deleted");
    Ok(Json(serde_json::json!({ "key": key, "removed": removed })))
}

async fn get_key(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<KeyState>, ApiError> {
    validate_key(&key)?;
    Ok(Json(
        state.limiter.inspect(&key).await.map_err(ApiError::redis)?,
    ))
}

async fn reset_key(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_key(&key)?;
    let generation = state.limiter.reset(&key).await.map_err(ApiError::redis)?;
    tracing::info!(%key, generation, "counter reset");
    Ok(Json(
        serde_json::json!({ "key": key, "generation": generation }),
    ))
}

async fn get_chaos(State(state): State<Arc<AppState>>) -> Json<crate::chaos::ChaosView> {
    Json(state.chaos.view())
}

async fn chaos_latency(
    State(state): State<Arc<AppState>>,
    JsonObject(request): JsonObject<LatencyRequest>,
) -> Result<Json<crate::chaos::ChaosView>, ApiError> {
    if request.ms > MAX_CHAOS_LATENCY_MS {
        return Err(ApiError::bad_request(format!(
            "ms must be at most {MAX_CHAOS_LATENCY_MS}"
        )));
    }
    state.chaos.set_latency(Duration::from_millis(request.ms));
    tracing::warn!(ms = request.ms, "chaos: latency added to every check");
    Ok(Json(state.chaos.view()))
}

async fn chaos_ghost(
    State(state): State<Arc<AppState>>,
    JsonObject(request): JsonObject<GhostRequest>,
) -> Result<Json<crate::chaos::ChaosView>, ApiError> {
    state
        .chaos
        .set_ghost(request.duration_ms.map(Duration::from_millis));
    tracing::warn!(duration_ms = ?request.duration_ms, "chaos: ghost-allowing without Redis");
    Ok(Json(state.chaos.view()))
}

async fn chaos_clear(State(state): State<Arc<AppState>>) -> Json<crate::chaos::ChaosView> {
    state.chaos.clear();
    tracing::warn!("chaos: cleared");
    Json(state.chaos.view())
}
