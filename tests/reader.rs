//! The example reader page: served at /reader/ when enabled, with a strict
//! Content-Security-Policy, and absent when not. (A browser test in
//! `.ci/browser-test` drives it in headless Chromium.)

mod common;

use common::{get, public, send, test_app_with};
use serde_json::Value;

#[actix_web::test]
async fn the_reader_page_and_its_files_are_served_when_enabled() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_READER", "true")]).await;
    let page = send(&app, get("/reader/")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("content-security-policy").unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("default-src 'none'"),
        "{policy}"
    );
    let html = page.body.as_str().unwrap();
    assert!(html.contains(r#"<script src="reader.js" defer></script>"#));
    for id in [
        "breadcrumb",
        "title",
        "react",
        "related",
        "ranking",
        "recommendations",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "no #{id}");
    }

    let script = send(&app, get("/reader/reader.js")).await;
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        script
            .body
            .as_str()
            .unwrap()
            .contains("include=related,ranking,recommendations")
    );
    let style = send(&app, get("/reader/reader.css")).await;
    assert_eq!(
        style.header("content-type"),
        Some("text/css; charset=utf-8")
    );

    let bare = send(&app, get("/reader")).await;
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("reader/"));

    // They are there, for GET only.
    for (method, path) in [
        ("POST", "/reader/"),
        ("DELETE", "/reader/reader.js"),
        ("PUT", "/reader"),
    ] {
        let refused = send(&app, public(method, path, Value::Null)).await;
        refused.assert_problem(405, &[]);
        assert_eq!(
            refused.header("allow"),
            Some("GET, HEAD, OPTIONS"),
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn without_the_flag_there_is_no_reader_page() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_READER", "false")]).await;
    send(&app, get("/reader/")).await.assert_problem(404, &[]);
}
