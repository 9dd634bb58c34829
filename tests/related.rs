//! The Related feed: topical order, exclusions, freshness after publishing,
//! reasons, and the article page's `include=related`.

mod common;

use std::time::{Duration, Instant};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use common::{admin, app_with, config_with, create, get, public, seed_categories, send, test_app};
use serde_json::{Value, json};

/// A small corpus on three topics; each story has its own words and a few
/// of its topic's.
const HARBOUR: [(&str, &str); 3] = [
    (
        "Dockers strike shuts the harbour",
        "Dockers walked out at the harbour at dawn. Cranes stood idle and container ships queued outside the harbour wall while the dockers union demanded new pay terms.",
    ),
    (
        "Harbour strike enters second week",
        "The dockers strike at the harbour entered its second week. Container ships were diverted and the union said dockers would picket the cranes until pay talks resumed.",
    ),
    (
        "Union and port agree to end dockers strike",
        "The dockers union and the harbour authority agreed a pay deal. Cranes will move containers again on Monday and ships waiting outside the harbour will dock first.",
    ),
];
const GLACIER: [(&str, &str); 3] = [
    (
        "Glacier retreat speeds up, survey finds",
        "The glacier lost more ice this summer than in any year on record. Meltwater lakes formed on the glacier tongue and scientists measured the retreat with drones.",
    ),
    (
        "Meltwater lake bursts below the glacier",
        "A meltwater lake under the glacier burst overnight, flooding the valley. Scientists say the ice is thinning and the glacier retreat will bring more such floods.",
    ),
    (
        "Scientists drill into glacier ice",
        "Scientists drilled through the glacier to sample old ice. The core shows how the glacier grew and how fast its retreat began, and where meltwater runs below.",
    ),
];
const MARATHON: (&str, &str) = (
    "Local runner wins city marathon",
    "The marathon was won by a local runner in record time. Thousands lined the streets and the runner thanked the crowd after crossing the line.",
);

fn story(title: &str, body: &str, tags: &[&str]) -> Value {
    json!({
        "title": title,
        "category": "news",
        "body_html": format!("<p>{body}</p>"),
        "tags": tags,
        "status": "published",
        "published_at": "2026-01-10T12:00:00Z",
    })
}

async fn related<S, B>(app: &S, id: i64) -> Vec<Value>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let reply = send(app, get(&format!("/api/v1/articles/{id}/related?limit=50"))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|item| item["article"]["id"].as_i64().unwrap())
        .collect()
}

/// Asks until `check` holds for article `id`'s list: lists are refreshed in
/// the background, within seconds of a change.
async fn eventually<S, B, F>(app: &S, id: i64, what: &str, check: F) -> Vec<Value>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
    F: Fn(&[Value]) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let items = related(app, id).await;
        if check(&items) {
            return items;
        }
        assert!(Instant::now() < deadline, "{what}: {items:#?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts article `id` back to draft.
async fn unpublish<S, B>(app: &S, id: i64)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let path = format!("/api/v1/articles/{id}");
    let reply = send(app, admin("PATCH", &path, json!({"status": "draft"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn corpus<S, B>(app: &S) -> (Vec<i64>, Vec<i64>, i64)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    seed_categories(app).await;
    let mut harbour = Vec::new();
    for (title, body) in HARBOUR {
        harbour.push(
            create(app, story(title, body, &["harbour"])).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut glacier = Vec::new();
    for (title, body) in GLACIER {
        glacier.push(
            create(app, story(title, body, &[])).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let marathon = create(app, story(MARATHON.0, MARATHON.1, &[])).await["id"]
        .as_i64()
        .unwrap();
    (harbour, glacier, marathon)
}

#[actix_web::test]
async fn an_article_gets_its_own_topic_first() {
    let (app, _dir) = test_app(false).await;
    let (harbour, glacier, _) = corpus(&app).await;
    for (topic, others) in [(&harbour, &glacier), (&glacier, &harbour)] {
        for id in topic.iter() {
            let items = eventually(&app, *id, "the topic's other stories come first", |items| {
                let found = ids(items);
                found.len() >= 2 && found[..2].iter().all(|other| topic.contains(other))
            })
            .await;
            let found = ids(&items);
            assert!(!found.contains(id), "an article is never related to itself");
            assert!(
                found.iter().all(|other| !others.contains(other))
                    || found.iter().position(|o| others.contains(o)) >= Some(2),
                "{found:?}"
            );
        }
    }
}

#[actix_web::test]
async fn drafts_and_near_duplicates_never_appear() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    let (title, body) = HARBOUR[0];
    let mut draft = story("Dockers strike draft", body, &["harbour"]);
    draft["status"] = json!("draft");
    let draft = create(&app, draft).await["id"].as_i64().unwrap();
    // The same story imported twice, under another slug.
    let duplicate = create(&app, story(&format!("{title} (copy)"), body, &["harbour"])).await["id"]
        .as_i64()
        .unwrap();
    let items = eventually(&app, harbour[1], "both harbour stories listed", |items| {
        let found = ids(items);
        found.contains(&harbour[0]) && found.contains(&harbour[2])
    })
    .await;
    let found = ids(&items);
    assert!(!found.contains(&draft), "a draft is listed: {found:?}");
    // The copy may be listed for other articles, but never for the original.
    let original = related(&app, harbour[0]).await;
    assert!(!ids(&original).contains(&duplicate), "{original:#?}");
    assert!(!ids(&related(&app, duplicate).await).contains(&harbour[0]));
}

#[actix_web::test]
async fn a_title_shows_once_in_a_list_and_never_the_articles_own() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    // A daily series: one title, a new text each day.
    let briefs = [
        "Dockers at the harbour voted on the strike and the cranes stood idle while ships queued.",
        "Harbour strike talks resumed as dockers picketed the cranes and container ships waited.",
    ];
    let mut series = Vec::new();
    for (day, body) in briefs.iter().enumerate() {
        let mut brief = story("In brief", body, &["harbour"]);
        brief["slug"] = json!(format!("in-brief-{day}"));
        series.push(create(&app, brief).await["id"].as_i64().unwrap());
    }
    // Another outlet's words under the headline of `harbour[1]`.
    let mut namesake = story(
        HARBOUR[1].0,
        "Harbour dockers stayed out on strike for a second week; the union picketed the cranes.",
        &["harbour"],
    );
    namesake["slug"] = json!("harbour-strike-second-week-wire");
    let namesake = create(&app, namesake).await["id"].as_i64().unwrap();
    up_to_date(&app).await;

    let titles = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|item| item["article"]["title"].as_str().unwrap().to_lowercase())
            .collect()
    };
    let items = related(&app, harbour[0]).await;
    let shown = titles(&items);
    let mut distinct = shown.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), shown.len(), "{shown:#?}");
    let found = ids(&items);
    assert!(series.iter().any(|id| found.contains(id)), "{shown:#?}");
    assert!(found.contains(&harbour[1]) || found.contains(&namesake));
    // Never the article's own headline, under another id.
    for own in [harbour[1], namesake, series[0]] {
        let items = related(&app, own).await;
        let title = send(&app, get(&format!("/api/v1/articles/{own}")))
            .await
            .body["data"]["title"]
            .as_str()
            .unwrap()
            .to_lowercase();
        assert!(!items.is_empty());
        assert!(!titles(&items).contains(&title), "{own}: {items:#?}");
    }
}

#[actix_web::test]
async fn an_article_readers_cannot_see_has_no_list() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    let mut draft = story("Dockers strike draft", HARBOUR[0].1, &["harbour"]);
    draft["status"] = json!("draft");
    let draft = create(&app, draft).await;
    for key in [
        draft["id"].to_string(),
        draft["slug"].as_str().unwrap().into(),
    ] {
        let reply = send(&app, get(&format!("/api/v1/articles/{key}/related"))).await;
        reply.assert_problem(404, &[]);
    }
    // Listed a moment ago, its list still kept: gone once the write returns.
    eventually(&app, harbour[0], "the list is built", |items| {
        !items.is_empty()
    })
    .await;
    unpublish(&app, harbour[0]).await;
    let reply = send(
        &app,
        get(&format!("/api/v1/articles/{}/related", harbour[0])),
    )
    .await;
    reply.assert_problem(404, &[]);
}

#[actix_web::test]
async fn a_new_article_joins_older_lists_and_an_unpublished_one_leaves() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    joins_and_leaves(&app, &harbour).await;
}

/// The same after a restart that computes only the newest article's list
/// ahead: the others are computed when asked for, and must follow changes
/// too.
#[actix_web::test]
async fn lists_computed_when_asked_for_follow_changes_too() {
    let (first, dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&first).await;
    stop(first).await;
    let app = app_with(config_with(
        &dir,
        false,
        &[("FRONTPAGE_RELATED_LISTS", "1")],
    ))
    .await;
    joins_and_leaves(&app, &harbour).await;
}

/// Lists of older articles are computed and stored in the background; a
/// restarted server reads them back, and a story imported from the command
/// line while it was down still joins the stored lists it belongs in.
#[actix_web::test]
async fn stored_lists_take_in_a_story_imported_while_the_server_was_down() {
    let dir = tempfile::TempDir::new().unwrap();
    // Only the newest article's list is kept in memory.
    let config = || config_with(&dir, false, &[("FRONTPAGE_RELATED_LISTS", "1")]);
    let first = app_with(config()).await;
    let (harbour, _, _) = corpus(&first).await;
    stop(first).await;
    // Lists of articles changed while the server runs are kept in memory;
    // at a start the older ones are stored.
    let first = app_with(config()).await;
    eventually(&first, harbour[0], "the list is made", |items| {
        harbour[1..].iter().all(|other| ids(items).contains(other))
    })
    .await;
    stop(first).await;

    let file = dir.path().join("import.ndjson");
    let latest = story(
        "Dockers return to the harbour cranes",
        "Dockers were back at the harbour cranes today after the strike. The union said container ships would be cleared within days and pay talks are over.",
        &["harbour"],
    );
    std::fs::write(&file, format!("{latest}\n")).unwrap();
    let import = std::process::Command::new(env!("CARGO_BIN_EXE_frontpage"))
        .arg("import")
        .arg(&file)
        .env("DATABASE_URL", dir.path().join("frontpage.db"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");

    let app = app_with(config()).await;
    let reply = send(
        &app,
        get("/api/v1/articles/dockers-return-to-the-harbour-cranes"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let latest = reply.body["data"]["id"].as_i64().unwrap();
    for older in &harbour {
        eventually(&app, *older, "the imported story joins", |items| {
            ids(items).contains(&latest)
        })
        .await;
    }
}

/// A restart takes the newest articles' lists from the store instead of
/// computing them again, and finds their reasons again; lists stored by
/// another version of the engine are computed again.
#[actix_web::test]
async fn a_restart_reads_the_newest_lists_back_from_the_store() {
    use diesel::prelude::*;
    use diesel::sql_types::{Binary, Integer};

    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Binary)]
        items: Vec<u8>,
    }

    let dir = tempfile::TempDir::new().unwrap();
    let config = || config_with(&dir, false, &[]);
    let first = app_with(config()).await;
    let (harbour, glacier, _) = corpus(&first).await;
    stop(first).await;
    // A start computes and stores the lists it does not find stored. (Until
    // it has, it shows what the first server stored, with scores from that
    // server's index, built up article by article.)
    let second = app_with(config()).await;
    up_to_date(&second).await;
    let before = eventually(&second, harbour[0], "the list is made", |items| {
        harbour[1..].iter().all(|other| ids(items).contains(other))
    })
    .await;
    let glacier_before = related(&second, glacier[0]).await;
    stop(second).await;

    // Halve the stored scores of the first harbour story's list (its
    // items unchanged, so the list still holds), and record the last sync
    // as later than the corpus was written: a start looks again at
    // articles changed shortly before the last sync.
    let halve_stored_scores = |lists_version: i32| {
        let path = dir.path().join("frontpage.db");
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let stored: Stored =
            diesel::sql_query("SELECT items FROM related_lists WHERE article_id = ?")
                .bind::<Integer, _>(harbour[0] as i32)
                .get_result(&mut conn)
                .unwrap();
        let mut items = stored.items;
        for item in items.chunks_exact_mut(9) {
            let score = f32::from_le_bytes(item[4..8].try_into().unwrap());
            item[4..8].copy_from_slice(&(score / 2.0).to_le_bytes());
        }
        diesel::sql_query("UPDATE related_lists SET items = ? WHERE article_id = ?")
            .bind::<Binary, _>(items)
            .bind::<Integer, _>(harbour[0] as i32)
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query(
            "UPDATE related_sync SET synced_at = datetime('now', '+1 minute'), lists_version = ?",
        )
        .bind::<Integer, _>(lists_version)
        .execute(&mut conn)
        .unwrap();
    };
    let scores = |items: &[Value]| -> Vec<f64> {
        items
            .iter()
            .map(|item| item["score"].as_f64().unwrap())
            .collect()
    };
    let reasons = |items: &[Value]| -> Vec<Value> {
        items.iter().map(|item| item["reasons"].clone()).collect()
    };
    halve_stored_scores(frontpage::related::LISTS_VERSION);

    let third = app_with(config()).await;
    let after = eventually(&third, harbour[0], "the list is read", |items| {
        !items.is_empty()
    })
    .await;
    assert_eq!(ids(&after), ids(&before));
    for (was, is) in scores(&before).iter().zip(scores(&after)) {
        assert!((is - was / 2.0).abs() < 1e-6, "{was} then {is}");
    }
    assert_eq!(reasons(&after), reasons(&before));
    assert_eq!(related(&third, glacier[0]).await, glacier_before);
    stop(third).await;

    // Lists stored by another version of the engine are computed again.
    halve_stored_scores(frontpage::related::LISTS_VERSION - 1);
    // Not even while it builds its index.
    let fourth = app_with(config()).await;
    let again = eventually(&fourth, harbour[0], "the list is made again", |items| {
        !items.is_empty()
    })
    .await;
    assert_eq!(ids(&again), ids(&before));
    assert_eq!(scores(&again), scores(&before));
}

/// The list of an article changed while the server runs is stored once
/// recomputed, so that the next start reads it rather than computing it.
#[actix_web::test]
async fn the_list_of_a_changed_article_is_stored_again() {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Integer};

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }

    let dir = tempfile::TempDir::new().unwrap();
    let app = app_with(config_with(&dir, false, &[])).await;
    let (harbour, _, _) = corpus(&app).await;
    eventually(&app, harbour[0], "the list is made", |items| {
        harbour[1..].iter().all(|other| ids(items).contains(other))
    })
    .await;
    // Its stored list deleted (stored times have whole seconds: a list
    // stored again could not be told from it by its time).
    let store = dir.path().join("frontpage.db");
    let mut conn = SqliteConnection::establish(store.to_str().unwrap()).unwrap();
    // The server's writer may hold the lock for a moment.
    diesel::sql_query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .unwrap();
    let stored = |conn: &mut SqliteConnection| {
        diesel::sql_query("SELECT COUNT(*) AS count FROM related_lists WHERE article_id = ?")
            .bind::<Integer, _>(harbour[0] as i32)
            .get_result::<Count>(conn)
            .unwrap()
            .count
    };
    diesel::sql_query("DELETE FROM related_lists WHERE article_id = ?")
        .bind::<Integer, _>(harbour[0] as i32)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(stored(&mut conn), 0);

    let path = format!("/api/v1/articles/{}", harbour[0]);
    let body = "<p>Dockers walked out at the harbour again. The union said cranes would stay idle until the pay deal holds.</p>";
    let reply = send(&app, admin("PATCH", &path, json!({ "body_html": body }))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&mut conn) == 0 {
        assert!(
            Instant::now() < deadline,
            "the changed article's list is not stored again"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new harbour story joins the list of the first of the `harbour`
/// stories once indexed; leaves it, or falls below the other harbour
/// stories, once rewritten about the glacier within the second; and is
/// not shown in it when put back to draft.
async fn joins_and_leaves<S, B>(app: &S, harbour: &[i64])
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    eventually(app, harbour[0], "the list is built", |items| {
        !items.is_empty()
    })
    .await;
    let latest = create(
        app,
        story(
            "Dockers return to the harbour cranes",
            "Dockers were back at the harbour cranes today after the strike. The union said container ships would be cleared within days and pay talks are over.",
            &["harbour"],
        ),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    eventually(app, harbour[0], "the new story joins the list", |items| {
        ids(items).contains(&latest)
    })
    .await;

    // Rewritten about the glacier, still published: only a list made
    // afresh ranks it lower (reading leaves out unpublished articles, but
    // cannot tell a changed one).
    let rewritten = json!({
        "title": "Drones map the glacier meltwater",
        "body_html": "<p>Scientists flew drones over the glacier to map meltwater lakes and measure how fast the ice retreat is going.</p>",
        "tags": [],
    });
    let path = format!("/api/v1/articles/{latest}");
    let reply = send(app, admin("PATCH", &path, rewritten)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    eventually(app, harbour[0], "the rewritten story falls", |items| {
        let order = ids(items);
        let at = |id: i64| order.iter().position(|found| *found == id);
        let others = at(harbour[1]).max(at(harbour[2]));
        at(latest).is_none_or(|latest| Some(latest) > others)
    })
    .await;

    unpublish(app, latest).await;
    let items = related(app, harbour[0]).await;
    assert!(!ids(&items).contains(&latest), "{items:#?}");
}

#[actix_web::test]
async fn a_scheduled_article_joins_older_lists_once_due_without_another_write() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    eventually(&app, harbour[0], "the list is built", |items| {
        !items.is_empty()
    })
    .await;
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let mut scheduled = story(
        "Dockers return to the harbour cranes",
        "Dockers were back at the harbour cranes today after the strike. The union said container ships would be cleared within days and pay talks are over.",
        &["harbour"],
    );
    scheduled["published_at"] = json!(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let id = create(&app, scheduled).await["id"].as_i64().unwrap();
    let items = related(&app, harbour[0]).await;
    assert!(
        !ids(&items).contains(&id),
        "not before it is due: {items:#?}"
    );

    // No write follows: the refresher finds it by its time alone.
    eventually(
        &app,
        harbour[0],
        "the story joins the list once due",
        |items| ids(items).contains(&id),
    )
    .await;
    assert!(chrono::Utc::now() >= due);
}

#[actix_web::test]
async fn a_short_page_is_filled_past_articles_unpublished_since_the_list_was_made() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    // Alike, but not copies of each other (a list would show one of them).
    for (day, what) in [
        (
            "Monday",
            "Cranes stood idle and container ships queued offshore.",
        ),
        (
            "Tuesday",
            "Lorry drivers parked along the quay as the depot shut.",
        ),
        (
            "Wednesday",
            "Managers offered a bonus that the stewards turned down.",
        ),
        (
            "Thursday",
            "Ferry passengers were sent to another port for the week.",
        ),
    ] {
        let body = format!(
            "Dockers at the harbour met the union on {day} as the strike over pay went on. {what}"
        );
        create(
            &app,
            story(&format!("Harbour talks on {day}"), &body, &["harbour"]),
        )
        .await;
    }
    let items = eventually(&app, harbour[0], "the list is built", |items| {
        items.len() >= 5
    })
    .await;
    // The first three of the list go back to draft: more than the couple of
    // spares a page of two loads at first.
    let gone: Vec<i64> = ids(&items).into_iter().take(3).collect();
    for id in &gone {
        unpublish(&app, *id).await;
    }
    let reply = send(
        &app,
        get(&format!("/api/v1/articles/{}/related?limit=2", harbour[0])),
    )
    .await;
    let page = ids(reply.body["data"].as_array().unwrap());
    assert_eq!(page.len(), 2, "{}", reply.body);
    assert!(page.iter().all(|id| !gone.contains(id)), "{page:?}");
}

#[actix_web::test]
async fn reasons_name_real_shared_words_and_tags() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    let items = eventually(&app, harbour[0], "a harbour story is first", |items| {
        ids(items).first().is_some_and(|id| harbour.contains(id))
    })
    .await;
    let first = &items[0];
    assert!(first["score"].as_f64().unwrap() > 0.0);
    let reasons = first["reasons"].as_array().unwrap();
    let text = reasons
        .iter()
        .find(|reason| reason["type"] == "similar_text")
        .expect("a text reason");
    let own = format!("{} {}", HARBOUR[0].0, HARBOUR[0].1).to_lowercase();
    let other_id = first["article"]["id"].as_i64().unwrap();
    let other = harbour.iter().position(|id| *id == other_id).unwrap();
    let theirs = format!("{} {}", HARBOUR[other].0, HARBOUR[other].1).to_lowercase();
    let terms = text["terms"].as_array().unwrap();
    assert!(!terms.is_empty());
    for term in terms {
        let term = term.as_str().unwrap();
        assert!(own.contains(term) && theirs.contains(term), "{term}");
    }
    assert!(reasons.contains(&json!({"type": "shared_tags", "tags": ["harbour"]})));
    assert!(reasons.contains(&json!({"type": "same_category", "category": "news"})));
}

#[actix_web::test]
async fn the_article_page_includes_the_same_list() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    let listed = eventually(&app, harbour[0], "the list is built", |items| {
        items.len() >= 2
    })
    .await;
    let reply = send(
        &app,
        get(&format!("/api/v1/articles/{}?include=related", harbour[0])),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let included = reply.body["data"]["related"].as_array().unwrap();
    assert_eq!(ids(included), ids(&listed[..listed.len().min(10)]));
}

#[actix_web::test]
async fn an_item_is_its_articles_list_form_with_current_counts() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    let (listing, listed) = (harbour[0], harbour[1]);
    eventually(&app, listing, "the list is built", |items| {
        ids(items).contains(&listed)
    })
    .await;
    let item = |items: Vec<Value>| {
        items
            .into_iter()
            .find(|item| item["article"]["id"] == listed)
            .expect("the listed article")["article"]
            .clone()
    };
    // Once from the store, then (the article read and so kept) from memory,
    // each after a view.
    for views in 1..=3 {
        let path = format!("/api/v1/articles/{listed}");
        let view = send(&app, public("POST", &format!("{path}/views"), json!({}))).await;
        assert_eq!(view.status, 200, "{}", view.body);
        let shown = item(related(&app, listing).await);
        let mut article = send(&app, get(&path)).await.body["data"].take();
        article.as_object_mut().unwrap().remove("body_html");
        assert_eq!(article["stats"]["views"], views);
        assert_eq!(shown, article);
    }
}

#[actix_web::test]
async fn bad_requests_are_problems() {
    let (app, _dir) = test_app(false).await;
    let (harbour, _, _) = corpus(&app).await;
    for limit in ["0", "51", "ten"] {
        let reply = send(
            &app,
            get(&format!(
                "/api/v1/articles/{}/related?limit={limit}",
                harbour[0]
            )),
        )
        .await;
        reply.assert_problem(400, &["limit"]);
    }
    let reply = send(&app, get("/api/v1/articles/999999/related")).await;
    reply.assert_problem(404, &[]);
}

/// A server that keeps answers for ten minutes, over the corpus, indexed;
/// and the harbour stories.
async fn keeping_answers_over_the_corpus(
    dir: &tempfile::TempDir,
) -> (
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
    Vec<i64>,
) {
    let config = config_with(dir, false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "600")]);
    let app = app_with(config).await;
    let (harbour, _, _) = corpus(&app).await;
    up_to_date(&app).await;
    (app, harbour)
}

/// A list asked for before its article is indexed (the moment after it is
/// published, or while the index is first built) is empty, and no cache
/// may keep it: not the client's or a CDN's (`no-store`), nor this
/// server's, whose kept answers no write would drop once the list is made.
#[actix_web::test]
async fn a_list_not_made_yet_is_kept_by_no_cache() {
    let dir = tempfile::TempDir::new().unwrap();
    let (app, harbour) = keeping_answers_over_the_corpus(&dir).await;
    // The index takes in a new article a fifth of a second after the write
    // at the soonest; a stalled machine may miss that, so a few tries.
    let (title, body) = HARBOUR[0];
    for attempt in 0..5 {
        let created = create(
            &app,
            story(&format!("{title} ({attempt})"), body, &["harbour"]),
        )
        .await;
        let id = created["id"].as_i64().unwrap();
        let uri = format!("/api/v1/articles/{id}/related");
        // Twice: the second request is the one a cache would keep.
        let first = send(&app, get(&uri)).await;
        let reply = send(&app, get(&uri)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let empty = |reply: &common::Reply| reply.body["data"].as_array().unwrap().is_empty();
        if empty(&first) && empty(&reply) {
            assert_eq!(first.header("cache-control"), Some("no-store"));
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            eventually(&app, id, "the list is made", |items| {
                harbour.iter().any(|other| ids(items).contains(other))
            })
            .await;
            let reply = send(&app, get(&format!("/api/v1/articles/{id}/related"))).await;
            let control = reply.header("cache-control").unwrap_or_default();
            assert!(control.starts_with("public, max-age="), "{control}");
            return;
        }
    }
    panic!("every new article was indexed before its list was asked for");
}

/// An answer kept by this server while a write's lists were being
/// recomputed is dropped once they are made: the new story shows without
/// waiting for the kept answer to expire.
#[actix_web::test]
async fn a_kept_answer_follows_the_lists_a_write_changes() {
    let dir = tempfile::TempDir::new().unwrap();
    let (app, harbour) = keeping_answers_over_the_corpus(&dir).await;
    let latest = create(
        &app,
        story(
            "Dockers return to the harbour cranes",
            "Dockers were back at the harbour cranes today after the strike. The union said container ships would be cleared within days and pay talks are over.",
            &["harbour"],
        ),
    )
    .await;
    let latest = latest["id"].as_i64().unwrap();
    // Asked for twice, and so kept, before the index takes the story in (a
    // fifth of a second after the write at the soonest).
    related(&app, harbour[0]).await;
    related(&app, harbour[0]).await;
    eventually(&app, harbour[0], "the new story joins", |items| {
        ids(items).contains(&latest)
    })
    .await;
}

/// A kept list outlives the engagement lag while the counters its items
/// show stay the same, and is made again once one of them changes.
#[actix_web::test]
async fn a_kept_list_outlives_the_lag_until_an_items_counts_change() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = config_with(&dir, false, &[("FRONTPAGE_RESPONSE_CACHE_SECS", "1")]);
    let app = app_with(config).await;
    let (harbour, _, _) = corpus(&app).await;
    up_to_date(&app).await;
    let (listing, listed) = (harbour[0], harbour[1]);
    let views = |items: &[Value]| {
        items
            .iter()
            .find(|item| item["article"]["id"] == listed)
            .expect("the listed article")["article"]["stats"]["views"]
            .as_i64()
            .unwrap()
    };
    let hits = || async {
        let metrics = send(&app, get("/metrics")).await.body;
        let series = r#"frontpage_cache_lookups_total{cache="responses",result="hit"}"#;
        metric(metrics.as_str().unwrap(), series).unwrap_or(0.0)
    };
    // Its items read, and so kept by the article cache: teasers read from
    // the store show counters read with them, not the ones kept, and are
    // served for the lag only.
    for id in ids(&related(&app, listing).await) {
        let read = send(&app, get(&format!("/api/v1/articles/{id}"))).await;
        assert_eq!(read.status, 200);
    }
    // Past the lag, but no counter it shows has changed: served as kept.
    // (Asked for twice, and so kept. The background work after a start,
    // such as a list stored again, may drop it meanwhile: a few tries.)
    let mut tries = 0;
    loop {
        for _ in 0..3 {
            assert_eq!(views(&related(&app, listing).await), 0);
        }
        actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
        let before = hits().await;
        assert_eq!(views(&related(&app, listing).await), 0);
        if hits().await == before + 1.0 {
            break;
        }
        tries += 1;
        assert!(tries < 20, "never served past the lag");
    }

    // A counted view of an item ends it.
    let view = send(
        &app,
        public(
            "POST",
            &format!("/api/v1/articles/{listed}/views"),
            json!({}),
        ),
    )
    .await;
    assert_eq!(view.status, 200, "{}", view.body);
    let before = hits().await;
    assert_eq!(views(&related(&app, listing).await), 1);
    assert_eq!(hits().await, before);
}

/// An older article's list is kept in memory cut short: a `limit` past
/// what is kept is served from the whole list, a shorter one from the same
/// list's start, and from the rest when unpublished items leave too few.
#[actix_web::test]
async fn a_long_limit_gets_an_older_articles_whole_list() {
    let dir = tempfile::TempDir::new().unwrap();
    let app = app_with(config_with(
        &dir,
        true,
        &[
            // Every list but the newest article's is an older one's, and
            // each request reaches the engine.
            ("FRONTPAGE_RELATED_LISTS", "1"),
            ("FRONTPAGE_RESPONSE_CACHE_SECS", "0"),
        ],
    ))
    .await;
    up_to_date(&app).await;
    let oldest = send(&app, get("/api/v1/articles?sort=published_at&limit=1")).await;
    let id = oldest.body["data"][0]["id"].as_i64().unwrap();
    let at_limit = |limit: usize| {
        let app = &app;
        async move {
            let path = format!("/api/v1/articles/{id}/related?limit={limit}");
            let reply = send(app, get(&path)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["data"].as_array().unwrap().clone()
        }
    };
    // Read (or computed) and kept cut, then read again past the cut.
    let whole = at_limit(50).await;
    assert!(
        whole.len() > frontpage::related::OLDER_ITEMS + 2,
        "{} items",
        whole.len()
    );
    assert_eq!(at_limit(50).await, whole);
    assert_eq!(at_limit(10).await, whole[..10]);
    assert_eq!(at_limit(whole.len()).await, whole);

    // Three of the kept items unpublished, and asked for before the lists
    // follow: the two spare items a page loads do not cover them, and the
    // rest of the list does.
    let gone = [0, 1, 3].map(|rank| whole[rank]["article"]["id"].as_i64().unwrap());
    for id in gone {
        unpublish(&app, id).await;
    }
    let left = at_limit(50).await;
    assert!(
        left.iter()
            .all(|item| !gone.contains(&item["article"]["id"].as_i64().unwrap()))
    );
    assert_eq!(ids(&at_limit(18).await), ids(&left[..18]));
}

/// Stops a server once its Related engine has nothing left to do: a
/// server dropped sooner may go on writing lists to the store that the next
/// one, or the test, reads.
async fn stop<S, B>(app: S)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    up_to_date(&app).await;
    drop(app);
}

/// Waits (20 s at most) until the Related index is built, has followed
/// every write and has stored every list it computed.
async fn up_to_date<S, B>(app: &S)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = send(app, get("/metrics")).await.body;
        let metrics = metrics.as_str().unwrap();
        if metric(metrics, "frontpage_related_up_to_date") == Some(1.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "related not up to date: {metrics}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the metric line that starts with `name` (labels included).
fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// A restarted server reads the stored lists of older articles into memory
/// before any request asks for one.
#[actix_web::test]
async fn a_restart_reads_older_stored_lists_into_memory_before_they_are_asked_for() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || config_with(&dir, false, &[("FRONTPAGE_RELATED_LISTS", "1")]);
    let first = app_with(config()).await;
    let (harbour, _, _) = corpus(&first).await;
    stop(first).await;
    let second = app_with(config()).await;
    up_to_date(&second).await;
    let mut before = Vec::new();
    for id in &harbour {
        let reply = send(&second, get(&format!("/api/v1/articles/{id}/related"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        before.push(reply.body);
    }
    stop(second).await;

    let app = app_with(config()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = send(&app, get("/metrics")).await.body;
        let older = "frontpage_cache_bytes{cache=\"older related lists\"}";
        let held = metric(metrics.as_str().unwrap(), older);
        if held.is_some_and(|bytes| bytes > 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no older list read: {held:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // What was read in shows as it did before the restart.
    for (id, before) in harbour.iter().zip(before) {
        let reply = send(&app, get(&format!("/api/v1/articles/{id}/related"))).await;
        assert_eq!(reply.body, before, "article {id}");
    }
}

/// A connection to the store in `dir`, as another process would open it.
fn store(dir: &tempfile::TempDir) -> diesel::SqliteConnection {
    use diesel::Connection;
    let path = dir.path().join("frontpage.db");
    diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap()
}

/// Runs `sql` on the store in `dir` as another process would.
fn store_sql(dir: &tempfile::TempDir, sql: &str) {
    use diesel::connection::SimpleConnection;
    let mut conn = store(dir);
    // The server's writer may hold the write lock for a moment.
    conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
    conn.batch_execute(sql).unwrap();
}

/// How many Related lists the store in `dir` holds.
fn stored_lists(dir: &tempfile::TempDir) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        lists: i64,
    }
    let mut conn = store(dir);
    diesel::sql_query("SELECT count(*) AS lists FROM related_lists")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .lists
}

/// The fingerprint stored with article `id`'s Related list, if one is.
fn stored_fingerprint(dir: &tempfile::TempDir, id: i64) -> Option<i64> {
    use diesel::{OptionalExtension, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        fingerprint: i64,
    }
    let mut conn = store(dir);
    diesel::sql_query(format!(
        "SELECT fingerprint FROM related_lists WHERE article_id = {id}"
    ))
    .get_result::<Stored>(&mut conn)
    .optional()
    .unwrap()
    .map(|stored| stored.fingerprint)
}

/// How many writes to articles the stored Related lists are recorded to
/// have followed, and how many the store has counted.
fn article_writes(dir: &tempfile::TempDir) -> (Option<i64>, i64) {
    use diesel::RunQueryDsl;
    #[derive(Debug, diesel::QueryableByName)]
    struct Writes {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        followed: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        counted: i64,
    }
    let mut conn = store(dir);
    let writes = diesel::sql_query(
        "SELECT (SELECT article_writes FROM related_sync) AS followed, \
         (SELECT count FROM article_writes) AS counted",
    )
    .get_result::<Writes>(&mut conn)
    .unwrap();
    (writes.followed, writes.counted)
}

/// The store records how many writes to articles the Related lists have
/// followed: every one, once the server's are followed; another process's
/// only once the server has noticed and followed it. (A start that finds
/// the two counts equal shows the stored lists while its index is built:
/// see the unit test in `related::build`.)
#[actix_web::test]
async fn the_lists_record_the_writes_to_articles_they_followed() {
    let dir = tempfile::TempDir::new().unwrap();
    let app = app_with(config_with(&dir, false, &[])).await;
    let (harbour, _, _) = corpus(&app).await;
    up_to_date(&app).await;
    let (followed, counted) = article_writes(&dir);
    assert!(counted >= 7, "seven stories written: {counted}");
    assert_eq!(followed, Some(counted));

    store_sql(
        &dir,
        &format!(
            "UPDATE articles SET title = title || ' (updated)', updated_at = datetime('now') \
             WHERE id = {}",
            harbour[0]
        ),
    );
    assert_eq!(article_writes(&dir), (Some(counted), counted + 1));
    // Noticed by a request once the writer has seen it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while article_writes(&dir) != (Some(counted + 1), counted + 1) {
        assert!(Instant::now() < deadline, "{:?}", article_writes(&dir));
        send(&app, get("/api/v1/articles")).await;
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    stop(app).await;
}

/// Two servers on one store fall quiet: each takes the other's commits for
/// another process's writes and looks at every article again, and a look
/// that finds nothing new writes nothing. (Its record of the look was a
/// commit, which the other server took for a write in turn, for ever.)
/// Here the first sees the second count a view.
#[actix_web::test]
async fn two_servers_on_one_store_do_not_set_each_other_writing() {
    use diesel::{QueryableByName, RunQueryDsl, sql_query};
    #[derive(QueryableByName)]
    struct DataVersion {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        data_version: i64,
    }

    let dir = tempfile::TempDir::new().unwrap();
    let first = app_with(config_with(&dir, false, &[])).await;
    let (harbour, _, _) = corpus(&first).await;
    up_to_date(&first).await;
    let second = app_with(config_with(&dir, false, &[])).await;
    up_to_date(&second).await;
    let path = format!("/api/v1/articles/{}/views", harbour[0]);
    let viewed = send(&second, public("POST", &path, json!({}))).await;
    assert_eq!(viewed.status, 200, "{}", viewed.body);

    // Moves whenever a connection other than this one commits.
    let mut watching = store(&dir);
    let mut version = || {
        sql_query("PRAGMA data_version")
            .get_result::<DataVersion>(&mut watching)
            .unwrap()
            .data_version
    };
    let quiet_for = Duration::from_secs(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut last, mut since) = (version(), Instant::now());
    while since.elapsed() < quiet_for {
        assert!(Instant::now() < deadline, "the store never fell quiet");
        // Each server notices another's commit with a request.
        send(&first, get("/api/v1/articles")).await;
        send(&second, get("/api/v1/articles")).await;
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        let now = version();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    let metrics = send(&first, get("/metrics")).await.body;
    let noticed = metric(
        metrics.as_str().unwrap(),
        "frontpage_store_commits_by_others_total",
    );
    assert!(
        noticed >= Some(1.0),
        "the first noticed the view: {noticed:?}"
    );
    stop(first).await;
    stop(second).await;
}

/// A stored list that no longer holds (it holds an article changed since)
/// is found by the refresher's look through the stored lists, and computed
/// and stored again before anyone asks for it.
#[actix_web::test]
async fn a_stored_list_that_no_longer_holds_is_stored_anew_unasked() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || config_with(&dir, false, &[("FRONTPAGE_RELATED_LISTS", "1")]);
    let first = app_with(config()).await;
    let (harbour, _, _) = corpus(&first).await;
    up_to_date(&first).await;
    stop(first).await;
    // Every article changed an hour ago, as far as the lists can tell: no
    // stored list holds, and none is recent enough for a start to look at
    // it as a change since the last sync.
    store_sql(
        &dir,
        "UPDATE articles SET updated_at = datetime(updated_at, '-1 hour')",
    );
    let id = harbour[0];
    let before = stored_fingerprint(&dir, id).expect("a stored list");

    let app = app_with(config()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fingerprint = stored_fingerprint(&dir, id);
        if fingerprint.is_some_and(|stored| stored != before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the list is not stored anew: {fingerprint:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    stop(app).await;
}

/// While the store refuses the lists the refresher computed (a full disk,
/// say), Related answers as it would with them stored and the refresher
/// says it is not up to date; once the store takes writes again, every
/// list is stored.
#[actix_web::test]
async fn lists_the_store_refused_are_stored_once_it_takes_writes_again() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || config_with(&dir, false, &[("FRONTPAGE_RELATED_LISTS", "1")]);
    let app = app_with(config()).await;
    up_to_date(&app).await;
    store_sql(
        &dir,
        "CREATE TRIGGER full_disk BEFORE INSERT ON related_lists \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    );
    let (harbour, glacier, marathon) = corpus(&app).await;
    let articles: Vec<i64> = harbour
        .iter()
        .chain(&glacier)
        .copied()
        .chain([marathon])
        .collect();

    // The stories of one topic find each other, stored or not.
    for id in &harbour {
        eventually(&app, *id, "the other harbour stories", |items| {
            let found = ids(items);
            harbour
                .iter()
                .all(|other| other == id || found.contains(other))
        })
        .await;
    }
    for id in &articles {
        let reply = send(&app, get(&format!("/api/v1/articles/{id}/related"))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Seconds on, with every attempt to store them refused, the lists
    // still wait, and the refresher does not call itself up to date.
    actix_web::rt::time::sleep(Duration::from_secs(6)).await;
    let metrics = send(&app, get("/metrics")).await.body;
    let metrics = metrics.as_str().unwrap();
    assert_eq!(
        metric(metrics, "frontpage_related_up_to_date"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metric(metrics, "frontpage_related_lists_waiting").is_some_and(|waiting| waiting > 0.0),
        "{metrics}"
    );
    assert_eq!(stored_lists(&dir), 0);

    store_sql(&dir, "DROP TRIGGER full_disk");
    up_to_date(&app).await;
    assert_eq!(stored_lists(&dir), articles.len() as i64);
    for id in &harbour {
        let found = ids(&related(&app, *id).await);
        assert!(
            harbour
                .iter()
                .all(|other| other == id || found.contains(other)),
            "article {id}: {found:?}"
        );
    }
}

/// Following a publish recomputes only the lists it reaches; the others
/// keep the word statistics of the corpus they were made from. Once enough
/// has changed (here twenty articles published on the demo's sixty-odd),
/// the index is built again, so a restart shows every list as the server
/// did before it.
#[actix_web::test]
async fn after_twenty_publishes_a_restart_shows_the_lists_the_server_showed() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || config_with(&dir, true, &[]);
    let app = app_with(config()).await;
    up_to_date(&app).await;
    // Twenty changes: the fewest after which the index is built again.
    for day in 1..=20 {
        create(
            &app,
            story(
                &format!("Tidal barrier gates reopen after storm inspection, day {day}"),
                &format!("Engineers reopened the tidal barrier gates on day {day} after the storm. The inspection found the gates sound, and river traffic resumed at the barrier by noon."),
                &[],
            ),
        )
        .await;
    }
    up_to_date(&app).await;
    let listed = send(&app, get("/api/v1/articles?limit=100")).await.body;
    let articles: Vec<i64> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|article| article["id"].as_i64().unwrap())
        .collect();
    assert!(articles.len() > 50, "{} articles", articles.len());
    let mut shown = Vec::new();
    for id in &articles {
        shown.push(related(&app, *id).await);
    }
    stop(app).await;

    let app = app_with(config()).await;
    up_to_date(&app).await;
    let differ: Vec<i64> = {
        let mut differ = Vec::new();
        for (id, before) in articles.iter().zip(&shown) {
            if &related(&app, *id).await != before {
                differ.push(*id);
            }
        }
        differ
    };
    assert!(
        differ.is_empty(),
        "lists that differ after the restart: {differ:?}"
    );
}
