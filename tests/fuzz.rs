//! Property tests of untrusted input through the whole app: generated query
//! strings on every public read and generated NDJSON bodies on the bulk
//! import. Whatever comes in, the answer is a success or a problem, never a
//! server error, and a bulk import accounts for every line.
//! (Schemathesis, in `.ci/schemathesis`, does the same from the OpenAPI
//! document against the running binary.)

mod common;

use actix_web::test::TestRequest;
use common::{ADMIN, get, send, test_app};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;

/// `n` values of `strategy`, the same on every run.
fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn assert_answer_or_problem(reply: &common::Reply, request: &str) {
    let status = reply.status.as_u16();
    assert!(status < 500, "{request} answered {status}: {}", reply.body);
    if status >= 400 {
        let content_type = reply.headers.get("content-type").unwrap();
        assert_eq!(content_type, "application/problem+json", "{request}");
        assert_eq!(reply.body["status"], status, "{request}");
    }
}

#[actix_web::test]
async fn any_query_string_is_an_answer_or_a_problem() {
    let (app, _dir) = test_app(true).await;
    let paths = [
        "/api/v1/articles",
        "/api/v1/articles/1",
        "/api/v1/articles/1/related",
        "/api/v1/ranking",
        "/api/v1/recommendations",
        "/api/v1/categories/news",
        "/api/v1/tags",
        "/api/v1/authors",
        "/feeds/latest.json",
        "/feeds/category/news.rss",
    ];
    let names = [
        "limit", "cursor", "category", "tag", "author", "q", "sort", "window", "metric", "include",
        "reader", "context", "status", "since", "until", "x",
    ];
    let value = prop_oneof![
        any::<String>(),
        "[0-9-]{0,20}",
        "[a-z,_ -]{0,30}",
        "[A-Za-z0-9_=-]{0,80}",
        Just("9223372036854775808".to_string()),
        Just("related,ranking,recommendations,related".to_string()),
        Just("eyJ0IjoxLCJpIjoxfQ".to_string()),
    ];
    let query = prop::collection::vec((prop::sample::select(names.to_vec()), value), 0..5);
    for (path, pairs) in samples((prop::sample::select(paths.to_vec()), query), 600) {
        let query: Vec<String> = pairs
            .iter()
            .map(|(name, value)| format!("{name}={}", encode(value)))
            .collect();
        let uri = format!("{path}?{}", query.join("&"));
        let reply = send(&app, get(&uri)).await;
        assert_answer_or_problem(&reply, &uri);
    }
}

#[actix_web::test]
async fn any_ndjson_body_is_accounted_for_line_by_line_or_refused_whole() {
    let (app, _dir) = test_app(true).await;
    let title = any::<String>();
    let line = prop_oneof![
        any::<String>(),
        title.prop_map(|title| json!({"title": title, "category": "news"}).to_string()),
        "[a-z ]{1,40}".prop_map(|title| json!({"title": title, "category": "news",
            "tags": ["Fuzz"], "body_markdown": "*x*"})
        .to_string()),
        Just(r#"{"title": "No category"}"#.to_string()),
        Just(r#"{"title": 7, "category": []}"#.to_string()),
        Just(r#"{"title": "x", "category": "news", "unknown": true}"#.to_string()),
        Just("[]".to_string()),
        Just("null".to_string()),
        Just("{".to_string()),
        Just(String::new()),
    ];
    let bodies = prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"));
    for body in samples(bodies, 200) {
        let lines = body.lines().filter(|line| !line.trim().is_empty()).count();
        let request = TestRequest::post()
            .uri("/api/v1/articles/bulk")
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .insert_header(("content-type", "application/x-ndjson"))
            .set_payload(body.clone())
            .to_request();
        let reply = send(&app, request).await;
        assert_answer_or_problem(&reply, &body);
        if reply.status == 200 {
            let data = &reply.body["data"];
            let counted: i64 = ["created", "updated", "unchanged", "failed"]
                .iter()
                .map(|count| data[count].as_i64().unwrap())
                .sum();
            assert_eq!(counted, lines as i64, "{body:?}: {data}");
        } else {
            assert_eq!(lines, 0, "{body:?} was refused whole: {}", reply.body);
        }
    }
}
