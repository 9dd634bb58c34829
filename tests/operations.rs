//! Operations: health and readiness, request ids, metrics and CORS.

mod common;

use actix_web::test::TestRequest;
use common::{get, send, test_app, test_app_with};
use serde_json::json;

#[actix_web::test]
async fn a_migrated_store_is_alive_and_ready() {
    let (app, _dir) = test_app(false).await;
    let reply = send(&app, get("/healthz")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.clone()),
        (200, json!({"status": "ok"}))
    );
    let reply = send(&app, get("/readyz")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.clone()),
        (200, json!({"status": "ready"}))
    );
}

#[actix_web::test]
async fn every_answer_has_a_request_id_and_a_sane_one_is_kept() {
    let (app, _dir) = test_app(false).await;
    let made = send(&app, get("/healthz")).await;
    let id = made.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let other = send(&app, get("/healthz")).await;
    assert_ne!(other.header("x-request-id"), Some(id));

    let given = TestRequest::get()
        .uri("/api/v1/articles/404")
        .insert_header(("x-request-id", "edge-7f3a.1"))
        .to_request();
    let reply = send(&app, given).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("x-request-id"), Some("edge-7f3a.1"));

    let unsafe_id = TestRequest::get()
        .uri("/healthz")
        .insert_header(("x-request-id", "two words"))
        .to_request();
    let reply = send(&app, unsafe_id).await;
    assert_ne!(reply.header("x-request-id"), Some("two words"));
}

/// With `FRONTPAGE_METRICS_TOKEN` set, `/metrics` is for those who send
/// it, or the admin token.
#[actix_web::test]
async fn metrics_may_ask_for_a_token() {
    let (app, _dir) = test_app_with(
        false,
        &[("FRONTPAGE_METRICS_TOKEN", "scraper-secret-1234567")],
    )
    .await;
    let with = |token: &str| {
        TestRequest::get()
            .uri("/metrics")
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request()
    };
    let refused = send(&app, get("/metrics")).await;
    refused.assert_problem(401, &[]);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    send(&app, with("scraper-secret-123456"))
        .await
        .assert_problem(401, &[]);
    for token in ["scraper-secret-1234567", common::ADMIN] {
        let reply = send(&app, with(token)).await;
        assert_eq!(reply.status, 200, "{token}");
        assert!(
            reply
                .body
                .as_str()
                .unwrap()
                .contains("frontpage_build_info")
        );
    }
    // Without the setting, as every other test has it: public.
    let (open, _dir) = test_app(false).await;
    assert_eq!(send(&open, get("/metrics")).await.status, 200);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_show_the_store_and_caches() {
    let (app, _dir) = test_app_with(true, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "60")]).await;
    for _ in 0..3 {
        assert_eq!(send(&app, get("/api/v1/articles/1")).await.status, 200);
    }
    assert_eq!(send(&app, get("/api/v1/articles/999999")).await.status, 404);
    assert_eq!(send(&app, get("/no/such/path")).await.status, 404);
    for made_up in ["BREW", "PROPFIND"] {
        let request = actix_web::test::TestRequest::default()
            .method(made_up.parse().unwrap())
            .uri("/api/v1/articles/1")
            .to_request();
        assert_eq!(send(&app, request).await.status, 405);
    }

    let reply = send(&app, get("/metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        reply.header("content-type")
    );
    let text = reply.body.as_str().expect("a text body");
    let sample = |prefix: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let route = r#"endpoint="/api/v1/articles/{id_or_slug}",method="GET""#;
    assert_eq!(
        sample(&format!(
            r#"frontpage_http_requests_total{{{route},status="200"}}"#
        )),
        3.0
    );
    assert_eq!(
        sample(&format!(
            r#"frontpage_http_requests_total{{{route},status="404"}}"#
        )),
        1.0
    );
    // Unmatched paths share one label, so scanners cannot blow up the series.
    assert_eq!(
        sample(r#"frontpage_http_requests_total{endpoint="UNMATCHED",method="GET",status="404"}"#),
        1.0
    );
    // Methods the API has no route for share one label too.
    assert_eq!(
        sample(
            r#"frontpage_http_requests_total{endpoint="/api/v1/articles/{id_or_slug}",method="OTHER",status="405"}"#
        ),
        2.0
    );
    assert!(!text.contains("BREW") && !text.contains("PROPFIND"));
    assert!(text.contains(&format!(
        r#"frontpage_http_requests_duration_seconds_bucket{{{route},status="200",le="0.005"}}"#
    )));
    assert_eq!(sample("frontpage_write_queue_length "), 0.0);
    assert!(sample("frontpage_db_read_connections_max ") >= 1.0);
    assert_eq!(sample("frontpage_read_queue_length "), 0.0);
    assert!(sample("frontpage_read_queue_capacity ") >= 64.0);
    // Served, though only a real connection can send a malformed request
    // (the count itself is tested with the log layer that makes it).
    assert!(sample("frontpage_malformed_requests_total ") >= 0.0);
    let build = format!(
        r#"frontpage_build_info{{version="{}"}} "#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&build), 1.0, "{text}");
    // The third read of the article was served from memory: the second,
    // asking again, had it kept. The 404 missed too.
    assert_eq!(
        sample(r#"frontpage_cache_lookups_total{cache="responses",result="hit"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"frontpage_cache_lookups_total{cache="responses",result="miss"}"#),
        3.0
    );
}

#[actix_web::test]
async fn browsers_may_call_from_any_origin_without_credentials_by_default() {
    let (app, _dir) = test_app(false).await;
    let preflight = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/articles/1/views")
        .insert_header(("origin", "https://news.example"))
        .insert_header(("access-control-request-method", "POST"))
        .insert_header(("access-control-request-headers", "content-type"))
        .to_request();
    let reply = send(&app, preflight).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-allow-credentials"), None);

    // Headers that browsers' HTTP clients add on their own.
    let preflight = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/articles/1")
        .insert_header(("origin", "https://news.example"))
        .insert_header(("access-control-request-method", "GET"))
        .insert_header((
            "access-control-request-headers",
            "if-none-match,if-modified-since,cache-control,pragma,x-requested-with,x-request-id",
        ))
        .to_request();
    let reply = send(&app, preflight).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    let read = TestRequest::get()
        .uri("/healthz")
        .insert_header(("origin", "https://news.example"))
        .to_request();
    let reply = send(&app, read).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let exposed = reply
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    // `Link` carries the next page's URL, and is not readable cross-origin
    // unless exposed.
    assert!(
        exposed.contains("etag") && exposed.contains("x-request-id") && exposed.contains("link"),
        "{exposed}"
    );
}

#[actix_web::test]
async fn a_configured_origin_list_admits_only_those_origins() {
    let (app, _dir) = test_app_with(
        false,
        &[("FRONTPAGE_CORS_ORIGINS", "https://www.example.com")],
    )
    .await;
    let from = |origin: &str| {
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("origin", origin.to_string()))
            .to_request()
    };
    let reply = send(&app, from("https://www.example.com")).await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://www.example.com")
    );
    let reply = send(&app, from("https://evil.example")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[actix_web::test]
async fn every_answer_forbids_sniffing_and_html_pages_restrict_what_they_load() {
    let (app, _dir) = test_app(false).await;
    for uri in [
        "/healthz",
        "/api/v1/articles",
        "/api/v1/articles/404",
        "/docs/",
        "/openapi.json",
    ] {
        let reply = send(&app, get(uri)).await;
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{uri}"
        );
        assert_eq!(reply.header("server"), None, "{uri}");
    }
    let docs = send(&app, get("/docs/")).await;
    assert!(
        docs.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let policy = docs
        .header("content-security-policy")
        .expect("a policy on /docs/");
    assert!(
        policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    let json = send(&app, get("/healthz")).await;
    assert_eq!(json.header("content-security-policy"), None);
}

#[actix_web::test]
async fn reads_past_the_queue_bound_are_refused_at_once_and_the_rest_complete() {
    use std::sync::{Arc, Mutex, mpsc};

    use frontpage::db::{Db, StoreError};

    let dir = tempfile::TempDir::new().unwrap();
    let db = Db::open(&dir.path().join("queue.db"), 1).unwrap();
    let bound = db.max_pending_reads();
    // One read holds the only connection until released; the others wait
    // for it, filling the queue.
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(Mutex::new(released));
    let holder = actix_web::rt::spawn({
        let db = db.clone();
        async move {
            db.read(move |_| {
                released.lock().unwrap().recv().unwrap();
                Ok(())
            })
            .await
        }
    });
    while db.pending_reads() < 1 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let waiting: Vec<_> = (1..bound)
        .map(|_| {
            let db = db.clone();
            actix_web::rt::spawn(async move { db.read(|_| Ok(())).await })
        })
        .collect();
    while db.pending_reads() < bound {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let refused = db.read(|_| Ok(())).await;
    assert!(
        matches!(refused, Err(StoreError::Busy(_))),
        "a read past the bound was not refused: {refused:?}"
    );
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    for read in waiting {
        read.await.unwrap().unwrap();
    }
    assert_eq!(db.pending_reads(), 0);
}

#[actix_web::test]
async fn a_draining_server_refuses_new_requests_and_stores_nothing_for_them() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = common::config_with(
        &dir,
        true,
        &[
            ("FRONTPAGE_VIEW_TOTALS_LAG_MS", "0"),
            ("FRONTPAGE_PUBLIC_BASE_URL", "https://example.com/news-api"),
        ],
    );
    let state = frontpage::server::prepare(&config).unwrap();
    let drain = state.drain.clone();
    let app =
        actix_web::test::init_service(frontpage::app::app(state, frontpage::openapi::spec())).await;
    let views = |reply: &common::Reply| reply.body["data"]["stats"]["views"].as_i64();
    let before = views(&send(&app, get("/api/v1/articles/1")).await);
    assert!(before.is_some());

    drain.start();
    let view = TestRequest::post()
        .uri("/api/v1/articles/1/views")
        .insert_header(("origin", "https://news.example.com"))
        .set_json(json!({}))
        .to_request();
    let refused = send(&app, view).await;
    refused.assert_problem(503, &[]);
    assert_eq!(refused.header("retry-after"), Some("1"));
    // A page reads it as any other error; no cache keeps it; behind a
    // proxy path its type is under it.
    assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert_eq!(refused.body["type"], "/news-api/problems/unavailable");
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("shutting down")),
        "{}",
        refused.body
    );
    send(&app, get("/readyz")).await.assert_problem(503, &[]);

    // The store, opened again, has the same views: the refused one was
    // never queued.
    drop(app);
    let app = common::app_with(config).await;
    let after = views(&send(&app, get("/api/v1/articles/1")).await);
    assert_eq!(after, before);
}

#[actix_web::test]
async fn refusals_by_compression_and_cors_are_problems_too() {
    let (app, _dir) = test_app(false).await;
    let no_encoding = TestRequest::get()
        .uri("/api/v1/articles")
        .insert_header(("accept-encoding", "identity;q=0"))
        .to_request();
    let reply = send(&app, no_encoding).await;
    assert_eq!(reply.status, 406);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains("gzip"), "{detail}");

    let preflight = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/articles")
        .insert_header(("origin", "https://news.example"))
        .insert_header(("access-control-request-method", "PROPFIND"))
        .to_request();
    let reply = send(&app, preflight).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains("method is not allowed"), "{detail}");
}

/// Tracing and error-reporting scripts add headers of their own to a page's
/// requests; a preflight naming them passes.
#[actix_web::test]
async fn a_preflight_naming_any_header_passes() {
    let (app, _dir) = test_app(false).await;
    let preflight = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/v1/articles")
        .insert_header(("origin", "https://news.example"))
        .insert_header(("access-control-request-method", "GET"))
        .insert_header((
            "access-control-request-headers",
            "traceparent, baggage, sentry-trace",
        ))
        .to_request();
    let reply = send(&app, preflight).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let allowed = reply.header("access-control-allow-headers").unwrap();
    for name in ["traceparent", "baggage", "sentry-trace"] {
        assert!(allowed.contains(name), "{allowed}");
    }
}

#[actix_web::test]
async fn every_list_says_in_meta_whether_there_is_a_next_page() {
    let (app, _dir) = test_app(true).await;
    for uri in [
        "/api/v1/articles",
        "/api/v1/tags",
        "/api/v1/authors",
        "/api/v1/categories",
        "/api/v1/reaction-kinds",
        "/api/v1/ranking",
        "/api/v1/recommendations?reader=someone",
        "/api/v1/articles/1/related",
    ] {
        let reply = send(&app, get(uri)).await;
        assert_eq!(reply.status, 200, "{uri}: {}", reply.body);
        assert!(reply.body["data"].is_array(), "{uri}");
        let cursor = reply.body["meta"].get("next_cursor");
        assert!(
            cursor.is_some_and(|cursor| cursor.is_null() || cursor.is_string()),
            "{uri}: {}",
            reply.body["meta"]
        );
    }
    // The page's ranking box echoes how it was made, as /ranking does.
    let reply = send(&app, get("/api/v1/articles/1?include=ranking")).await;
    let meta = &reply.body["meta"]["ranking"];
    assert_eq!(meta["window"], "24h", "{meta}");
    assert_eq!(meta["metric"], "trending", "{meta}");
    assert!(meta["decay"]["half_life_hours"].is_number(), "{meta}");
}
