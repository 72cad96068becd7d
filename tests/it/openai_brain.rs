//! The OpenAI-compatible brain against a local replay server: a tool loop in OpenAI's chunk
//! style (arguments in fragments) and in Ollama's (each call whole in one delta), errors in the
//! servers' shapes, and the key never sent when none is configured.

use crate::support;

use std::sync::Arc;

use operator_protocol::*;
use operator_tui::brains::openai::{OpenAiBrain, OpenAiConfig};
use operator_tui::engine::SubjectTools;
use support::fake::*;
use support::replay::{ReplayServer, Reply};

async fn diagnose(
    key: Option<&str>,
    model: &str,
    replies: Vec<Reply>,
) -> (Result<Diagnosis, ContractError>, ReplayServer, Collect) {
    let server = ReplayServer::start(replies).await;
    let subject = FakeSubject::new(&["n1", "n2", "n3"]);
    subject.set_healthy("n2", false);
    let tools = SubjectTools(Arc::new(subject.clone()), Arc::new(FakeTarget(vec![])));
    let brain =
        OpenAiBrain::new(OpenAiConfig::new(&format!("{}/v1", server.url), key, model)).unwrap();
    let sink = Collect::default();
    let result = brain
        .diagnose(&node_down_context(&subject), &tools, &sink)
        .await;
    (result, server, sink)
}

#[tokio::test]
async fn an_openai_style_tool_loop_ends_in_a_diagnosis() {
    let (result, server, sink) = diagnose(
        Some("sk-openai-test-key"),
        "gpt-4o-mini",
        vec![
            Reply::sse("openai/openai_1.sse"),
            Reply::sse("openai/openai_2.sse"),
        ],
    )
    .await;
    let d = result.unwrap();
    assert_eq!(
        (
            d.root_cause.category.as_str(),
            d.recommended_actions[0].params["node"].as_str()
        ),
        ("process_crash", Some("n2"))
    );
    assert_eq!(
        (d.cost.tool_calls, d.cost.input_tokens, d.cost.output_tokens),
        (1, 850 + 1020, 31 + 190)
    );
    let text: String = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ReasoningEvent::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "n2 is down; checking its process.");
    let requests = server.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-openai-test-key")
    );
    let body = &requests[0].body;
    assert_eq!(
        (body["model"].as_str(), body["stream"].as_bool()),
        (Some("gpt-4o-mini"), Some(true))
    );
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["tools"][0]["type"], "function");
    // The second request echoes the call and answers it with a tool message.
    let messages = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["arguments"],
        "{\"node\":\"n2\"}"
    );
    assert_eq!(
        (
            messages[3]["role"].as_str(),
            messages[3]["tool_call_id"].as_str()
        ),
        (Some("tool"), Some("call_Op1NodeDetail"))
    );
}

#[tokio::test]
async fn an_ollama_style_tool_loop_ends_in_a_diagnosis_and_sends_no_key() {
    let (result, server, sink) = diagnose(
        None,
        "qwen3:8b",
        vec![
            Reply::sse("openai/ollama_1.sse"),
            Reply::sse("openai/ollama_2.sse"),
        ],
    )
    .await;
    let d = result.unwrap();
    assert_eq!(d.root_cause.category, "process_crash");
    assert_eq!(d.cost.tool_calls, 1);
    assert!(
        sink.0.lock().unwrap().iter().any(
            |e| matches!(e, ReasoningEvent::Thinking { text } if text.contains("I should look"))
        )
    );
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn server_errors_in_each_shape_are_read_and_retried_or_refused() {
    let llama_busy = || Reply {
        body: br#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#
            .to_vec(),
        ..Reply::error(503, "x", "y")
    };
    let (result, server, _) = diagnose(
        None,
        "llama",
        vec![
            llama_busy(),
            Reply::sse("openai/openai_1.sse"),
            Reply::sse("openai/openai_2.sse"),
        ],
    )
    .await;
    assert!(result.is_ok(), "a 503 is retried");
    assert_eq!(server.requests().len(), 3);

    let vllm_bad = Reply { body: br#"{"object":"error","message":"auto tool choice requires --enable-auto-tool-choice","type":"BadRequestError","param":null,"code":400}"#.to_vec(), ..Reply::error(400, "x", "y") };
    let (result, server, _) = diagnose(None, "vllm", vec![vllm_bad]).await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("--enable-auto-tool-choice"), "{error}");
    assert_eq!(server.requests().len(), 1, "a 400 is not retried");
}
