//! The seam between a subject that speaks HTTP and the network: a live cluster answers over
//! sockets (`ReqwestTransport`, feature `http`), a simulated one in-process, on a simulated
//! clock, with the very handlers its HTTP server runs. Only the I/O differs, so the subject's
//! requests and parsing are the ones a live run exercises.

use std::sync::Arc;
use std::time::Duration;

use crate::{BoxFuture, Millis};

/// One request as a subject makes it.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// "GET", "POST", "DELETE".
    pub method: &'a str,
    pub url: &'a str,
    /// Sent as JSON.
    pub body: Option<&'a serde_json::Value>,
    /// None: the transport's own default.
    pub timeout: Option<Duration>,
}

impl<'a> HttpRequest<'a> {
    pub fn new(method: &'a str, url: &'a str) -> Self {
        Self {
            method,
            url,
            body: None,
            timeout: None,
        }
    }

    pub fn get(url: &'a str) -> Self {
        Self::new("GET", url)
    }

    pub fn json(self, body: Option<&'a serde_json::Value>) -> Self {
        Self { body, ..self }
    }

    pub fn timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }
}

/// The status and the body of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

impl HttpAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no answer came, worded for a person ("connection refused (is the process running?)").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HttpFailure(pub String);

pub trait HttpTransport: Send + Sync {
    fn send<'a>(
        &'a self,
        request: HttpRequest<'a>,
    ) -> BoxFuture<'a, Result<HttpAnswer, HttpFailure>>;
}

/// Where a subject reads the time: the system's clock, or a simulation's.
#[derive(Clone)]
pub struct TimeSource(Arc<dyn Fn() -> Millis + Send + Sync>);

impl TimeSource {
    pub fn new(now_ms: impl Fn() -> Millis + Send + Sync + 'static) -> Self {
        Self(Arc::new(now_ms))
    }

    pub fn now_ms(&self) -> Millis {
        (self.0)()
    }
}

impl Default for TimeSource {
    fn default() -> Self {
        Self::new(crate::unix_now_ms)
    }
}

impl std::fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimeSource({} ms)", self.now_ms())
    }
}

#[cfg(feature = "http")]
mod reqwest_transport {
    use super::*;

    /// HTTP over the network, with a timeout for requests that name none.
    pub struct ReqwestTransport {
        client: reqwest::Client,
    }

    impl ReqwestTransport {
        pub fn new(timeout: Duration) -> Result<Self, String> {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Self { client })
        }
    }

    /// Why a request failed, without reqwest's nested wording.
    fn reason(e: &reqwest::Error) -> String {
        if e.is_connect() {
            "connection refused (is the process running?)".into()
        } else if e.is_timeout() {
            "timed out".into()
        } else {
            e.to_string()
        }
    }

    impl HttpTransport for ReqwestTransport {
        fn send<'a>(
            &'a self,
            request: HttpRequest<'a>,
        ) -> BoxFuture<'a, Result<HttpAnswer, HttpFailure>> {
            Box::pin(async move {
                let method = reqwest::Method::from_bytes(request.method.as_bytes())
                    .map_err(|e| HttpFailure(format!("method {}: {e}", request.method)))?;
                let mut builder = self.client.request(method, request.url);
                if let Some(body) = request.body {
                    builder = builder.json(body);
                }
                if let Some(timeout) = request.timeout {
                    builder = builder.timeout(timeout);
                }
                let response = builder.send().await.map_err(|e| HttpFailure(reason(&e)))?;
                let status = response.status().as_u16();
                let body = response.text().await.map_err(|e| HttpFailure(reason(&e)))?;
                Ok(HttpAnswer { status, body })
            })
        }
    }
}

#[cfg(feature = "http")]
pub use reqwest_transport::ReqwestTransport;
