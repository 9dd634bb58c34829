//! The test app: the same wiring as `main`, over a fresh temporary database.

#![allow(dead_code)]

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test;
use frontpage::app::app;
use frontpage::config::Config;
use frontpage::{openapi, server};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The bootstrap admin key every test app accepts.
pub const ADMIN: &str = "test-admin-key";

/// A configuration over a fresh database in `dir`: no rate limit, no
/// ranking cache and no response cache unless a test sets them.
pub fn config(dir: &TempDir, demo: bool) -> Config {
    config_with(dir, demo, &[])
}

/// [`config`] with some variables set or overridden.
pub fn config_with(dir: &TempDir, demo: bool, extra: &[(&str, &str)]) -> Config {
    let path = dir.path().join("frontpage.db");
    let mut pairs = vec![
        ("DATABASE_URL", path.to_string_lossy().to_string()),
        ("FRONTPAGE_ADMIN_TOKEN", ADMIN.to_string()),
        ("FRONTPAGE_DEMO", demo.to_string()),
        ("FRONTPAGE_WORKERS", "2".to_string()),
        ("FRONTPAGE_RATE_LIMIT_PER_MIN", "0".to_string()),
        ("FRONTPAGE_RANKING_CACHE_SECS", "0".to_string()),
        ("FRONTPAGE_RESPONSE_CACHE_SECS", "0".to_string()),
        ("FRONTPAGE_VIEW_TOTALS_LAG_MS", "0".to_string()),
    ];
    pairs.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    pairs.extend(extra.iter().map(|(name, value)| (*name, value.to_string())));
    Config::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test config")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and that the body is a problem naming `fields`.
    pub fn assert_problem(&self, status: u16, fields: &[&str]) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        for key in ["type", "title", "detail"] {
            assert!(
                self.body[key].is_string(),
                "problem lacks {key}: {}",
                self.body
            );
        }
        assert_eq!(self.body["status"], status);
        let named: Vec<&str> = self.body["errors"]
            .as_array()
            .expect("errors[]")
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        for field in fields {
            assert!(named.contains(field), "{field} not named in {named:?}");
        }
    }
}

/// Sends a request and reads the JSON (or empty) body.
pub async fn send<S, B>(app: &S, req: Request) -> Reply
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, req).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// GET `uri`.
pub fn get(uri: &str) -> Request {
    test::TestRequest::get().uri(uri).to_request()
}

/// A JSON request with the admin key.
pub fn admin(method: &str, uri: &str, body: Value) -> Request {
    test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .set_json(body)
        .to_request()
}

/// An article input with the fields every test needs.
pub fn article(title: &str, category: &str) -> Value {
    json!({
        "title": title,
        "category": category,
        "body_html": format!("<p>{title}. Some words of body text.</p>"),
        "status": "published",
        "published_at": "2026-01-10T12:00:00Z",
    })
}

/// The app and the temporary directory holding its database.
pub async fn test_app(
    demo: bool,
) -> (
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
    TempDir,
) {
    test_app_with(demo, &[]).await
}

/// [`test_app`] with some configuration variables set.
pub async fn test_app_with(
    demo: bool,
    extra: &[(&str, &str)],
) -> (
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
    TempDir,
) {
    let dir = TempDir::new().expect("temp dir");
    let service = app_with(config_with(&dir, demo, extra)).await;
    (service, dir)
}

/// A test app with `config`, whose database may have been used before (as
/// a restarted server finds it).
pub async fn app_with(
    config: Config,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    let state = server::prepare(&config).expect("prepare");
    test::init_service(app(state, openapi::spec())).await
}

/// Creates the categories `news` (under `home`) and `world` (under `news`), and `sport`.
pub async fn seed_categories<S, B>(app: &S)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    for (slug, name, parent) in [
        ("home", "Home", None),
        ("news", "News", Some("home")),
        ("world", "World", Some("news")),
        ("sport", "Sport", Some("home")),
    ] {
        let reply = send(
            app,
            admin(
                "POST",
                "/api/v1/categories",
                json!({"slug": slug, "name": name, "parent": parent}),
            ),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
}

/// Creates an article and returns its body.
pub async fn create<S, B>(app: &S, input: Value) -> Value
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let reply = send(app, admin("POST", "/api/v1/articles", input)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["data"].clone()
}

/// The titles of a list's items, in order.
pub fn titles(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["title"].as_str().expect("a title").to_string())
        .collect()
}

/// Every item of a paged list, following `meta.next_cursor` from `uri`.
pub async fn all_pages<S, B>(app: &S, uri: &str) -> Vec<Value>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut items = Vec::new();
    let mut next = uri.to_string();
    loop {
        let reply = send(app, get(&next)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        items.extend(
            reply.body["data"]
                .as_array()
                .expect("a list")
                .iter()
                .cloned(),
        );
        match reply.body["meta"]["next_cursor"].as_str() {
            Some(cursor) => {
                let separator = if uri.contains('?') { '&' } else { '?' };
                next = format!("{uri}{separator}cursor={cursor}");
            }
            None => return items,
        }
    }
}

/// A public JSON request (no key), e.g. an engagement write.
pub fn public(method: &str, uri: &str, body: Value) -> Request {
    test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(uri)
        .set_json(body)
        .to_request()
}

/// Reads `uri` until `shown` holds, for at most two seconds (eight times
/// the writer's look for other processes' commits, which the README
/// promises show within a quarter second); the last body.
pub async fn eventually<S, B>(
    app: &S,
    uri: &str,
    shown: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    eventually_within(app, uri, std::time::Duration::from_secs(2), shown).await
}

/// [`eventually`], for at most `within`.
pub async fn eventually_within<S, B>(
    app: &S,
    uri: &str,
    within: std::time::Duration,
    shown: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = std::time::Instant::now();
    loop {
        let body = send(app, get(uri)).await.body;
        if shown(&body) {
            return body;
        }
        if started.elapsed() >= within {
            panic!("{uri} never showed what was written: {body}");
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
