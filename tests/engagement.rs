//! Views and reactions: counted exactly, idempotent, durable, rate limited.

mod common;

use actix_web::test::TestRequest;
use common::{article, create, get, public, seed_categories, send, test_app, test_app_with};
use futures_util::future::join_all;
use serde_json::json;

#[actix_web::test]
async fn a_view_is_counted_and_shown_in_stats() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Read me", "news")).await["id"]
        .as_i64()
        .unwrap();
    // No body at all, an empty JSON object, `null` (the spec allows it, and
    // generated clients send it for a body they were not given), and a
    // reader: four views.
    let bare = TestRequest::post()
        .uri(&format!("/api/v1/articles/{id}/views"))
        .to_request();
    let reply = send(&app, bare).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"], json!({"article_id": id, "views": 1}));
    send(
        &app,
        public("POST", &format!("/api/v1/articles/{id}/views"), json!({})),
    )
    .await;
    let null = public("POST", &format!("/api/v1/articles/{id}/views"), json!(null));
    let reply = send(&app, null).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["views"], 3);
    let reply = send(
        &app,
        public(
            "POST",
            "/api/v1/articles/read-me/views",
            json!({"reader": "reader_1"}),
        ),
    )
    .await;
    assert_eq!(reply.body["data"]["views"], 4);
    let stats = &send(&app, get(&format!("/api/v1/articles/{id}")))
        .await
        .body["data"]["stats"];
    assert_eq!(stats["views"], 4);
    let listed = &send(&app, get("/api/v1/articles")).await.body["data"][0]["stats"];
    assert_eq!(listed["views"], 4);
}

#[actix_web::test]
async fn engagement_needs_a_published_article_a_known_kind_and_a_good_reader() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut draft = article("Draft", "news");
    draft["status"] = json!("draft");
    let draft = create(&app, draft).await["id"].as_i64().unwrap();
    let id = create(&app, article("Public", "news")).await["id"]
        .as_i64()
        .unwrap();
    let reader = json!({"reader": "r1"});
    send(
        &app,
        public(
            "POST",
            &format!("/api/v1/articles/{draft}/views"),
            json!({}),
        ),
    )
    .await
    .assert_problem(404, &[]);
    send(
        &app,
        public("POST", "/api/v1/articles/999999/views", json!({})),
    )
    .await
    .assert_problem(404, &[]);
    send(
        &app,
        public(
            "PUT",
            &format!("/api/v1/articles/{draft}/reactions/good"),
            reader.clone(),
        ),
    )
    .await
    .assert_problem(404, &[]);
    send(
        &app,
        public(
            "PUT",
            &format!("/api/v1/articles/{id}/reactions/meh"),
            reader.clone(),
        ),
    )
    .await
    .assert_problem(404, &[]);
    for bad in ["", "has space", "semi;colon", &"x".repeat(65), "ünïcode"] {
        let reply = send(
            &app,
            public(
                "POST",
                &format!("/api/v1/articles/{id}/views"),
                json!({"reader": bad}),
            ),
        )
        .await;
        reply.assert_problem(400, &["reader"]);
        let reply = send(
            &app,
            public(
                "PUT",
                &format!("/api/v1/articles/{id}/reactions/good"),
                json!({"reader": bad}),
            ),
        )
        .await;
        reply.assert_problem(400, &["reader"]);
    }
    send(
        &app,
        public(
            "PUT",
            &format!("/api/v1/articles/{id}/reactions/good"),
            json!({}),
        ),
    )
    .await
    .assert_problem(422, &["reader"]);
    let view_as = |content_type: &str, body: &str| {
        TestRequest::post()
            .uri(&format!("/api/v1/articles/{id}/views"))
            .insert_header(("content-type", content_type.to_string()))
            .set_payload(body.to_string())
            .to_request()
    };
    send(&app, view_as("application/xml", "<reader/>"))
        .await
        .assert_problem(415, &[]);
    // Plain text, as `navigator.sendBeacon` sends a string, must be JSON.
    send(&app, view_as("text/plain;charset=UTF-8", "hello"))
        .await
        .assert_problem(400, &[]);
    let stats = &send(&app, get(&format!("/api/v1/articles/{id}")))
        .await
        .body["data"]["stats"];
    assert_eq!(stats["views"], 0, "a refused view was counted");
    let beacon = view_as("text/plain;charset=UTF-8", r#"{"reader": "beacon-1"}"#);
    let reply = send(&app, beacon).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["views"], 1);
}

#[actix_web::test]
async fn a_reaction_counts_once_per_reader_and_can_be_taken_back() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Loved", "news")).await["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/v1/articles/{id}/reactions/very_good");
    let reply = send(&app, public("PUT", &uri, json!({"reader": "alice"}))).await;
    assert_eq!(
        reply.body["data"],
        json!({"article_id": id, "kind": "very_good", "count": 1, "changed": true})
    );
    let reply = send(&app, public("PUT", &uri, json!({"reader": "alice"}))).await;
    assert_eq!(
        (
            reply.body["data"]["count"].as_i64(),
            reply.body["data"]["changed"].as_bool()
        ),
        (Some(1), Some(false))
    );
    send(&app, public("PUT", &uri, json!({"reader": "bob"}))).await;
    send(
        &app,
        public(
            "PUT",
            &format!("/api/v1/articles/{id}/reactions/bad"),
            json!({"reader": "alice"}),
        ),
    )
    .await;
    let stats = &send(&app, get(&format!("/api/v1/articles/{id}")))
        .await
        .body["data"]["stats"];
    assert_eq!(
        stats["reactions"],
        json!({"very_good": 2, "good": 0, "neutral": 0, "bad": 1})
    );

    let reply = send(&app, public("DELETE", &uri, json!({"reader": "alice"}))).await;
    assert_eq!(
        (
            reply.body["data"]["count"].as_i64(),
            reply.body["data"]["changed"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let reply = send(&app, public("DELETE", &uri, json!({"reader": "alice"}))).await;
    assert_eq!(
        (
            reply.body["data"]["count"].as_i64(),
            reply.body["data"]["changed"].as_bool()
        ),
        (Some(1), Some(false))
    );
    let reply = send(
        &app,
        public("DELETE", &uri, json!({"reader": "never-reacted"})),
    )
    .await;
    assert_eq!(reply.body["data"]["changed"], false);
}

#[actix_web::test]
async fn concurrent_reactions_are_counted_exactly() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Contested", "news")).await["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/v1/articles/{id}/reactions/good");
    let many_readers = (0..200).map(|i| {
        send(
            &app,
            public("PUT", &uri, json!({"reader": format!("reader-{i}")})),
        )
    });
    assert!(
        join_all(many_readers)
            .await
            .iter()
            .all(|reply| reply.status == 200)
    );
    let one_reader = (0..200).map(|_| {
        send(
            &app,
            public(
                "PUT",
                &format!("/api/v1/articles/{id}/reactions/bad"),
                json!({"reader": "same"}),
            ),
        )
    });
    let replies = join_all(one_reader).await;
    assert!(replies.iter().all(|reply| reply.status == 200));
    assert_eq!(
        replies
            .iter()
            .filter(|reply| reply.body["data"]["changed"] == true)
            .count(),
        1
    );
    let views = (0..150).map(|_| {
        send(
            &app,
            public("POST", &format!("/api/v1/articles/{id}/views"), json!({})),
        )
    });
    join_all(views).await;
    let stats = &send(&app, get(&format!("/api/v1/articles/{id}")))
        .await
        .body["data"]["stats"];
    assert_eq!(stats["reactions"]["good"], 200);
    assert_eq!(stats["reactions"]["bad"], 1);
    assert_eq!(stats["views"], 150);
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let (app, _dir) = test_app_with(
        false,
        &[
            ("FRONTPAGE_RATE_LIMIT_PER_MIN", "2"),
            ("FRONTPAGE_TRUSTED_PROXIES", "10.0.0.0/8"),
        ],
    )
    .await;
    seed_categories(&app).await;
    let id = create(&app, article("Popular", "news")).await["id"]
        .as_i64()
        .unwrap();
    let view = |peer: &str, forwarded: &str| {
        actix_web::test::TestRequest::post()
            .uri(&format!("/api/v1/articles/{id}/views"))
            .peer_addr(peer.parse().unwrap())
            .insert_header(("x-forwarded-for", forwarded.to_string()))
            .to_request()
    };
    // Two readers through the proxy: two allowances, not one shared.
    for reader in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(send(&app, view("10.0.0.2:443", reader)).await.status, 200);
        }
        send(&app, view("10.0.0.2:443", reader))
            .await
            .assert_problem(429, &[]);
    }
    // A client that is not a trusted proxy cannot pick its own address.
    for (i, made_up) in ["1.1.1.1", "2.2.2.2", "3.3.3.3"].into_iter().enumerate() {
        let status = send(&app, view("203.0.113.5:5000", made_up)).await.status;
        assert_eq!(status, if i < 2 { 200 } else { 429 });
    }
}

#[actix_web::test]
async fn engagement_writes_over_the_limit_get_429_with_retry_after() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_RATE_LIMIT_PER_MIN", "3")]).await;
    seed_categories(&app).await;
    let id = create(&app, article("Popular", "news")).await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            send(
                &app,
                public("POST", &format!("/api/v1/articles/{id}/views"), json!({}))
            )
            .await
            .status,
            200
        );
    }
    let reply = send(
        &app,
        public(
            "PUT",
            &format!("/api/v1/articles/{id}/reactions/good"),
            json!({"reader": "r"}),
        ),
    )
    .await;
    reply.assert_problem(429, &[]);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Reads are never limited.
    assert_eq!(
        send(&app, get(&format!("/api/v1/articles/{id}")))
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn reaction_kinds_are_listed_in_order() {
    let (app, _dir) = test_app(false).await;
    let reply = send(&app, get("/api/v1/reaction-kinds")).await;
    let keys: Vec<&str> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["very_good", "good", "neutral", "bad"]);
    assert_eq!(reply.body["data"][0]["label"], "veryGood!");
}

#[actix_web::test]
async fn with_a_lag_each_answer_is_exact_and_the_stored_totals_catch_up() {
    let (app, _dir) = test_app_with(false, &[("FRONTPAGE_VIEW_TOTALS_LAG_MS", "300")]).await;
    seed_categories(&app).await;
    let id = create(&app, article("Busy", "news")).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/articles/{id}/views");
    let replies = join_all((0..30).map(|i| {
        let view = public("POST", &path, json!({"reader": format!("lag-{i}")}));
        send(&app, view)
    }))
    .await;
    let mut totals: Vec<i64> = replies
        .iter()
        .map(|reply| reply.body["data"]["views"].as_i64().unwrap())
        .collect();
    totals.sort_unstable();
    assert_eq!(totals, (1..=30).collect::<Vec<_>>());

    // The article's total and the ranking's buckets count all 30 once the
    // writer catches up, which it does on its own when no write follows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stats = send(&app, get(&format!("/api/v1/articles/{id}")))
            .await
            .body["data"]["stats"]["views"]
            .clone();
        let ranked = send(&app, get("/api/v1/ranking?window=1h&metric=views"))
            .await
            .body["data"][0]["views"]
            .clone();
        if stats == 30 && ranked == 30 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "totals never caught up: article {stats}, ranking {ranked}"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // One more view is counted on top, not instead.
    let reply = send(&app, public("POST", &path, json!({}))).await;
    assert_eq!(reply.body["data"]["views"], 31);
}

#[actix_web::test]
async fn views_stored_without_their_totals_are_counted_when_the_store_opens() {
    use chrono::Duration;
    use diesel::prelude::*;
    use frontpage::db::Db;
    use frontpage::db::schema::views;

    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Crashed", "news")).await["id"]
        .as_i64()
        .unwrap() as i32;
    // What a process killed between appending views and counting them
    // leaves behind: 5 views two hours ago and 3 now of the article, and 2
    // of an article that no longer exists.
    let path = common::config(&dir, false).database_path;
    let now = frontpage::db::now();
    let rows: Vec<_> = [(id, 2, 5), (id, 0, 3), (999, 0, 2)]
        .into_iter()
        .flat_map(|(article, hours_ago, n)| {
            let at = now - Duration::hours(hours_ago);
            std::iter::repeat_n((views::article_id.eq(article), views::viewed_at.eq(at)), n)
        })
        .collect();
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    // The server's writer may hold the write lock for a moment.
    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA busy_timeout = 5000")
        .unwrap();
    diesel::insert_into(views::table)
        .values(&rows)
        .execute(&mut conn)
        .unwrap();

    drop(Db::open(&path, 1).unwrap());
    // Counted by another process: shown once the server's writer sees it.
    common::eventually(&app, &format!("/api/v1/articles/{id}"), |body| {
        body["data"]["stats"]["views"] == 8
    })
    .await;
    let day = send(&app, get("/api/v1/ranking?window=24h&metric=views")).await;
    assert_eq!(day.body["data"][0]["views"], 8, "{}", day.body);
    let hour = send(&app, get("/api/v1/ranking?window=1h&metric=views")).await;
    assert_eq!(hour.body["data"][0]["views"], 3, "{}", hour.body);
    // The running server's writer notices the new mark: its next view
    // counts from 8, not from what it saw before.
    let reply = send(
        &app,
        public("POST", &format!("/api/v1/articles/{id}/views"), json!({})),
    )
    .await;
    assert_eq!(reply.body["data"]["views"], 9);
}

#[actix_web::test]
async fn views_a_failed_batch_left_uncounted_are_counted_without_waiting_for_the_lag() {
    use std::time::{Duration, Instant};

    use frontpage::db::Db;
    use frontpage::db::articles::ArticleKey;
    use frontpage::db::engagement::{self, View};

    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Failing", "news")).await["id"]
        .as_i64()
        .unwrap() as i32;
    // A store whose writer counts views only every 60 s...
    let path = common::config(&dir, false).database_path;
    let db = Db::open_with_view_lag(&path, 1, Duration::from_secs(60)).unwrap();
    db.write_tallied_blocking(move |_, tally| {
        for _ in 0..5 {
            let view = View {
                article: ArticleKey::Id(id),
                reader: None,
                at: frontpage::db::now(),
                visible_at: None,
            };
            engagement::record_view(tally, view);
        }
        Ok(())
    })
    .unwrap();
    let counted = |db: &Db| {
        db.read_blocking(move |conn| engagement::counts_of(conn, id))
            .unwrap()
            .get(engagement::VIEW_COUNTER)
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(counted(&db), 0, "counted before the lag");
    // ...until a batch fails: what it carried is lost with it, so the writer
    // reads the uncounted views again and counts them at once.
    let failed = db.write_blocking(|_| -> frontpage::db::StoreResult<()> {
        panic!("a write that panics rolls back its batch")
    });
    assert!(failed.is_err());
    let deadline = Instant::now() + Duration::from_secs(30);
    while counted(&db) != 5 {
        assert!(Instant::now() < deadline, "the 5 views were never counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn views_after_a_deleted_articles_views_are_purged_are_still_counted() {
    use diesel::prelude::*;
    use frontpage::db::schema::{view_purges, views};

    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let kept = create(&app, article("Kept", "news")).await["id"]
        .as_i64()
        .unwrap();
    let gone = create(&app, article("Gone", "news")).await["id"]
        .as_i64()
        .unwrap();
    // The newest views are the deleted article's, already counted.
    for _ in 0..5 {
        let reply = send(
            &app,
            public("POST", &format!("/api/v1/articles/{gone}/views"), json!({})),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    common::eventually(&app, &format!("/api/v1/articles/{gone}"), |body| {
        body["data"]["stats"]["views"] == 5
    })
    .await;
    let deleted = send(
        &app,
        common::admin("DELETE", &format!("/api/v1/articles/{gone}"), json!(null)),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // Once they are purged, no view is left in the store.
    let path = common::config(&dir, false).database_path;
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left: i64 = views::table.count().get_result(&mut conn).unwrap();
        let purging: i64 = view_purges::table.count().get_result(&mut conn).unwrap();
        if left == 0 && purging == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} views left");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The next views take new ids, above those counted and purged: each
    // reaches the totals and the ranking.
    for _ in 0..3 {
        send(
            &app,
            public("POST", &format!("/api/v1/articles/{kept}/views"), json!({})),
        )
        .await;
    }
    common::eventually(&app, &format!("/api/v1/articles/{kept}"), |body| {
        body["data"]["stats"]["views"] == 3
    })
    .await;
    let ranked = send(&app, get("/api/v1/ranking?window=1h&metric=views")).await;
    assert_eq!(
        ranked.body["data"][0]["article"]["id"], kept,
        "{}",
        ranked.body
    );
    assert_eq!(ranked.body["data"][0]["views"], 3, "{}", ranked.body);
}

#[actix_web::test]
async fn a_reader_sees_the_reactions_they_gave() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Loved", "news")).await["id"]
        .as_i64()
        .unwrap();
    let given = |reader: &str| get(&format!("/api/v1/articles/{id}/reactions?reader={reader}"));
    let reply = send(&app, given("alice")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"], json!({"article_id": id, "kinds": []}));
    assert_eq!(reply.header("cache-control"), Some("private, no-cache"));

    for kind in ["good", "very_good"] {
        let uri = format!("/api/v1/articles/{id}/reactions/{kind}");
        let reply = send(&app, public("PUT", &uri, json!({"reader": "alice"}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // In display order; only Alice's.
    let reply = send(&app, given("alice")).await;
    assert_eq!(reply.body["data"]["kinds"], json!(["very_good", "good"]));
    assert_eq!(
        send(&app, given("bob")).await.body["data"]["kinds"],
        json!([])
    );
    let uri = format!("/api/v1/articles/{id}/reactions/good");
    send(&app, public("DELETE", &uri, json!({"reader": "alice"}))).await;
    let reply = send(&app, given("alice")).await;
    assert_eq!(reply.body["data"]["kinds"], json!(["very_good"]));

    send(&app, get(&format!("/api/v1/articles/{id}/reactions")))
        .await
        .assert_problem(400, &["reader"]);
    send(&app, given("not%20valid"))
        .await
        .assert_problem(400, &["reader"]);
    send(&app, get("/api/v1/articles/999999/reactions?reader=alice"))
        .await
        .assert_problem(404, &[]);
}

/// A reader sent in the query, where no engagement write reads it, is
/// named rather than dropped (the write would count as anonymous), and
/// nothing is counted.
#[actix_web::test]
async fn a_reader_in_the_query_of_an_engagement_write_is_named_not_dropped() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    create(&app, article("Read me", "news")).await;
    let view = TestRequest::post()
        .uri("/api/v1/articles/read-me/views?reader=r-1")
        .to_request();
    let reply = send(&app, view).await;
    reply.assert_problem(400, &["reader"]);
    assert!(
        reply.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("JSON body"),
        "{}",
        reply.body
    );
    let take_back = TestRequest::delete()
        .uri("/api/v1/articles/read-me/reactions/very_good?reader=r-1")
        .to_request();
    send(&app, take_back).await.assert_problem(400, &["reader"]);
    let shown = send(&app, get("/api/v1/articles/read-me")).await;
    assert_eq!(shown.body["data"]["stats"]["views"], 0);

    // Any other parameter is ignored, as on every route: a beacon sent to
    // an address with a campaign tag or a cache-buster still counts.
    let view = TestRequest::post()
        .uri("/api/v1/articles/read-me/views?utm_source=newsletter&_=1712345678")
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"reader": "r-1"}"#)
        .to_request();
    let reply = send(&app, view).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["views"], 1);
}

#[actix_web::test]
async fn a_reaction_sent_with_no_body_is_told_to_send_one() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("React to me", "news")).await["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/v1/articles/{id}/reactions/good");
    // Nothing at all, as `curl -X DELETE` sends; and a JSON type with no
    // JSON after it.
    for request in [
        TestRequest::delete().uri(&uri).to_request(),
        TestRequest::put()
            .uri(&uri)
            .insert_header(("content-type", "application/json"))
            .to_request(),
    ] {
        let reply = send(&app, request).await;
        reply.assert_problem(400, &[]);
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("body is empty"),
            "{}",
            reply.body
        );
    }
}
