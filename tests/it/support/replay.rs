//! A local HTTP server that replays scripted responses byte for byte, for brains under test:
//! each request gets the next reply (status, headers, body sent in small chunks so that events
//! and UTF-8 characters straddle reads). It records every request for assertions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes per write.
    pub chunk: usize,
    pub pause: Duration,
}

impl Reply {
    pub fn sse(fixture: &str) -> Self {
        let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
        Self {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "text/event-stream; charset=utf-8".into(),
            )],
            body,
            chunk: 7,
            pause: Duration::from_millis(1),
        }
    }

    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        let body = serde_json::json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_test" });
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            chunk: 4096,
            pause: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct ReplayServer {
    pub url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(serde_json::Value::Null);
    Some(Recorded {
        headers,
        body,
        at: std::time::Instant::now(),
    })
}

impl ReplayServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let log = recorded.clone();
        let task = tokio::spawn(async move {
            let mut replies = replies.into_iter();
            while let Ok((mut stream, _)) = listener.accept().await {
                let Some(request) = read_request(&mut stream).await else {
                    continue;
                };
                log.lock().unwrap().push(request);
                let reply = replies.next().unwrap_or_else(|| {
                    Reply::error(500, "api_error", "the replay script ran out of replies")
                });
                let mut head = format!("HTTP/1.1 {} REPLAY\r\nconnection: close\r\n", reply.status);
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if reply.status != 200 {
                    head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    continue;
                }
                for piece in reply.body.chunks(reply.chunk.max(1)) {
                    if stream.write_all(piece).await.is_err() {
                        break;
                    }
                    let _ = stream.flush().await;
                    if !reply.pause.is_zero() {
                        tokio::time::sleep(reply.pause).await;
                    }
                }
                let _ = stream.shutdown().await;
            }
        });
        Self {
            url,
            recorded,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

/// An OpenAI-compatible brain whose every answer is the replayed `fixture` (a path under
/// tests/fixtures/): the model the never-worse tests put in front of the executor. Keep the
/// server as long as the brain is used.
pub async fn openai_replaying(
    fixture: &str,
) -> (ReplayServer, operator_tui::brains::openai::OpenAiBrain) {
    use operator_tui::brains::openai::{OpenAiBrain, OpenAiConfig};
    let server = ReplayServer::start(vec![Reply::sse(fixture)]).await;
    let brain = OpenAiBrain::new(OpenAiConfig::new(
        &format!("{}/v1", server.url),
        Some("sk-openai-test-key"),
        "gpt-4o-mini",
    ))
    .unwrap();
    (server, brain)
}
