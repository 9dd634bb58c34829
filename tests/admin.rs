//! Admin writes: keys, create, replace, patch, delete, bulk import.

mod common;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use common::{ADMIN, admin, article, create, get, seed_categories, send, test_app, titles};
use frontpage::auth;
use frontpage::db::{Db, keys};
use serde_json::{Value, json};

fn with_key(key: &str) -> actix_http::Request {
    TestRequest::post()
        .uri("/api/v1/tags")
        .insert_header(("authorization", format!("Bearer {key}")))
        .set_json(json!({"name": format!("Tag for {}", &key[..6])}))
        .to_request()
}

#[actix_web::test]
async fn writes_need_a_live_key() {
    let (app, dir) = test_app(false).await;
    let anonymous = TestRequest::post()
        .uri("/api/v1/tags")
        .set_json(json!({"name": "x"}))
        .to_request();
    let reply = send(&app, anonymous).await;
    reply.assert_problem(401, &[]);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    send(&app, with_key("not-a-real-key"))
        .await
        .assert_problem(401, &[]);
    assert_eq!(send(&app, with_key(ADMIN)).await.status, 201);

    // A key made as `frontpage keys create` makes it: stored as a hash, usable, revocable.
    let db = Db::open(&common::config(&dir, false).database_path, 1).unwrap();
    let key = auth::generate_key();
    let (prefix, hash) = (auth::shown_prefix(&key), auth::hash_key(&key));
    let id = db
        .write_blocking(move |conn| keys::insert(conn, "importer", &prefix, &hash, "write"))
        .unwrap();
    assert_eq!(send(&app, with_key(&key)).await.status, 201);
    let listed = db.write_blocking(keys::list).unwrap();
    assert_eq!(listed[0].prefix.len(), 10);
    assert!(key.starts_with(&listed[0].prefix));
    db.write_blocking(move |conn| keys::revoke(conn, id))
        .unwrap();
    send(&app, with_key(&key)).await.assert_problem(401, &[]);
}

/// A stored key with these scopes, as `frontpage keys create --scope` makes.
fn key_with(dir: &tempfile::TempDir, scopes: &str) -> String {
    let db = Db::open(&common::config(dir, false).database_path, 1).unwrap();
    let key = auth::generate_key();
    let (prefix, hash, scopes) = (
        auth::shown_prefix(&key),
        auth::hash_key(&key),
        scopes.to_string(),
    );
    db.write_blocking(move |conn| keys::insert(conn, "scoped", &prefix, &hash, &scopes))
        .unwrap();
    key
}

#[actix_web::test]
async fn a_key_does_only_what_its_scopes_allow() {
    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("Embargoed until noon", "news");
    input["status"] = json!("draft");
    let draft = send(&app, admin("POST", "/api/v1/articles", input)).await;
    assert_eq!(draft.status, 201, "{}", draft.body);
    let uri = format!(
        "/api/v1/articles/{}",
        draft.body["data"]["slug"].as_str().unwrap()
    );
    let read = |key: &str| {
        TestRequest::get()
            .uri(&uri)
            .insert_header(("authorization", format!("Bearer {key}")))
            .to_request()
    };

    // Anonymous readers do not see drafts at all.
    send(&app, common::get(&uri)).await.assert_problem(404, &[]);

    let reader = key_with(&dir, "read-drafts");
    let reply = send(&app, read(&reader)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["status"], "draft");
    assert_eq!(reply.header("cache-control"), Some("private, no-cache"));
    send(&app, with_key(&reader)).await.assert_problem(403, &[]);

    let writer = key_with(&dir, "write");
    assert_eq!(send(&app, with_key(&writer)).await.status, 201);
    send(&app, read(&writer)).await.assert_problem(403, &[]);
    send(&app, read("fp_not-a-key"))
        .await
        .assert_problem(401, &[]);
}

#[actix_web::test]
async fn a_made_up_key_is_refused_everywhere_so_it_cannot_find_drafts() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let published = create(&app, article("Out in the open", "news")).await;
    let mut input = article("Merger announced at noon", "news");
    input["status"] = json!("draft");
    let draft = create(&app, input).await;
    let with = |uri: &str, authorization: &str| {
        TestRequest::get()
            .uri(uri)
            .insert_header(("authorization", authorization.to_string()))
            .to_request()
    };
    let draft_uri = format!("/api/v1/articles/{}", draft["slug"].as_str().unwrap());
    let published_uri = format!("/api/v1/articles/{}", published["id"]);
    // The draft, an article that does not exist, a public one and a list
    // answer alike: the key is wrong.
    // However the path is spelt: the router reads `%61` as `a`.
    let escaped_draft_uri = draft_uri.replacen("/api/", "/%61pi/", 1);
    let escaped_missing_uri = "/%61pi/v1/articles/merger-announced-at-noom";
    for uri in [
        draft_uri.as_str(),
        "/api/v1/articles/merger-announced-at-noom",
        published_uri.as_str(),
        "/api/v1/articles",
        "/api/v1/tags",
        escaped_draft_uri.as_str(),
        escaped_missing_uri,
    ] {
        let reply = send(&app, with(uri, "Bearer fp_made-up")).await;
        reply.assert_problem(401, &[]);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{uri}");
    }
    // Another scheme (from a proxy in front) is no key: the draft is as
    // missing as an article that does not exist.
    let basic = "Basic dXNlcjpwYXNz";
    send(&app, with(&draft_uri, basic))
        .await
        .assert_problem(404, &[]);
    assert_eq!(send(&app, with(&published_uri, basic)).await.status, 200);
}

#[actix_web::test]
async fn create_answers_201_with_location_and_derives_a_free_slug() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let reply = send(
        &app,
        admin(
            "POST",
            "/api/v1/articles",
            article("Storm closes the bridge", "news"),
        ),
    )
    .await;
    assert_eq!(reply.status, 201);
    let id = reply.body["data"]["id"].as_i64().unwrap();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/articles/{id}").as_str())
    );
    assert_eq!(reply.body["data"]["slug"], "storm-closes-the-bridge");
    assert_eq!(
        send(&app, get(&format!("/api/v1/articles/{id}")))
            .await
            .status,
        200
    );
    // The same title again gets a suffix; a given slug that is taken is a conflict.
    let again = create(&app, article("Storm closes the bridge", "news")).await;
    assert_eq!(again["slug"], "storm-closes-the-bridge-2");
    let mut taken = article("Another story", "news");
    taken["slug"] = json!("storm-closes-the-bridge");
    send(&app, admin("POST", "/api/v1/articles", taken))
        .await
        .assert_problem(409, &["slug"]);
}

#[actix_web::test]
async fn html_is_sanitised_and_markdown_is_rendered() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("Sanitised", "news");
    input["body_html"] = json!(
        r#"<p onclick="steal()">Fine <b>text</b><script>alert(1)</script><a href="javascript:alert(1)">x</a><img src="x" onerror="alert(1)"><svg onload="alert(1)"></svg></p>"#
    );
    let html = create(&app, input).await["body_html"]
        .as_str()
        .unwrap()
        .to_string();
    for banned in [
        "script",
        "onclick",
        "onerror",
        "onload",
        "javascript:",
        "svg",
    ] {
        assert!(!html.contains(banned), "{banned} survived: {html}");
    }
    assert!(html.contains("Fine <b>text</b>"), "{html}");

    let mut input = article("Rendered", "news");
    input.as_object_mut().unwrap().remove("body_html");
    input["body_markdown"] =
        json!("## Talks\n\nThe union said **no**.\n\n<script>alert(1)</script>");
    let created = create(&app, input).await;
    let html = created["body_html"].as_str().unwrap();
    assert!(
        html.contains("<h2>Talks</h2>") && html.contains("<strong>no</strong>"),
        "{html}"
    );
    assert!(!html.contains("script"), "{html}");
    // The summary is the running text: the subheading is not in it.
    assert_eq!(created["summary"], "The union said no.");
}

#[actix_web::test]
async fn replace_patch_and_delete_change_what_readers_see() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("Original title", "news");
    input["tags"] = json!(["One", "Two"]);
    input["dateline"] = json!("PARIS");
    let id = create(&app, input).await["id"].as_i64().unwrap();
    let uri = format!("/api/v1/articles/{id}");

    let reply = send(&app, admin("PUT", &uri, article("Replaced title", "sport"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    assert_eq!(data["title"], "Replaced title");
    assert_eq!(
        data["slug"], "original-title",
        "a replace without slug keeps the URL"
    );
    assert_eq!(data["category"]["slug"], "sport");
    assert_eq!(data["tags"], json!([]));
    assert_eq!(data["dateline"], json!(null));

    let reply = send(
        &app,
        admin(
            "PATCH",
            &uri,
            json!({"title": "Patched title", "dateline": "BERLIN", "tags": ["Three"]}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    assert_eq!(data["title"], "Patched title");
    assert_eq!(data["dateline"], "BERLIN");
    assert_eq!(data["category"]["slug"], "sport", "absent fields stay");
    assert_eq!(data["tags"][0]["slug"], "three");
    let reply = send(&app, admin("PATCH", &uri, json!({"dateline": null}))).await;
    assert_eq!(reply.body["data"]["dateline"], json!(null), "null clears");
    assert_eq!(reply.body["data"]["title"], "Patched title");

    send(&app, admin("PATCH", &uri, json!({"category": "nowhere"})))
        .await
        .assert_problem(422, &["category"]);
    send(
        &app,
        admin("PATCH", "/api/v1/articles/999999", json!({"title": "x"})),
    )
    .await
    .assert_problem(404, &[]);
    send(
        &app,
        admin("PUT", "/api/v1/articles/no-such-slug", article("x", "news")),
    )
    .await
    .assert_problem(404, &[]);

    let reply = send(
        &app,
        TestRequest::delete()
            .uri(&uri)
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .to_request(),
    )
    .await;
    assert_eq!(reply.status, 204);
    send(&app, get(&uri)).await.assert_problem(404, &[]);
    let reply = send(
        &app,
        TestRequest::delete()
            .uri(&uri)
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .to_request(),
    )
    .await;
    reply.assert_problem(404, &[]);
}

#[actix_web::test]
async fn an_invalid_write_changes_nothing() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("Valid but for its author", "news");
    input["tags"] = json!(["Brand new tag"]);
    input["author"] = json!("nobody");
    send(&app, admin("POST", "/api/v1/articles", input))
        .await
        .assert_problem(422, &["author"]);
    let articles = send(&app, get("/api/v1/articles")).await;
    assert_eq!(articles.body["data"], json!([]));
    let tags = send(&app, get("/api/v1/tags")).await;
    assert_eq!(
        tags.body["data"],
        json!([]),
        "the tag of a refused article was kept"
    );
}

fn ndjson(body: &str) -> actix_http::Request {
    ndjson_bytes(body.as_bytes())
}

fn ndjson_bytes(body: &[u8]) -> actix_http::Request {
    TestRequest::post()
        .uri("/api/v1/articles/bulk")
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .insert_header(("content-type", "application/x-ndjson"))
        .set_payload(body.to_vec())
        .to_request()
}

#[actix_web::test]
async fn bulk_import_stores_good_lines_reports_bad_ones_and_is_idempotent() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let good = |title: &str| {
        let mut input = article(title, "news");
        input["tags"] = json!(["Imported"]);
        input.to_string()
    };
    let mut half_bad = article("Bad category with a new tag", "nowhere");
    half_bad["tags"] = json!(["Orphan tag"]);
    let body = [
        good("First imported story"),
        "{not json".to_string(),
        String::new(),
        good("Second imported story"),
        half_bad.to_string(),
        json!({"title": "No category"}).to_string(),
        json!({"kind": "tag", "slug": "from-an-export", "name": "From an export"}).to_string(),
    ]
    .join("\n");
    let reply = send(&app, ndjson(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = &reply.body["data"];
    assert_eq!(
        (
            report["created"].as_i64(),
            report["updated"].as_i64(),
            report["failed"].as_i64()
        ),
        (Some(2), Some(0), Some(4))
    );
    // An export's tag line is for the CLI, and says so, alone.
    let export_line = &report["errors"][3]["errors"];
    assert_eq!(export_line.as_array().unwrap().len(), 1, "{export_line}");
    assert!(
        export_line[0]["detail"]
            .as_str()
            .unwrap()
            .contains("frontpage import"),
        "{export_line}"
    );
    let lines: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [2, 5, 6, 7]);
    assert_eq!(report["errors"][1]["errors"][0]["name"], "category");
    // Every problem of a line is named: no category, and no body either.
    let names: Vec<&str> = report["errors"][2]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"category") && names.contains(&"body_html"),
        "{names:?}"
    );
    let tags = send(&app, get("/api/v1/tags")).await;
    let slugs: Vec<&str> = tags.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["imported"], "a failed line left a tag behind");
    // Refused for its own fields, a line also names the category and the
    // author that do not exist, as a single write's answer does.
    let line = json!({"slug": "bx1", "title": "x", "category": "nope", "author": "nobody",
        "status": "bogus"});
    let reply = send(&app, ndjson(&line.to_string())).await;
    let mut names: Vec<&str> = reply.body["data"]["errors"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["author", "body_html", "category", "status"],
        "{}",
        reply.body
    );

    // The same file again changes nothing; an edited line updates in place.
    let reply = send(&app, ndjson(&body)).await;
    assert_eq!(
        (
            reply.body["data"]["created"].as_i64(),
            reply.body["data"]["unchanged"].as_i64()
        ),
        (Some(0), Some(2))
    );
    let mut edited = article("First imported story", "world");
    edited["tags"] = json!(["Imported"]);
    let reply = send(&app, ndjson(&edited.to_string())).await;
    assert_eq!(reply.body["data"]["updated"], 1);
    let listed = send(&app, get("/api/v1/articles")).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    let first = send(&app, get("/api/v1/articles/first-imported-story")).await;
    assert_eq!(first.body["data"]["category"]["slug"], "world");
}

/// A line that is not UTF-8 is refused on its own: the lines around it
/// are stored.
#[actix_web::test]
async fn bulk_import_refuses_a_line_that_is_not_utf8_and_stores_the_others() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut body = article("Before the bad line", "news")
        .to_string()
        .into_bytes();
    body.extend_from_slice(b"\n{\"title\": \"Bad \xff byte\"}\n");
    body.extend(
        article("After the bad line", "news")
            .to_string()
            .into_bytes(),
    );
    let reply = send(&app, ndjson_bytes(&body)).await;
    let report = &reply.body["data"];
    assert_eq!(
        (report["created"].as_i64(), report["failed"].as_i64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], 2);
    assert_eq!(report["errors"][0]["errors"][0]["detail"], "is not UTF-8");
    let after = send(&app, get("/api/v1/articles/after-the-bad-line")).await;
    assert_eq!(after.status, 200);
}

#[actix_web::test]
async fn bulk_import_refuses_empty_bodies_and_other_media_types() {
    let (app, _dir) = test_app(false).await;
    send(&app, ndjson("\n\n")).await.assert_problem(400, &[]);
    let json_body = TestRequest::post()
        .uri("/api/v1/articles/bulk")
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .set_json(json!({"title": "x"}))
        .to_request();
    send(&app, json_body).await.assert_problem(415, &[]);
}

#[actix_web::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (app, _dir) = test_app(false).await;
    let schemes = [
        format!("bearer {ADMIN}"),
        format!("BEARER  {ADMIN}"),
        format!("Bearer\t{ADMIN}"),
    ];
    for (i, value) in schemes.iter().enumerate() {
        let req = TestRequest::post()
            .uri("/api/v1/tags")
            .insert_header(("authorization", value.clone()))
            .set_json(json!({"name": format!("Tag {i}")}))
            .to_request();
        assert_eq!(send(&app, req).await.status, 201, "{value:?}");
    }
    let basic = TestRequest::post()
        .uri("/api/v1/tags")
        .insert_header(("authorization", format!("Basic {ADMIN}")))
        .set_json(json!({"name": "Basic"}))
        .to_request();
    send(&app, basic).await.assert_problem(401, &[]);
}

#[actix_web::test]
async fn patch_refuses_null_for_required_fields_and_null_unschedules() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut input = article("Scheduled draft", "news");
    input["status"] = json!("draft");
    input["published_at"] = json!("2030-01-01T00:00:00Z");
    let id = create(&app, input).await["id"].as_i64().unwrap();
    let uri = format!("/api/v1/articles/{id}");
    for field in ["title", "category", "status", "tags", "body_html", "slug"] {
        let reply = send(&app, admin("PATCH", &uri, json!({ field: null }))).await;
        reply.assert_problem(422, &[field]);
    }
    for status in [json!(null), json!(5), json!(["published"])] {
        let reply = send(&app, admin("PATCH", &uri, json!({ "status": status }))).await;
        reply.assert_problem(422, &["status"]);
        assert_eq!(
            reply.body["errors"][0]["detail"],
            "must be `draft` or `published`"
        );
    }
    let reply = send(&app, admin("PATCH", &uri, json!({"published_at": null}))).await;
    assert_eq!(reply.body["data"]["published_at"], json!(null));
    let reply = send(
        &app,
        admin(
            "PATCH",
            &uri,
            json!({"summary": null, "body_html": "<p>A fresh body.</p>"}),
        ),
    )
    .await;
    assert_eq!(reply.body["data"]["summary"], "A fresh body.");
}

#[actix_web::test]
async fn an_empty_patch_changes_nothing_not_even_updated_at() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let created = create(&app, article("Steady story", "news")).await;
    let uri = format!("/api/v1/articles/{}", created["id"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let reply = send(&app, admin("PATCH", &uri, json!({}))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"]["updated_at"], created["updated_at"]);
    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"title": "Changed story"})),
    )
    .await;
    assert_ne!(reply.body["data"]["updated_at"], created["updated_at"]);
}

#[actix_web::test]
async fn bulk_import_refuses_a_second_line_with_the_same_slug_and_reads_crlf_and_bom() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let monday = article("Morning briefing", "news").to_string();
    let mut tuesday = article("Morning briefing", "news");
    tuesday["body_html"] = json!("<p>Tuesday</p>");
    let body = format!("\u{feff}{monday}\r\n{}\r\n", tuesday);
    for round in 0..2 {
        let reply = send(&app, ndjson(&body)).await;
        let report = &reply.body["data"];
        assert_eq!(report["failed"], 1, "{report}");
        assert_eq!(report["errors"][0]["line"], 2);
        assert_eq!(report["errors"][0]["errors"][0]["name"], "slug");
        let (created, unchanged) = if round == 0 { (1, 0) } else { (0, 1) };
        assert_eq!(
            (report["created"].as_i64(), report["unchanged"].as_i64()),
            (Some(created), Some(unchanged))
        );
    }
}

/// Imports `lines` as one bulk request, which must take every line;
/// returns how many were created, updated and unchanged.
async fn imported<S, B>(app: &S, lines: &[&Value]) -> [i64; 3]
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let body = lines
        .iter()
        .map(|line| line.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let reply = send(app, ndjson(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = &reply.body["data"];
    assert_eq!(report["failed"], 0, "{report}");
    [&report["created"], &report["updated"], &report["unchanged"]]
        .map(|count| count.as_i64().unwrap())
}

/// A column under one title each day, and one wire story from two
/// outlets, are stories of their own: a line without a slug updates the
/// article of its headline only when that one was published the same day,
/// by the same source if both say.
#[actix_web::test]
async fn bulk_import_keeps_a_daily_column_and_two_outlets_stories_apart() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let line = |title: &str, day: u32, source: &str, body: &str| {
        let mut line = article(title, "news");
        line["published_at"] = json!(format!("2017-03-{day:02}T09:00:00Z"));
        line["source"] = json!(source);
        line["body_html"] = json!(format!("<p>{body}</p>"));
        line
    };
    let monday = line("Quotable", 6, "China Daily", "Monday's quotes.");
    let tuesday = line("Quotable", 7, "China Daily", "Tuesday's quotes.");
    assert_eq!(imported(&app, &[&monday]).await, [1, 0, 0]);
    assert_eq!(
        imported(&app, &[&tuesday]).await,
        [1, 0, 0],
        "Tuesday replaced Monday"
    );
    assert_eq!(imported(&app, &[&monday, &tuesday]).await, [0, 0, 2]);
    let mut corrected = tuesday.clone();
    corrected["body_html"] = json!("<p>Tuesday's quotes, corrected.</p>");
    assert_eq!(imported(&app, &[&corrected]).await, [0, 1, 0]);
    // Two days in one file.
    let wednesday = line("Quotable", 8, "China Daily", "Wednesday's quotes.");
    let thursday = line("Quotable", 9, "China Daily", "Thursday's quotes.");
    assert_eq!(imported(&app, &[&wednesday, &thursday]).await, [2, 0, 0]);
    // In one file, a line that names no day, or a slug given for a
    // headline's day, cannot be told from the first: refused, not
    // written over it.
    let mut undated = line("Quotable", 10, "China Daily", "Undated quotes.");
    undated["published_at"] = Value::Null;
    undated["status"] = json!("draft");
    let friday = line("Quotable", 10, "China Daily", "Friday's quotes.");
    let mut named = friday.clone();
    named["slug"] = json!("quotable");
    for second in [&undated, &named] {
        let body = format!("{friday}\n{second}");
        let reply = send(&app, ndjson(&body)).await;
        let report = &reply.body["data"];
        assert_eq!(report["failed"], 1, "{report}");
        assert_eq!(report["errors"][0]["line"], 2, "{report}");
        let detail = report["errors"][0]["errors"][0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("`quotable` is also the slug of line 1"),
            "{detail}"
        );
    }
    let wire = "Malaysia to cancel visa-free entry for North Koreans";
    let doha = line(wire, 2, "Al Jazeera", "From Doha.");
    let dublin = line(wire, 2, "RT\u{c9}", "From Dublin.");
    assert_eq!(imported(&app, &[&doha]).await, [1, 0, 0]);
    assert_eq!(
        imported(&app, &[&dublin]).await,
        [1, 0, 0],
        "one outlet replaced the other"
    );
    assert_eq!(imported(&app, &[&doha, &dublin]).await, [0, 0, 2]);

    let slugs: Vec<String> = send(&app, get("/api/v1/articles?limit=20")).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|story| story["slug"].as_str().unwrap().to_string())
        .collect();
    for slug in ["quotable", "quotable-2", "quotable-3", "quotable-4"] {
        assert!(slugs.contains(&slug.to_string()), "{slug}: {slugs:?}");
    }
    let monday = send(&app, get("/api/v1/articles/quotable")).await;
    assert_eq!(monday.body["data"]["body_html"], "<p>Monday's quotes.</p>");
    let tuesday = send(&app, get("/api/v1/articles/quotable-2")).await;
    assert_eq!(
        tuesday.body["data"]["body_html"],
        "<p>Tuesday's quotes, corrected.</p>"
    );
}

/// Two headlines the same for longer than a slug made from a title keeps
/// (80 characters): each import of one finds its own article, not the
/// other's.
#[actix_web::test]
async fn bulk_import_tells_apart_long_headlines_that_start_the_same() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let opening = "Live updates from the count as election night results come in across the";
    let north = article(&format!("{opening} northern constituencies"), "news");
    let south = article(&format!("{opening} southern constituencies"), "news");
    // In one import, and in two.
    assert_eq!(
        imported(&app, &[&north, &south]).await,
        [2, 0, 0],
        "south replaced north"
    );
    assert_eq!(imported(&app, &[&south, &north]).await, [0, 0, 2]);
    assert_eq!(imported(&app, &[&north]).await, [0, 0, 1]);
    assert_eq!(imported(&app, &[&south]).await, [0, 0, 1]);
    // An edit reaches its own article.
    let mut edited = south.clone();
    edited["body_html"] = json!("<p>South, counted.</p>");
    assert_eq!(imported(&app, &[&edited]).await, [0, 1, 0]);
    // A title changed only in case and punctuation is the same story.
    let mut recased = north.clone();
    recased["title"] = json!(format!("{opening} Northern constituencies!"));
    assert_eq!(imported(&app, &[&recased]).await, [0, 1, 0]);

    let listed = send(&app, get("/api/v1/articles")).await;
    let stories = listed.body["data"].as_array().unwrap();
    assert_eq!(stories.len(), 2, "{stories:?}");
    let slug_of = |ending: &str| {
        let story = stories
            .iter()
            .find(|a| a["title"].as_str().unwrap().ends_with(ending))
            .unwrap_or_else(|| panic!("no story ends {ending:?}: {stories:?}"));
        story["slug"].as_str().unwrap().to_string()
    };
    let (north_slug, south_slug) = (
        slug_of("Northern constituencies!"),
        slug_of("southern constituencies"),
    );
    assert_eq!(format!("{north_slug}-2"), south_slug);
    let south_page = send(&app, get(&format!("/api/v1/articles/{south_slug}"))).await;
    assert_eq!(
        south_page.body["data"]["body_html"],
        "<p>South, counted.</p>"
    );
}

/// A line without a slug is the article whose title it has, whichever was
/// imported first; and a line that comes to an article an earlier line of
/// the same import wrote (its slug given as the `-2` the other was given)
/// is refused, so that importing the file again changes nothing.
#[actix_web::test]
async fn bulk_import_keeps_each_story_whatever_the_order_and_given_slugs() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let lines = |lines: &[Value]| {
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let report = |reply: &common::Reply| {
        let data = &reply.body["data"];
        [
            &data["created"],
            &data["updated"],
            &data["unchanged"],
            &data["failed"],
        ]
        .map(|count| count.as_i64().unwrap())
    };
    // A title whose slug is cut, then the title that is the cut.
    let cut = "Lighthouse keepers trust confirms dredging programme will start early next";
    let long = article(&format!("{cut} month tonight"), "news");
    let short = article(cut, "news");
    for line in [&long, &short] {
        let reply = send(&app, ndjson(&lines(std::slice::from_ref(line)))).await;
        assert_eq!(report(&reply), [1, 0, 0, 0], "{}", reply.body);
    }

    // An article whose slug only starts with the line's (a feed's dated
    // one, say) is another story.
    let mut dated = article("Storm", "news");
    dated["slug"] = json!("storm-2026-01-05");
    create(&app, dated).await;
    let reply = send(&app, ndjson(&lines(&[article("Storm", "news")]))).await;
    assert_eq!(report(&reply), [1, 0, 0, 0], "{}", reply.body);
    let kept = send(&app, get("/api/v1/articles/storm-2026-01-05")).await;
    assert_eq!(kept.body["data"]["title"], "Storm");

    let opening = "Coastal rail operator unveils timetable overhaul promising faster services";
    let june = article(&format!("{opening} from June"), "news");
    // The slug June's title makes, given first to another story.
    let taken = content_slug(june["title"].as_str().unwrap());
    let mut given = article("Explicit slug story", "news");
    given["slug"] = json!(taken);
    let mut given_two = article("Explicit two", "news");
    given_two["slug"] = json!(format!("{taken}-2"));
    let july = article(&format!("{opening} from July"), "news");
    assert_eq!(content_slug(july["title"].as_str().unwrap()), taken);
    let body = lines(&[given, june, given_two, july]);
    // June and July make the slug line 1 gave its story: they come to the
    // article line 1 wrote, and are refused rather than replace it.
    let first = send(&app, ndjson(&body)).await;
    assert_eq!(report(&first), [2, 0, 0, 2], "{}", first.body);
    for (i, line) in [2, 4].into_iter().enumerate() {
        let failure = &first.body["data"]["errors"][i];
        assert_eq!(failure["line"], line, "{}", first.body);
        assert_eq!(failure["errors"][0]["name"], "slug");
    }
    let again = send(&app, ndjson(&body)).await;
    assert_eq!(report(&again), [0, 0, 2, 2], "{}", again.body);
    for (slug, title) in [
        (taken.clone(), "Explicit slug story"),
        (format!("{taken}-2"), "Explicit two"),
    ] {
        let page = send(&app, get(&format!("/api/v1/articles/{slug}"))).await;
        assert_eq!(page.body["data"]["title"], title, "{}", page.body);
    }
}

/// The slug the server makes of `title` (as `content::slugify` does).
fn content_slug(title: &str) -> String {
    frontpage::content::slugify(title)
}

#[actix_web::test]
async fn a_new_article_never_takes_the_id_of_a_deleted_one() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let first = create(&app, article("First", "news")).await["id"]
        .as_i64()
        .unwrap();
    let newest = create(&app, article("Newest", "news")).await["id"]
        .as_i64()
        .unwrap();
    assert!(newest > first);
    let uri = format!("/api/v1/articles/{newest}");
    assert_eq!(
        send(&app, admin("DELETE", &uri, json!(null))).await.status,
        204
    );
    // What is kept by id (the reading graph, the Related index) must not
    // take the next article for the deleted one.
    let next = create(&app, article("Next", "news")).await["id"]
        .as_i64()
        .unwrap();
    assert!(next > newest, "{next} reuses an id up to {newest}");
}

#[actix_web::test]
async fn a_summary_derived_from_the_body_follows_a_new_body_and_a_written_one_stays() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut derived = article("Derived summary", "news");
    derived["body_html"] = json!("<p>Original first paragraph.</p>");
    let derived = create(&app, derived).await;
    assert_eq!(derived["summary"], "Original first paragraph.");
    let mut written = article("Written summary", "news");
    written["body_html"] = json!("<p>Original first paragraph.</p>");
    written["summary"] = json!("What the editor wrote.");
    let written = create(&app, written).await;

    // A written summary that is also the whole body (a brief) is written
    // all the same.
    let mut brief = article("Brief", "news");
    brief["body_html"] = json!("<p>Polls close at 8pm.</p>");
    brief["summary"] = json!("Polls close at 8pm.");
    let brief = create(&app, brief).await;
    // An edit elsewhere leaves a derived summary derived.
    let uri = format!("/api/v1/articles/{}", derived["id"]);
    let reply = send(&app, admin("PATCH", &uri, json!({"title": "Retitled"}))).await;
    assert_eq!(reply.body["data"]["summary"], "Original first paragraph.");

    let new_body = json!({"body_html": "<p>Completely new text.</p>"});
    for (created, summary) in [
        (&derived, "Completely new text."),
        (&written, "What the editor wrote."),
        (&brief, "Polls close at 8pm."),
    ] {
        let uri = format!("/api/v1/articles/{}", created["id"]);
        let reply = send(&app, admin("PATCH", &uri, new_body.clone())).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["data"]["summary"], summary);
    }
    // Whether it is derived changes even when its text does not: null asks
    // for the brief's summary to be derived (the same words), and sending
    // the derived text back writes it.
    let app = &app;
    let patch = |id: &Value, body: Value| {
        let uri = format!("/api/v1/articles/{id}");
        async move { send(app, admin("PATCH", &uri, body)).await.body["data"]["summary"].clone() }
    };
    let (brief, derived) = (&brief["id"], &derived["id"]);
    assert_eq!(
        patch(brief, json!({"summary": null})).await,
        "Completely new text."
    );
    assert_eq!(
        patch(brief, json!({"body_html": "<p>Polls reopen.</p>"})).await,
        "Polls reopen."
    );
    assert_eq!(
        patch(derived, json!({"summary": "Completely new text."})).await,
        "Completely new text."
    );
    assert_eq!(
        patch(derived, json!({"body_html": "<p>Newer still.</p>"})).await,
        "Completely new text."
    );
}

/// A GET with `key`.
fn get_with(key: &str, uri: &str) -> actix_http::Request {
    TestRequest::get()
        .uri(uri)
        .insert_header(("authorization", format!("Bearer {key}")))
        .to_request()
}

#[actix_web::test]
async fn an_editor_lists_drafts_and_scheduled_articles() {
    let (app, dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut ids = Vec::new();
    for title in ["First draft", "Second draft", "Third draft"] {
        let mut draft = article(title, "news");
        draft["status"] = json!("draft");
        draft.as_object_mut().unwrap().remove("published_at");
        ids.push(create(&app, draft).await["id"].as_i64().unwrap());
    }
    let mut scheduled = article("Tomorrow", "news");
    scheduled["published_at"] = json!("2099-01-01T00:00:00Z");
    create(&app, scheduled).await;
    create(&app, article("Out now", "news")).await;
    assert_eq!(
        titles(&send(&app, get("/api/v1/articles")).await.body),
        ["Out now"]
    );

    // Newest first, one at a time, following the cursor. The draft not yet
    // listed is edited between pages, and still comes once.
    let mut listed = Vec::new();
    let mut uri = "/api/v1/articles?status=draft&limit=1".to_string();
    loop {
        let reply = send(&app, get_with(ADMIN, &uri)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("private, no-cache"));
        listed.extend(titles(&reply.body));
        if listed.len() == 1 {
            let edit = format!("/api/v1/articles/{}", ids[0]);
            let reply = send(
                &app,
                admin("PATCH", &edit, json!({"title": "First draft, edited"})),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        match reply.body["meta"]["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/articles?status=draft&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        listed,
        ["Third draft", "Second draft", "First draft, edited"]
    );
    let reply = send(&app, get_with(ADMIN, "/api/v1/articles?status=scheduled")).await;
    assert_eq!(titles(&reply.body), ["Tomorrow"]);
    let reply = send(
        &app,
        get_with(ADMIN, "/api/v1/articles?status=draft&q=third"),
    )
    .await;
    assert_eq!(titles(&reply.body), ["Third draft"]);

    // A draft list's cursor does not page another list.
    let reply = send(
        &app,
        get_with(ADMIN, "/api/v1/articles?status=draft&limit=1"),
    )
    .await;
    let cursor = reply.body["meta"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = send(
        &app,
        get_with(ADMIN, &format!("/api/v1/articles?cursor={cursor}")),
    )
    .await;
    reply.assert_problem(400, &["cursor"]);

    // Readers, and keys without the scope, are refused.
    send(&app, get("/api/v1/articles?status=draft"))
        .await
        .assert_problem(401, &[]);
    let writer = key_with(&dir, "write");
    send(&app, get_with(&writer, "/api/v1/articles?status=scheduled"))
        .await
        .assert_problem(403, &[]);
    let reply = send(&app, get_with(&writer, "/api/v1/articles")).await;
    assert_eq!(reply.status, 200, "a published list needs no scope");
}

#[actix_web::test]
async fn a_write_naming_a_version_is_refused_once_the_article_changed() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Two editors", "news")).await["id"].clone();
    let uri = format!("/api/v1/articles/{id}");
    let read = send(&app, admin("GET", &uri, Value::Null)).await;
    let etag = read.header("etag").unwrap().to_string();
    let conditional = |method: &str, body: Value, header: (&str, &str)| {
        let mut req = TestRequest::default()
            .method(method.parse().unwrap())
            .uri(&uri)
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .insert_header((header.0.to_string(), header.1.to_string()));
        if !body.is_null() {
            req = req.set_json(body);
        }
        req.to_request()
    };

    // The first editor's change names the version read: it is written.
    let first = conditional("PATCH", json!({"title": "First"}), ("if-match", &etag));
    let reply = send(&app, first).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The second read the same version: refused, with nothing written.
    let second = conditional("PATCH", json!({"title": "Second"}), ("if-match", &etag));
    send(&app, second).await.assert_problem(412, &[]);
    let stale_put = conditional(
        "PUT",
        article("Second again", "news"),
        ("if-match", &format!("\"old\", {etag}")),
    );
    send(&app, stale_put).await.assert_problem(412, &[]);
    let stale_delete = conditional("DELETE", Value::Null, ("if-match", &etag));
    send(&app, stale_delete).await.assert_problem(412, &[]);
    let now = send(&app, get(&uri)).await;
    assert_eq!(now.body["data"]["title"], "First");

    // The version now, or any version (`*`), may be written over.
    let fresh = now.header("etag").unwrap().to_string();
    let reply = send(
        &app,
        conditional("PATCH", json!({"title": "Third"}), ("if-match", &fresh)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let any = conditional("PATCH", json!({"dateline": "OSLO"}), ("if-match", "*"));
    let reply = send(&app, any).await;
    assert_eq!(reply.status, 200);
    // A write answers with its Last-Modified: the next one can name it.
    let written = reply.header("last-modified").unwrap().to_string();
    let next = conditional(
        "PATCH",
        json!({"dateline": "BERGEN"}),
        ("if-unmodified-since", &written),
    );
    assert_eq!(send(&app, next).await.status, 200);
    let stale = conditional(
        "PATCH",
        json!({"dateline": "TROMSO"}),
        ("if-unmodified-since", &written),
    );
    send(&app, stale).await.assert_problem(412, &[]);
    let exists = conditional(
        "PATCH",
        json!({"dateline": "TROMSO"}),
        ("if-none-match", "*"),
    );
    send(&app, exists).await.assert_problem(412, &[]);
    // If-Unmodified-Since: a date before the last change is refused.
    let old_date = "Mon, 01 Jan 2024 00:00:00 GMT";
    send(
        &app,
        conditional("DELETE", Value::Null, ("if-unmodified-since", old_date)),
    )
    .await
    .assert_problem(412, &[]);
    let reply = send(
        &app,
        conditional(
            "DELETE",
            Value::Null,
            ("if-unmodified-since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    // Gone: If-Match names no version of anything.
    send(
        &app,
        conditional("PATCH", json!({"title": "Back"}), ("if-match", "*")),
    )
    .await
    .assert_problem(412, &[]);
}

/// The body's limit is on what is stored: a body that grows past it as it
/// is sanitised (`&` becomes `&amp;`) or rendered is refused, naming it,
/// so that every stored body can be sent back and imported again; one
/// that shrinks under it (pasted markup, comments) is taken.
#[actix_web::test]
async fn a_body_is_limited_as_it_is_stored() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut grows = article("Ampersands", "news");
    // 400 KB as sent, 1.1 MB once `&` and `<` are escaped.
    grows["body_html"] = json!(format!("<p>{}</p>", "& < ".repeat(100_000)));
    let reply = send(&app, admin("POST", "/api/v1/articles", grows)).await;
    reply.assert_problem(422, &["body_html"]);
    assert!(
        reply.body.to_string().contains("once sanitised"),
        "{}",
        reply.body
    );
    let mut list = article("A long list", "news");
    list.as_object_mut().unwrap().remove("body_html");
    // 400 KB of Markdown, 1.1 MB as HTML.
    list["body_markdown"] = json!("* a\n".repeat(100_000));
    let reply = send(&app, admin("POST", "/api/v1/articles", list)).await;
    reply.assert_problem(422, &["body_markdown"]);
    assert!(
        reply.body.to_string().contains("once rendered as HTML"),
        "{}",
        reply.body
    );

    let mut shrinks = article("Pasted from a word processor", "news");
    let pasted = format!(
        "<p>The vote is on Tuesday.</p><!--{}-->",
        "x".repeat(700_000)
    );
    shrinks["body_html"] = json!(pasted);
    let created = create(&app, shrinks).await;
    assert_eq!(created["body_html"], "<p>The vote is on Tuesday.</p>");
}

/// Edits in quick succession each move `Last-Modified` on, and never past
/// the clock: the second of two within one second waits for the next. So
/// a client's `If-Unmodified-Since` with the time it read the article
/// holds while nobody else wrote.
#[actix_web::test]
async fn quick_edits_keep_last_modified_apart_and_never_ahead_of_the_clock() {
    use actix_web::http::header::HttpDate;
    use std::time::SystemTime;

    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Live: the count", "news")).await["id"].clone();
    let uri = format!("/api/v1/articles/{id}");
    let mut last: Option<SystemTime> = None;
    for round in 0..3 {
        let read_at = HttpDate::from(SystemTime::now()).to_string();
        let patch = TestRequest::patch()
            .uri(&uri)
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .insert_header(("if-unmodified-since", read_at))
            .set_json(json!({"summary": format!("Update {round}.")}))
            .to_request();
        let reply = send(&app, patch).await;
        assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
        let modified: HttpDate = reply.header("last-modified").unwrap().parse().unwrap();
        let modified = SystemTime::from(modified);
        assert!(
            modified <= SystemTime::now(),
            "round {round}: ahead of the clock"
        );
        // Nor of the answer's own time (RFC 9110, 8.8.2.1).
        let date: HttpDate = reply.header("date").unwrap().parse().unwrap();
        assert!(
            modified <= SystemTime::from(date),
            "round {round}: after its Date"
        );
        assert!(
            last.is_none_or(|last| modified > last),
            "round {round}: not moved on"
        );
        last = Some(modified);
    }
}

/// An article stored before a rule came in (a body of dashes, as an
/// importer left it) can still be edited: the rule holds a body sent, not
/// the one a patch keeps.
#[actix_web::test]
async fn an_article_stored_before_a_body_rule_can_still_be_edited() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(&dir, false);
    let id = {
        let app = common::app_with(config.clone()).await;
        seed_categories(&app).await;
        create(&app, article("Wire flash", "news")).await["id"]
            .as_i64()
            .unwrap()
    };
    let path = dir.path().join("frontpage.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    conn.batch_execute(&format!(
        "UPDATE articles SET body_html = '<p>- -</p>' WHERE id = {id}"
    ))
    .unwrap();
    let app = common::app_with(config).await;
    let uri = format!("/api/v1/articles/{id}");
    let reply = send(&app, admin("PATCH", &uri, json!({"status": "draft"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["status"], "draft");
    send(
        &app,
        admin("PATCH", &uri, json!({"body_html": "<p>-1</p>"})),
    )
    .await
    .assert_problem(422, &["body_html"]);
}

/// A field of the wrong type does not hide an unknown category or author:
/// one answer names them all, on create, replace, patch and bulk lines.
#[actix_web::test]
async fn a_type_error_and_an_unknown_category_are_named_together() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let id = create(&app, article("Named together", "news")).await["id"]
        .as_i64()
        .unwrap();
    let uri = format!("/api/v1/articles/{id}");
    let body = json!({"title": 5, "body_html": "<p>Some words.</p>", "category": "nope", "author": "nobody"});
    for (method, uri) in [("POST", "/api/v1/articles"), ("PUT", uri.as_str())] {
        let reply = send(&app, admin(method, uri, body.clone())).await;
        reply.assert_problem(422, &["title", "category", "author"]);
    }
    // A patch that leaves the category alone is not told of one.
    let reply = send(
        &app,
        admin("PATCH", &uri, json!({"title": 5, "author": "nobody"})),
    )
    .await;
    reply.assert_problem(422, &["title", "author"]);
    assert_eq!(
        reply.body["errors"].as_array().unwrap().len(),
        2,
        "{}",
        reply.body
    );
    // And a bulk line.
    let line =
        json!({"slug": "bulk-d", "title": 5, "body_html": "<p>Words.</p>", "category": "zzz"});
    let reply = send(&app, ndjson(&format!("{line}\n"))).await;
    let names: Vec<&str> = reply.body["data"]["errors"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["title", "category"], "{}", reply.body);
}
