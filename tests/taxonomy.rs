//! Categories (a tree), tags and authors.

mod common;

use common::{ADMIN, admin, all_pages, article, create, get, seed_categories, send, test_app};
use serde_json::json;

#[actix_web::test]
async fn the_category_tree_nests_children_under_their_parents() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let reply = send(&app, get("/api/v1/categories")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["data"],
        json!([{"slug": "home", "name": "Home", "children": [
            {"slug": "news", "name": "News", "children": [{"slug": "world", "name": "World", "children": []}]},
            {"slug": "sport", "name": "Sport", "children": []},
        ]}])
    );
    let reply = send(&app, get("/api/v1/categories/news")).await;
    let data = &reply.body["data"];
    assert_eq!(data["parent"], json!({"slug": "home", "name": "Home"}));
    assert_eq!(
        data["breadcrumb"],
        json!([{"slug": "home", "name": "Home"}, {"slug": "news", "name": "News"}])
    );
    assert_eq!(
        data["children"],
        json!([{"slug": "world", "name": "World"}])
    );
    send(&app, get("/api/v1/categories/nope"))
        .await
        .assert_problem(404, &[]);
}

#[actix_web::test]
async fn categories_can_be_renamed_and_moved_but_not_under_themselves() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let reply = send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/world",
            json!({"name": "International", "parent": "sport"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["name"], "International");
    assert_eq!(reply.body["data"]["parent"]["slug"], "sport");
    send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/home",
            json!({"parent": "world"}),
        ),
    )
    .await
    .assert_problem(422, &["parent"]);
    send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/news",
            json!({"parent": "news"}),
        ),
    )
    .await
    .assert_problem(422, &["parent"]);
    send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/news",
            json!({"parent": "missing"}),
        ),
    )
    .await
    .assert_problem(422, &["parent"]);
    send(
        &app,
        admin("PATCH", "/api/v1/categories/missing", json!({"name": "x"})),
    )
    .await
    .assert_problem(404, &[]);
    let reply = send(
        &app,
        admin(
            "PATCH",
            "/api/v1/categories/sport",
            json!({"parent": null, "slug": "sports"}),
        ),
    )
    .await;
    assert_eq!(reply.body["data"]["parent"], json!(null));
    assert_eq!(reply.body["data"]["slug"], "sports");
    let reply = send(
        &app,
        admin(
            "POST",
            "/api/v1/categories",
            json!({"name": "Local News", "parent": "news"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.header("location"),
        Some("/api/v1/categories/local-news")
    );
}

#[actix_web::test]
async fn tags_and_authors_page_by_slug_and_can_be_edited() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for name in ["Delta", "Alpha", "Charlie", "Bravo", "Echo"] {
        assert_eq!(
            send(&app, admin("POST", "/api/v1/tags", json!({"name": name})))
                .await
                .status,
            201
        );
    }
    // Public lists show the tags that published articles carry.
    assert_eq!(
        send(&app, get("/api/v1/tags")).await.body["data"],
        json!([])
    );
    let mut tagged = article("Tagged story", "news");
    tagged["tags"] = json!(["delta", "alpha", "charlie", "bravo", "echo"]);
    create(&app, tagged).await;
    let tags = all_pages(&app, "/api/v1/tags?limit=2").await;
    let slugs: Vec<&str> = tags.iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["alpha", "bravo", "charlie", "delta", "echo"]);
    let reply = send(
        &app,
        admin("PATCH", "/api/v1/tags/alpha", json!({"name": "Alpha Team"})),
    )
    .await;
    assert_eq!(
        reply.body["data"],
        json!({"slug": "alpha", "name": "Alpha Team"})
    );
    assert_eq!(
        send(&app, get("/api/v1/tags/alpha")).await.body["data"]["name"],
        "Alpha Team"
    );
    send(&app, get("/api/v1/tags/zulu"))
        .await
        .assert_problem(404, &[]);

    let reply = send(
        &app,
        admin(
            "POST",
            "/api/v1/authors",
            json!({"name": "Priya Raman", "bio": "Arts editor."}),
        ),
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.body["data"],
        json!({"slug": "priya-raman", "name": "Priya Raman", "bio": "Arts editor."})
    );
    let reply = send(
        &app,
        admin("PATCH", "/api/v1/authors/priya-raman", json!({"bio": null})),
    )
    .await;
    assert_eq!(reply.body["data"]["bio"], json!(null));
    let listed = send(&app, get("/api/v1/authors")).await;
    assert_eq!(listed.body["data"][0]["slug"], "priya-raman");
    send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "   "})),
    )
    .await
    .assert_problem(422, &["name"]);
}

#[actix_web::test]
async fn the_tags_of_drafts_and_embargoed_stories_stay_hidden_from_readers_not_editors() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut draft = article("Embargoed story", "news");
    draft["status"] = json!("draft");
    draft["tags"] = json!(["Chief executive resigns"]);
    create(&app, draft).await;
    let mut scheduled = article("Tomorrow's story", "news");
    scheduled["published_at"] = json!("2099-01-01T00:00:00Z");
    scheduled["tags"] = json!(["Secret merger"]);
    create(&app, scheduled).await;
    assert_eq!(
        send(&app, get("/api/v1/tags")).await.body["data"],
        json!([])
    );
    send(&app, get("/api/v1/tags/chief-executive-resigns"))
        .await
        .assert_problem(404, &[]);
    send(&app, get("/api/v1/tags/secret-merger"))
        .await
        .assert_problem(404, &[]);

    // An editor (a key that may read drafts) sees every tag, used or not.
    let reply = send(
        &app,
        admin("POST", "/api/v1/tags", json!({"name": "Unused"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    send(&app, get("/api/v1/tags/unused"))
        .await
        .assert_problem(404, &[]);
    let as_editor = |uri: &str| {
        actix_web::test::TestRequest::get()
            .uri(uri)
            .insert_header(("authorization", format!("Bearer {ADMIN}")))
            .to_request()
    };
    let reply = send(&app, as_editor("/api/v1/tags")).await;
    let slugs: Vec<&str> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["chief-executive-resigns", "secret-merger", "unused"]
    );
    for slug in ["unused", "secret-merger"] {
        let reply = send(&app, as_editor(&format!("/api/v1/tags/{slug}"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("private, no-cache"));
    }
    // As a list's filter, a hidden tag is as unknown to a reader as one
    // that does not exist: neither says the embargoed story's tag is there.
    for slug in ["secret-merger", "no-such-tag"] {
        let uri = format!("/api/v1/articles?tag={slug}");
        let reply = send(&app, get(&uri)).await;
        reply.assert_problem(400, &["tag"]);
        assert_eq!(
            reply.body["errors"][0]["detail"],
            format!("no tag has the slug `{slug}`")
        );
    }
    let listed = send(
        &app,
        as_editor("/api/v1/articles?tag=secret-merger&status=scheduled"),
    )
    .await;
    assert_eq!(
        listed.body["data"][0]["title"], "Tomorrow's story",
        "{}",
        listed.body
    );
    // What an editor was shown is never served to a reader, and what a
    // reader was shown says that a keyed request may get something else.
    let reply = send(&app, get("/api/v1/tags")).await;
    assert_eq!(reply.body["data"], json!([]));
    let vary: Vec<String> = reply
        .headers
        .get_all("vary")
        .map(|value| value.to_str().unwrap().to_ascii_lowercase())
        .collect();
    let vary = vary.join(", ");
    assert!(
        vary.contains("authorization") && vary.contains("accept-encoding"),
        "{vary}"
    );
    send(&app, get("/api/v1/tags/unused"))
        .await
        .assert_problem(404, &[]);
}

#[actix_web::test]
async fn names_with_control_characters_are_refused() {
    let (app, _dir) = test_app(false).await;
    send(
        &app,
        admin("POST", "/api/v1/tags", json!({"name": "a\u{0}b"})),
    )
    .await
    .assert_problem(422, &["name"]);
    send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "Zed\u{7}"})),
    )
    .await
    .assert_problem(422, &["name"]);
    send(
        &app,
        admin(
            "POST",
            "/api/v1/categories",
            json!({"name": "Cat\u{1b}Esc"}),
        ),
    )
    .await
    .assert_problem(422, &["name"]);
    send(
        &app,
        admin(
            "POST",
            "/api/v1/authors",
            json!({"name": "Ok", "bio": "bell\u{7}"}),
        ),
    )
    .await
    .assert_problem(422, &["bio"]);
    // A name of no-break spaces is empty, and says so.
    let reply = send(
        &app,
        admin("POST", "/api/v1/tags", json!({"name": "\u{a0}\u{a0}"})),
    )
    .await;
    reply.assert_problem(422, &["name"]);
    assert_eq!(
        reply.body["errors"][0]["detail"],
        "must have a character other than white space"
    );
}

#[actix_web::test]
async fn a_tag_with_a_long_slug_stays_on_its_articles_through_an_edit() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    // 94 characters: a tag may have it, a slug derived from a title may not.
    let slug = ["harbour"; 11].join("-") + "-strike";
    assert_eq!(slug.len(), 94);
    let made = send(
        &app,
        admin(
            "POST",
            "/api/v1/tags",
            json!({"slug": slug, "name": "Harbour strike"}),
        ),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let mut tagged = article("Tagged story", "news");
    tagged["tags"] = json!([slug]);
    let id = create(&app, tagged).await["id"].as_i64().unwrap();
    let uri = format!("/api/v1/articles/{id}");
    let edited = send(&app, admin("PATCH", &uri, json!({"title": "Retitled"}))).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["data"]["tags"][0]["slug"], slug.as_str());
    assert_eq!(edited.body["data"]["tags"][0]["name"], "Harbour strike");
    let tags = send(&app, get("/api/v1/tags")).await;
    assert_eq!(
        tags.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        tags.body
    );
}

#[actix_web::test]
async fn a_tag_given_by_its_name_is_that_tag_not_a_new_one() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let made = send(
        &app,
        admin(
            "POST",
            "/api/v1/tags",
            json!({"slug": "cop", "name": "Climate Summit"}),
        ),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    // Another tag's slug is what the name would make: the name wins.
    let decoy = send(
        &app,
        admin(
            "POST",
            "/api/v1/tags",
            json!({"slug": "climate-summit", "name": "UN conference"}),
        ),
    )
    .await;
    assert_eq!(decoy.status, 201, "{}", decoy.body);
    let mut tagged = article("Delegates arrive", "news");
    // By name (any ASCII case) and by slug: one tag, once.
    tagged["tags"] = json!(["climate summit", "cop", "Heatwave"]);
    let created = create(&app, tagged.clone()).await;
    let slugs: Vec<&str> = created["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["cop", "heatwave"]);
    assert_eq!(created["tags"][0]["name"], "Climate Summit");

    // Sent again by name, as an import would, it changes nothing.
    let line = serde_json::to_string(&tagged).unwrap();
    let bulk = actix_web::test::TestRequest::post()
        .uri("/api/v1/articles/bulk")
        .insert_header(("authorization", format!("Bearer {ADMIN}")))
        .insert_header(("content-type", "application/x-ndjson"))
        .set_payload(line)
        .to_request();
    let reply = send(&app, bulk).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["unchanged"], 1, "{}", reply.body);

    // A renamed tag is found by its new name.
    let renamed = send(
        &app,
        admin(
            "PATCH",
            "/api/v1/tags/heatwave",
            json!({"name": "Heat & drought"}),
        ),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let mut later = article("Rivers run low", "news");
    later["tags"] = json!(["Heat & drought"]);
    assert_eq!(create(&app, later).await["tags"][0]["slug"], "heatwave");
    let tags = send(&app, admin("GET", "/api/v1/tags", json!(null))).await;
    assert_eq!(
        tags.body["data"].as_array().unwrap().len(),
        3,
        "{}",
        tags.body
    );
}

#[actix_web::test]
async fn tags_authors_and_categories_are_deleted_once_nothing_needs_them() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let author = send(
        &app,
        admin("POST", "/api/v1/authors", json!({"name": "Sam Reyes"})),
    )
    .await;
    assert_eq!(author.status, 201, "{}", author.body);
    let mut input = article("Council votes", "world");
    input["tags"] = json!(["Elections", "Council"]);
    input["author"] = json!("sam-reyes");
    let id = create(&app, input).await["id"].as_i64().unwrap();
    let uri = format!("/api/v1/articles/{id}");
    let before = send(&app, get(&uri)).await;

    // A tag comes off its articles.
    let reply = send(&app, admin("DELETE", "/api/v1/tags/elections", json!(null))).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let after = send(&app, get(&uri)).await;
    assert_eq!(
        after.body["data"]["tags"],
        json!([{"slug": "council", "name": "Council"}])
    );
    assert_ne!(after.header("etag"), before.header("etag"));
    // A new version, as an edit makes, even within the second of the last.
    let (was, now) = (
        before.body["data"]["updated_at"].as_str().unwrap(),
        after.body["data"]["updated_at"].as_str().unwrap(),
    );
    assert!(now > was, "updated_at {was} -> {now}");
    send(&app, get("/api/v1/tags/elections"))
        .await
        .assert_problem(404, &[]);

    // An author or a category in use stays, saying why.
    send(
        &app,
        admin("DELETE", "/api/v1/authors/sam-reyes", json!(null)),
    )
    .await
    .assert_problem(409, &[]);
    send(
        &app,
        admin("DELETE", "/api/v1/categories/world", json!(null)),
    )
    .await
    .assert_problem(409, &[]);
    // A parent stays while it has children, though no article is in it.
    send(
        &app,
        admin("DELETE", "/api/v1/categories/news", json!(null)),
    )
    .await
    .assert_problem(409, &[]);
    assert_eq!(
        send(&app, get(&uri)).await.body["data"]["author"]["slug"],
        "sam-reyes"
    );

    // Once the article moves on, they go.
    let moved = send(
        &app,
        admin("PATCH", &uri, json!({"author": null, "category": "sport"})),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    for path in ["/api/v1/authors/sam-reyes", "/api/v1/categories/world"] {
        let reply = send(&app, admin("DELETE", path, json!(null))).await;
        assert_eq!(reply.status, 204, "{path}: {}", reply.body);
        send(&app, get(path)).await.assert_problem(404, &[]);
    }
    send(&app, admin("DELETE", "/api/v1/tags/nothing", json!(null)))
        .await
        .assert_problem(404, &[]);
    // Without a key, nothing is deleted.
    let anonymous = actix_web::test::TestRequest::delete()
        .uri("/api/v1/tags/council")
        .to_request();
    send(&app, anonymous).await.assert_problem(401, &[]);
}

/// A patch may change a category's, tag's or author's name and slug but not
/// clear them: `null` is named, as an article's patch names it, rather than
/// answered 200 with nothing changed.
#[actix_web::test]
async fn a_taxonomy_patch_refuses_null_for_what_it_cannot_clear() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    for (create_uri, body) in [
        ("/api/v1/tags", json!({"name": "Harbours"})),
        ("/api/v1/authors", json!({"name": "Mara Ellison"})),
    ] {
        let reply = send(&app, admin("POST", create_uri, body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    for (uri, fields) in [
        ("/api/v1/categories/news", &["name", "slug", "position"][..]),
        ("/api/v1/tags/harbours", &["name", "slug"]),
        ("/api/v1/authors/mara-ellison", &["name", "slug"]),
    ] {
        for field in fields {
            let reply = send(&app, admin("PATCH", uri, json!({ *field: null }))).await;
            reply.assert_problem(422, &[field]);
        }
    }
}

#[actix_web::test]
async fn tags_apart_only_by_a_plus_or_sharp_are_apart() {
    let (app, _dir) = test_app(false).await;
    seed_categories(&app).await;
    let mut tagged = article("Languages of the year", "news");
    tagged["tags"] = json!(["C++", "C#", "C", "Disney+"]);
    let created = create(&app, tagged).await;
    let tags: Vec<(&str, &str)> = created["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| (tag["slug"].as_str().unwrap(), tag["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [
            ("c-plus-plus", "C++"),
            ("c-sharp", "C#"),
            ("c", "C"),
            ("disney-plus", "Disney+")
        ]
    );
    // A tag made by name alone gets the same slug an article's would.
    let made = send(&app, admin("POST", "/api/v1/tags", json!({"name": "F#"}))).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["data"]["slug"], "f-sharp");
}
