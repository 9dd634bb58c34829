//! A first start fills an empty store with demo content, once.

mod common;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use common::{all_pages, get, send, test_app};
use frontpage::server;

#[actix_web::test]
async fn a_first_start_serves_a_demo_newsroom() {
    let (app, dir) = test_app(true).await;
    let tree = send(&app, get("/api/v1/categories")).await.body["data"].clone();
    assert_eq!(tree[0]["slug"], "home");
    let sections = tree[0]["children"].as_array().unwrap();
    assert!(sections.len() >= 6, "{sections:?}");
    assert!(sections.iter().any(|s| s["slug"] == "news"));
    assert!(
        sections
            .iter()
            .any(|s| !s["children"].as_array().unwrap().is_empty()),
        "no second level"
    );

    let articles = all_pages(&app, "/api/v1/articles?limit=100").await;
    assert!(articles.len() >= 60, "{} demo articles", articles.len());
    let categories: HashSet<&str> = articles
        .iter()
        .map(|a| a["category"]["slug"].as_str().unwrap())
        .collect();
    assert!(categories.len() >= 6, "{categories:?}");
    let now = Utc::now();
    for article in &articles {
        let at: DateTime<Utc> = article["published_at"].as_str().unwrap().parse().unwrap();
        assert!(at <= now && at > now - Duration::days(30), "{at}");
        assert!(article["dateline"].is_string());
        assert!(!article["tags"].as_array().unwrap().is_empty());
        assert_eq!(article["breadcrumb"][0]["slug"], "home");
    }
    assert!(articles.iter().filter(|a| a["author"].is_object()).count() >= 10);
    let authors = send(&app, get("/api/v1/authors")).await.body["data"]
        .as_array()
        .unwrap()
        .len();
    assert!(authors >= 3);

    // A second start over the same store adds nothing.
    let again = server::prepare(&common::config(&dir, true)).unwrap();
    drop(again);
    let total = all_pages(&app, "/api/v1/articles?limit=100").await.len();
    assert_eq!(total, articles.len());
}
