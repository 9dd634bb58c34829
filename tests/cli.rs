//! The command line: `export` writes NDJSON that `import` takes back
//! unchanged; `import` also reads RSS and Atom feeds, reports bad lines and
//! fails for them, and prints plain progress lines when not on a terminal.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{get, send, test_app};

fn frontpage(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frontpage"))
        .args(args)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Writes an RSS 2.0 feed titled "Wire" with these `<item>`s.
fn write_feed(path: &Path, items: &str) {
    let feed = format!(
        r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example</link>
<description>Agency copy</description>
{items}
</channel></rss>"#
    );
    std::fs::write(path, feed).unwrap();
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Imports the feed `file` into `news` and checks that the command
/// succeeded and reported `counts` ("1 created, 0 updated, ...").
fn import_feed(db: &Path, file: &Path, counts: &str) {
    let output = frontpage(
        db,
        &["import", "--category", "news", file.to_str().unwrap()],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains(counts), "{output:?}");
}

#[actix_web::test]
async fn export_then_import_changes_nothing() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let file = dir.path().join("articles.ndjson");
    let export = frontpage(&db, &["export", "--output", file.to_str().unwrap()]);
    assert!(export.status.success(), "{export:?}");
    // The articles' lines, after the categories', authors' and tags'.
    let lines = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("{\"kind\":"))
        .count();
    assert!(lines > 10, "{lines} lines");

    let import = frontpage(&db, &["import", file.to_str().unwrap()]);
    assert!(import.status.success(), "{import:?}");
    assert!(
        stdout(&import).contains(&format!(
            "0 created, 0 updated, {lines} unchanged, 0 failed"
        )),
        "{}",
        stdout(&import)
    );
    let progress = String::from_utf8_lossy(&import.stderr);
    assert!(progress.contains(&format!("{lines}/{lines}")), "{progress}");
    // Every public article is in the file, as the API shows it.
    let list = send(&app, get("/api/v1/articles?limit=1")).await;
    let newest = &list.body["data"][0];
    let text = std::fs::read_to_string(&file).unwrap();
    let line: serde_json::Value = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .find(|line: &serde_json::Value| line["slug"] == newest["slug"])
        .expect("the newest article is exported");
    assert_eq!(line["title"], newest["title"]);
    assert_eq!(line["category"], newest["category"]["slug"]);
}

#[actix_web::test]
async fn feeds_import_once_and_bad_lines_are_reported() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    write_feed(
        &rss,
        r#"<item><title>Glacier retreat measured</title><link>https://wire.example/1</link>
<description>Scientists measured it.</description><category>Climate</category>
<pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>
<item><title>Comet seen over the bay</title><guid isPermaLink="false">wire-2</guid>
<link>https://wire.example/2</link>
<description>&lt;p&gt;Bright &amp; clear.&lt;/p&gt;</description>
<pubDate>Tue, 06 Jan 2026 10:00:00 GMT</pubDate></item>"#,
    );
    // A category that does not exist stops the import before anything is
    // stored, saying so, even from a file given before the feed.
    let ndjson = dir.path().join("first.ndjson");
    let tag = serde_json::json!({"kind": "tag", "slug": "made-first", "name": "Made first"});
    let line = serde_json::json!({"title": "Stored before the feed", "category": "news",
        "body_html": "<p>Text.</p>", "status": "published"});
    std::fs::write(&ndjson, format!("{tag}\n{line}\n")).unwrap();
    let output = frontpage(
        &db,
        &[
            "import",
            "--category",
            "nowhere",
            ndjson.to_str().unwrap(),
            rss.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("no category has the slug `nowhere`") && said.contains("--category"),
        "{said}"
    );
    send(&app, get("/api/v1/articles/stored-before-the-feed"))
        .await
        .assert_problem(404, &[]);
    let tags = send(
        &app,
        common::admin("GET", "/api/v1/tags?limit=100", serde_json::Value::Null),
    )
    .await;
    assert!(
        !tags.body.to_string().contains("made-first"),
        "{}",
        tags.body
    );
    import_feed(&db, &rss, "2 created, 0 updated, 0 unchanged, 0 failed");
    import_feed(&db, &rss, "0 created, 0 updated, 2 unchanged");

    // The wire corrects both headlines, and moves the second story (known
    // by its guid) to another link: each entry updates the article it
    // became, which keeps its slug.
    write_feed(
        &rss,
        r#"<item><title>Glacier retreat measured at record pace</title><link>https://wire.example/1/</link>
<description>Scientists measured it.</description><category>Climate</category>
<pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>
<item><title>Comet seen over the harbour</title><guid isPermaLink="false">wire-2</guid>
<link>https://wire.example/comet</link>
<description>&lt;p&gt;Bright &amp; clear.&lt;/p&gt;</description>
<pubDate>Tue, 06 Jan 2026 10:00:00 GMT</pubDate></item>"#,
    );
    import_feed(&db, &rss, "0 created, 2 updated, 0 unchanged, 0 failed");
    let comet = send(
        &app,
        get("/api/v1/articles/comet-seen-over-the-bay-2026-01-06"),
    )
    .await;
    assert_eq!(comet.body["data"]["title"], "Comet seen over the harbour");

    let found = send(&app, get("/api/v1/articles?q=glacier")).await;
    let from_wire: Vec<&serde_json::Value> = found.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["source"] == "Wire")
        .collect();
    assert_eq!(from_wire.len(), 1, "{}", found.body);
    let item = from_wire[0];
    assert_eq!(item["title"], "Glacier retreat measured at record pace");
    assert_eq!(item["slug"], "glacier-retreat-measured-2026-01-05");

    // Another entry with the old headline on the same day is another story,
    // and importing both again changes neither.
    let same_headline = dir.path().join("same.rss");
    write_feed(
        &same_headline,
        r#"<item><title>Glacier retreat measured</title><link>https://wire.example/4</link>
<description>A second glacier.</description>
<pubDate>Mon, 05 Jan 2026 18:00:00 GMT</pubDate></item>"#,
    );
    import_feed(&db, &same_headline, "1 created, 0 updated, 0 unchanged");
    import_feed(&db, &rss, "0 created, 0 updated, 2 unchanged");
    import_feed(&db, &same_headline, "0 created, 0 updated, 1 unchanged");
    let second = send(
        &app,
        get("/api/v1/articles/glacier-retreat-measured-2026-01-05-2"),
    )
    .await;
    assert_eq!(second.body["data"]["summary"], "A second glacier.");

    // The same headline on another day is another story.
    let next_day = dir.path().join("next.rss");
    write_feed(
        &next_day,
        r#"<item><title>Glacier retreat measured</title><link>https://wire.example/3</link>
<description>Measured again.</description>
<pubDate>Thu, 08 Jan 2026 10:00:00 GMT</pubDate></item>"#,
    );
    import_feed(&db, &next_day, "1 created, 0 updated, 0 unchanged");
    assert_eq!(item["source"], "Wire");
    assert_eq!(item["category"]["slug"], "news");
    assert_eq!(item["tags"][0]["name"], "Climate");

    let bad = dir.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"title\": \"Fine\", \"category\": \"news\", \"body_html\": \"<p>ok</p>\"}\n\
         {\"title\": \"No such place\", \"category\": \"nowhere\", \"body_html\": \"<p>x</p>\"}\n\
         not json\n",
    )
    .unwrap();
    let output = frontpage(&db, &["import", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(
        text.contains("1 created, 0 updated, 0 unchanged, 2 failed"),
        "{text}"
    );
    assert!(
        text.contains("line 2: category") && text.contains("line 3:"),
        "{text}"
    );
}

/// A wire feed imported again (by cron, say) leaves alone what editors did
/// to its stories while their entries are unchanged: a story taken off the
/// site stays off, a deleted one stays deleted, a corrected headline and a
/// move to another section stay. An entry the wire changes updates its
/// story, still off the site and in the section the desk chose.
#[actix_web::test]
async fn a_feed_read_again_keeps_what_editors_did() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    let items = |pulled_headline: &str| {
        format!(
            r#"<item><title>{pulled_headline}</title><guid isPermaLink="false">w-1</guid>
<description>Claims about a minister.</description><pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>
<item><title>Flash: earthquake hits coast</title><guid isPermaLink="false">w-2</guid>
<description>A strong quake.</description><pubDate>Mon, 05 Jan 2026 11:00:00 GMT</pubDate></item>
<item><title>Cup final moved</title><guid isPermaLink="false">w-3</guid>
<description>The final moves.</description><pubDate>Mon, 05 Jan 2026 12:00:00 GMT</pubDate></item>"#
        )
    };
    write_feed(&rss, &items("Minister accused"));
    import_feed(&db, &rss, "3 created, 0 updated, 0 unchanged, 0 failed");
    let pulled = "/api/v1/articles/minister-accused-2026-01-05";
    let corrected = "/api/v1/articles/flash-earthquake-hits-coast-2026-01-05";
    let deleted = "/api/v1/articles/cup-final-moved-2026-01-05";
    let edits = [
        (
            pulled,
            serde_json::json!({"status": "draft", "author": "tomasz-quill", "dateline": "LONDON",
                "image_url": "https://img.example.com/minister.jpg"}),
        ),
        (
            corrected,
            serde_json::json!({"title": "Earthquake hits the coast", "category": "sport"}),
        ),
    ];
    for (uri, patch) in edits {
        let reply = send(&app, common::admin("PATCH", uri, patch)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let reply = send(
        &app,
        common::admin("DELETE", deleted, serde_json::Value::Null),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    import_feed(&db, &rss, "0 created, 0 updated, 3 unchanged, 0 failed");
    // Past the quarter second in which the server sees another process's
    // commit, had there been one.
    actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
    send(&app, get(pulled)).await.assert_problem(404, &[]);
    send(&app, get(deleted)).await.assert_problem(404, &[]);
    let shown = send(&app, get(corrected)).await;
    assert_eq!(shown.body["data"]["title"], "Earthquake hits the coast");
    assert_eq!(shown.body["data"]["category"]["slug"], "sport");

    write_feed(&rss, &items("Minister accused of misconduct"));
    import_feed(&db, &rss, "0 created, 1 updated, 2 unchanged, 0 failed");
    let started = std::time::Instant::now();
    let held = loop {
        let held = send(&app, common::admin("GET", pulled, serde_json::Value::Null)).await;
        if held.body["data"]["title"] == "Minister accused of misconduct" {
            break held;
        }
        assert!(
            started.elapsed().as_secs() < 2,
            "never updated: {}",
            held.body
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(held.body["data"]["status"], "draft");
    assert_eq!(held.body["data"]["author"]["slug"], "tomasz-quill");
    assert_eq!(held.body["data"]["dateline"], "LONDON");
    assert_eq!(
        held.body["data"]["image_url"],
        "https://img.example.com/minister.jpg"
    );
    send(&app, get(pulled)).await.assert_problem(404, &[]);
    assert_eq!(held.body["data"]["category"]["slug"], "news");
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("x.db");
    for command in [
        "serve", "migrate", "import", "export", "openapi", "keys", "demo", "eval",
    ] {
        let output = frontpage(&db, &[command, "--help"]);
        assert!(output.status.success(), "{command}: {output:?}");
        assert!(stdout(&output).contains("Usage"), "{command}");
    }
}

#[test]
fn commands_on_a_store_that_does_not_exist_fail_and_create_none() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("elsewhere").join("frontpage.db");
    let backup = dir.path().join("backup.db");
    let feed = dir.path().join("empty.ndjson");
    std::fs::write(&feed, "").unwrap();
    for args in [
        vec!["export"],
        vec!["backup", backup.to_str().unwrap()],
        vec!["keys", "list"],
        vec!["import", feed.to_str().unwrap()],
    ] {
        let output = frontpage(&db, &args);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("no database at"), "{args:?}: {said}");
    }
    assert!(!db.exists() && !db.parent().unwrap().exists());
    assert!(!backup.exists());
}

/// Commands that only read the store (a backup, an export, the list of
/// keys) write nothing to it: a server on the same store would take any
/// write for another process's and drop everything it has cached.
#[test]
fn reading_commands_leave_the_store_untouched() {
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection, sql_query};

    #[derive(QueryableByName)]
    struct DataVersion {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        data_version: i64,
    }
    /// Moves, on the same connection, whenever another connection commits.
    fn data_version(conn: &mut SqliteConnection) -> i64 {
        sql_query("PRAGMA data_version")
            .get_result::<DataVersion>(conn)
            .unwrap()
            .data_version
    }

    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("frontpage.db");
    for args in [
        &[
            "demo",
            "--articles",
            "200",
            "--readers",
            "50",
            "--views",
            "2000",
        ][..],
        &["keys", "create", "wire", "--scope", "write"],
    ] {
        let output = frontpage(&db, args);
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
    // With no other connection open, as after a server stopped.
    assert!(stdout(&frontpage(&db, &["keys", "list"])).contains("wire"));
    let mut watching = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let before = data_version(&mut watching);
    let backup = dir.path().join("backup.db");
    let export = dir.path().join("export.ndjson");
    for args in [
        vec!["backup", backup.to_str().unwrap()],
        vec!["export", "--output", export.to_str().unwrap()],
        vec!["keys", "list"],
    ] {
        let output = frontpage(&db, &args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert_eq!(
            data_version(&mut watching),
            before,
            "{args:?} wrote to the store"
        );
    }
    let exported = std::fs::read_to_string(&export).unwrap();
    assert_eq!(
        exported
            .lines()
            .filter(|line| line.contains("\"slug\":\"synthetic-story-"))
            .count(),
        200
    );

    // A store an older version made: backed up as it is, and neither
    // exported nor listed from, as its tables are not yet as this version
    // reads them; none of it migrates the store.
    sql_query(
        "DELETE FROM __diesel_schema_migrations \
         WHERE version = (SELECT max(version) FROM __diesel_schema_migrations)",
    )
    .execute(&mut watching)
    .unwrap();
    let before = data_version(&mut watching);
    let old_backup = dir.path().join("old-backup.db");
    let output = frontpage(&db, &["backup", old_backup.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    for args in [vec!["export"], vec!["keys", "list"]] {
        let output = frontpage(&db, &args);
        assert!(!output.status.success(), "{args:?}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("needs migrating"), "{args:?}: {said}");
    }
    assert_eq!(
        data_version(&mut watching),
        before,
        "a command migrated the store"
    );

    // Files that are not stores at all: refused by each, and no backup
    // of them is left.
    let other = dir.path().join("other.db");
    let mut conn = SqliteConnection::establish(other.to_str().unwrap()).unwrap();
    sql_query("CREATE TABLE notes (text TEXT)")
        .execute(&mut conn)
        .unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a database, but long enough to look like one's header\n",
    )
    .unwrap();
    let copy = dir.path().join("copy.db");
    for file in [&other, &text] {
        for args in [
            vec!["backup", copy.to_str().unwrap()],
            vec!["export"],
            vec!["keys", "list"],
        ] {
            let output = frontpage(file, &args);
            assert!(!output.status.success(), "{args:?}: {output:?}");
            let said = String::from_utf8_lossy(&output.stderr);
            assert!(
                said.contains("is not a frontpage database"),
                "{args:?}: {said}"
            );
        }
    }
    assert!(!copy.exists());
}

#[actix_web::test]
async fn a_backup_of_the_live_store_restores_to_the_same_content() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    // A view the backup must hold, written through the running app.
    let reply = send(
        &app,
        common::public("POST", "/api/v1/articles/1/views", serde_json::json!({})),
    )
    .await;
    assert_eq!(reply.status, 200);
    let before = send(&app, get("/api/v1/articles?total=true&limit=100")).await;
    let views = send(&app, get("/api/v1/articles/1")).await.body["data"]["stats"]["views"].clone();

    let copy = dir.path().join("backup.db");
    let backup = frontpage(&db, &["backup", copy.to_str().unwrap()]);
    assert!(backup.status.success(), "{backup:?}");
    assert!(
        stdout(&backup).contains("integrity ok"),
        "{}",
        stdout(&backup)
    );
    let again = frontpage(&db, &["backup", copy.to_str().unwrap()]);
    assert!(!again.status.success(), "a backup overwrote a file");

    // Restoring is serving from the copy.
    let restored_dir = tempfile::TempDir::new().unwrap();
    std::fs::copy(&copy, restored_dir.path().join("frontpage.db")).unwrap();
    let config = common::config(&restored_dir, false);
    let restored = actix_web::test::init_service(frontpage::app::app(
        frontpage::server::prepare(&config).unwrap(),
        frontpage::openapi::spec(),
    ))
    .await;
    let after = send(&restored, get("/api/v1/articles?total=true&limit=100")).await;
    assert_eq!(after.body["meta"]["total"], before.body["meta"]["total"]);
    assert_eq!(after.body["data"], before.body["data"]);
    let restored_views =
        send(&restored, get("/api/v1/articles/1")).await.body["data"]["stats"]["views"].clone();
    assert_eq!(restored_views, views);
}

#[actix_web::test]
async fn a_json_feed_imports_like_rss_and_bad_entries_are_named_as_entries() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let feed = dir.path().join("wire.json");
    // Pretty-printed, as JSON Feeds are. The second item has no title, which
    // JSON Feed allows: its text starts the headline. The third has no
    // text at all.
    let json_feed = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Wire",
        "items": [
            {"id": "w-1", "url": "https://wire.example/1", "title": "Ferry service resumes",
             "content_html": "<p>The ferry sails again.</p>",
             "date_published": "2026-01-05T09:00:00Z"},
            {"id": "w-2", "content_html": "<p>Harbour reopens after the storm. Ferries sail at noon.</p>",
             "date_published": "2026-01-05T10:00:00Z"},
            {"id": "w-3", "content_html": "",
             "date_published": "2026-01-05T11:00:00Z"}
        ]
    });
    // With a byte order mark, as some tools write one.
    let text = format!(
        "\u{feff}{}",
        serde_json::to_string_pretty(&json_feed).unwrap()
    );
    std::fs::write(&feed, text).unwrap();
    let output = frontpage(
        &db,
        &["import", "--category", "news", feed.to_str().unwrap()],
    );
    assert!(!output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.contains("2 created, 0 updated, 0 unchanged, 1 failed"),
        "{text}"
    );
    assert!(text.contains("entry 3: title"), "{text}");
    let untitled = send(
        &app,
        get("/api/v1/articles/harbour-reopens-after-the-storm-ferries-sail-at-noon-2026-01-05"),
    )
    .await;
    assert_eq!(
        untitled.body["data"]["title"], "Harbour reopens after the storm. Ferries sail at noon.",
        "{}",
        untitled.body
    );
    let ferry = send(
        &app,
        get("/api/v1/articles/ferry-service-resumes-2026-01-05"),
    )
    .await;
    assert_eq!(ferry.status, 200, "{}", ferry.body);
    assert_eq!(ferry.body["data"]["source"], "Wire");
}

/// Readers see text, not markup: an Atom title of `type="html"` is made
/// plain, and a summary loses a script's code with its tags (its body is
/// sanitised as an API body is).
#[actix_web::test]
async fn an_atom_html_title_and_a_summary_with_a_script_import_as_text() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let atom = dir.path().join("agency.atom");
    std::fs::write(
        &atom,
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Agency</title><id>urn:agency</id>
<updated>2026-01-05T10:00:00Z</updated>
<entry><id>urn:agency:1</id><title type="html">Tides &lt;b&gt;rise&lt;/b&gt; at Dover &amp;amp; Calais</title>
<updated>2026-01-05T10:00:00Z</updated>
<summary type="html">&lt;p&gt;Higher than forecast.&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;</summary>
<content type="html">&lt;p&gt;The tide came in.&lt;/p&gt;&lt;script&gt;alert(2)&lt;/script&gt;</content></entry>
<entry><id>urn:agency:2</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Ferries <b>resume</b> &amp; ports reopen</div></title>
<updated>2026-01-05T11:00:00Z</updated><content type="html">&lt;p&gt;Sailings again.&lt;/p&gt;</content></entry>
</feed>"#,
    )
    .unwrap();
    import_feed(&db, &atom, "2 created, 0 updated, 0 unchanged, 0 failed");
    let ferries = send(
        &app,
        get("/api/v1/articles/ferries-resume-ports-reopen-2026-01-05"),
    )
    .await;
    assert_eq!(
        ferries.body["data"]["title"], "Ferries resume & ports reopen",
        "{}",
        ferries.body
    );
    let tides = send(
        &app,
        get("/api/v1/articles/tides-rise-at-dover-calais-2026-01-05"),
    )
    .await;
    assert_eq!(tides.status, 200, "{}", tides.body);
    let data = &tides.body["data"];
    assert_eq!(data["title"], "Tides rise at Dover & Calais");
    assert_eq!(data["summary"], "Higher than forecast.");
    assert_eq!(data["body_html"], "<p>The tide came in.</p>");
    import_feed(&db, &atom, "0 created, 0 updated, 2 unchanged");
}

/// Entries imported before the store recorded what they said (migration
/// 16): the next import records it and leaves their articles as editors
/// may have left them; a change after that updates them.
#[actix_web::test]
async fn entries_from_before_digests_are_recorded_not_rewritten() {
    use diesel::{Connection, RunQueryDsl};

    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    let item = |headline: &str| {
        format!(
            r#"<item><title>{headline}</title><guid isPermaLink="false">w-1</guid>
<description>Claims.</description><pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>"#
        )
    };
    write_feed(&rss, &item("Minister accused"));
    import_feed(&db, &rss, "1 created");
    let uri = "/api/v1/articles/minister-accused-2026-01-05";
    let desk = serde_json::json!({"title": "Minister accused: what we know"});
    let reply = send(&app, common::admin("PATCH", uri, desk)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // As migration 16 leaves an entry imported before it.
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::sql_query("UPDATE feed_entries SET digest = NULL")
        .execute(&mut conn)
        .unwrap();
    drop(conn);

    write_feed(&rss, &item("Minister accused of misconduct"));
    import_feed(&db, &rss, "0 created, 0 updated, 1 unchanged, 0 failed");
    // Past the quarter second in which the server sees another process's
    // commit.
    actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
    let shown = send(&app, get(uri)).await;
    assert_eq!(
        shown.body["data"]["title"],
        "Minister accused: what we know"
    );
    import_feed(&db, &rss, "0 created, 0 updated, 1 unchanged, 0 failed");
    write_feed(&rss, &item("Minister resigns"));
    import_feed(&db, &rss, "0 created, 1 updated, 0 unchanged, 0 failed");
}

/// An RSS title's markup and entities, escaped once more as publishers do,
/// reach readers as the text they stand for, as its description's do; a
/// title with a `<` of its own keeps it.
#[actix_web::test]
async fn an_rss_title_escaped_twice_imports_as_its_text() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    write_feed(
        &rss,
        r#"<item><title>Tom &amp;amp; Jerry &lt;b&gt;return&lt;/b&gt;</title><guid>w-1</guid>
<description>Back on screen.</description><pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>
<item><title>Rust's Vec&lt;T&gt; &amp; friends explained</title><guid>w-2</guid>
<description>A guide.</description><pubDate>Mon, 05 Jan 2026 11:00:00 GMT</pubDate></item>"#,
    );
    import_feed(&db, &rss, "2 created");
    let found = send(&app, get("/api/v1/articles/tom-jerry-return-2026-01-05")).await;
    assert_eq!(
        found.body["data"]["title"], "Tom & Jerry return",
        "{}",
        found.body
    );
    // A `<` of the title's own, with no sign of markup, is text.
    let found = send(
        &app,
        get("/api/v1/articles/rust-s-vec-t-friends-explained-2026-01-05"),
    )
    .await;
    assert_eq!(
        found.body["data"]["title"], "Rust's Vec<T> & friends explained",
        "{}",
        found.body
    );
}

/// Two entries of one feed with the same id: the second is refused, named
/// by the id its feed gives it and the entry that had it first.
#[actix_web::test]
async fn a_feed_entry_repeated_in_one_file_is_named_by_its_id() {
    let (_app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let atom = dir.path().join("agency.atom");
    let entry = |title: &str| {
        format!(
            "<entry><id>urn:agency:1</id><title>{title}</title>\
             <updated>2026-01-05T10:00:00Z</updated><content type=\"html\">&lt;p&gt;Text.&lt;/p&gt;</content></entry>"
        )
    };
    std::fs::write(
        &atom,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Agency</title><id>urn:agency</id>
<updated>2026-01-05T10:00:00Z</updated>{}{}</feed>"#,
            entry("First take"),
            entry("Second take")
        ),
    )
    .unwrap();
    let output = frontpage(
        &db,
        &["import", "--category", "news", atom.to_str().unwrap()],
    );
    let text = stdout(&output);
    assert!(
        text.contains("entry 2: id `urn:agency:1` is also the id of entry 1;"),
        "{text}"
    );
}

/// A wire flash, a headline with no text of its own, is imported with its
/// headline as its body rather than refused for an empty one.
#[actix_web::test]
async fn a_headline_only_feed_item_is_its_own_body() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    write_feed(
        &rss,
        r#"<item><title>Flash: ferry aground off Dover</title><guid isPermaLink="false">w-9</guid>
<pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>"#,
    );
    import_feed(&db, &rss, "1 created, 0 updated, 0 unchanged, 0 failed");
    let flash = send(
        &app,
        get("/api/v1/articles/flash-ferry-aground-off-dover-2026-01-05"),
    )
    .await;
    assert_eq!(
        flash.body["data"]["body_html"], "<p>Flash: ferry aground off Dover</p>",
        "{}",
        flash.body
    );
}

/// A wire entry tagged with more categories than an article takes, or with
/// a phrase too long for a tag, comes in with the first twenty that can be
/// tags, rather than being refused on every import.
#[actix_web::test]
async fn an_entry_with_too_many_or_too_long_categories_keeps_twenty_that_fit() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let rss = dir.path().join("wire.rss");
    let long = "a phrase far too long for a tag ".repeat(5);
    let categories: String = std::iter::once(format!("<category>{long}</category>"))
        .chain(["<category>Topic 1</category>".to_string()])
        // The same tag, spelled otherwise: one of the twenty.
        .chain(["<category>topic 1</category>".to_string()])
        .chain((2..=22).map(|n| format!("<category>Topic {n}</category>")))
        .collect();
    write_feed(
        &rss,
        &format!(
            r#"<item><title>Ports reopen</title><guid isPermaLink="false">w-7</guid>
<description>&lt;p&gt;Ships sail again.&lt;/p&gt;</description>{categories}
<pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>"#
        ),
    );
    import_feed(&db, &rss, "1 created, 0 updated, 0 unchanged, 0 failed");
    let ports = send(&app, get("/api/v1/articles/ports-reopen-2026-01-05")).await;
    let tags: Vec<&str> = ports.body["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=20).map(|n| format!("Topic {n}")).collect();
    assert_eq!(tags, expected, "{}", ports.body);
}

/// Text that is not HTML stays text: an Atom summary and content of the
/// default `type`, and JSON Feed's `summary` and `content_text`, keep
/// their angle brackets as characters, and the content's paragraphs.
#[actix_web::test]
async fn feed_texts_that_are_not_html_import_as_text() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let atom = dir.path().join("agency.atom");
    std::fs::write(
        &atom,
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Agency</title><id>urn:agency</id>
<updated>2026-01-05T10:00:00Z</updated>
<entry><id>urn:agency:1</id><title>Tag soup</title><updated>2026-01-05T10:00:00Z</updated>
<summary>Why 3 &lt; 4 and &lt;br&gt; matter</summary>
<content type="text">Use a &lt;br&gt; tag.

Or &lt;p&gt; &amp; friends.</content></entry>
</feed>"#,
    )
    .unwrap();
    import_feed(&db, &atom, "1 created, 0 updated, 0 unchanged, 0 failed");
    let soup = send(&app, get("/api/v1/articles/tag-soup-2026-01-05")).await;
    let data = &soup.body["data"];
    assert_eq!(data["summary"], "Why 3 < 4 and <br> matter", "{data}");
    assert_eq!(
        data["body_html"],
        "<p>Use a &lt;br&gt; tag.</p><p>Or &lt;p&gt; &amp; friends.</p>"
    );

    let json_feed = dir.path().join("wire.json");
    let items = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Wire",
        "items": [{"id": "w-1", "title": "Bold claims", "summary": "Summary <i>x</i>",
                   "content_text": "Not <b>bold</b>.\nSecond line.",
                   "date_published": "2026-01-05T09:00:00Z"}]
    });
    std::fs::write(&json_feed, items.to_string()).unwrap();
    import_feed(
        &db,
        &json_feed,
        "1 created, 0 updated, 0 unchanged, 0 failed",
    );
    let bold = send(&app, get("/api/v1/articles/bold-claims-2026-01-05")).await;
    let data = &bold.body["data"];
    assert_eq!(data["summary"], "Summary <i>x</i>", "{data}");
    assert_eq!(
        data["body_html"],
        "<p>Not &lt;b&gt;bold&lt;/b&gt;.<br>Second line.</p>"
    );

    // An RSS 1.0 description is HTML, as an RSS 2.0 one is, though its
    // specification (and feed-rs) calls it text.
    let rdf = dir.path().join("wire.rdf");
    std::fs::write(
        &rdf,
        r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://wire.example/"><title>Wire</title><link>https://wire.example/</link>
<description>Agency copy</description></channel>
<item rdf:about="https://wire.example/7"><title>Harbour reopens</title><link>https://wire.example/7</link>
<description>&lt;p&gt;Ships &lt;b&gt;sail&lt;/b&gt; again.&lt;/p&gt;</description>
<dc:date>2026-01-05T09:00:00Z</dc:date></item>
</rdf:RDF>"#,
    )
    .unwrap();
    import_feed(&db, &rdf, "1 created, 0 updated, 0 unchanged, 0 failed");
    let harbour = send(&app, get("/api/v1/articles/harbour-reopens-2026-01-05")).await;
    let data = &harbour.body["data"];
    assert_eq!(data["summary"], "Ships sail again.", "{data}");
    assert_eq!(data["body_html"], "<p>Ships <b>sail</b> again.</p>");
}

#[actix_web::test]
async fn an_export_moves_a_whole_site_into_an_empty_store() {
    let (app, dir) = test_app(true).await;
    // A year as a tag and as a category: slugs of digits alone, as their
    // names make them.
    for (path, body) in [
        ("/api/v1/tags", serde_json::json!({"name": "2026"})),
        (
            "/api/v1/categories",
            serde_json::json!({"name": "1999", "parent": "news"}),
        ),
    ] {
        let reply = send(&app, common::admin("POST", path, body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    // A slug corrected after links went out: the old one goes with the site.
    let first = send(&app, get("/api/v1/articles/1")).await.body["data"]["slug"].clone();
    let body = serde_json::json!({"slug": "corrected-slug"});
    let reply = send(&app, common::admin("PATCH", "/api/v1/articles/1", body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let old = dir.path().join("frontpage.db");
    let new = dir.path().join("new.db");
    // A wire feed, one headline corrected since, and one story deleted:
    // the new store knows both entries, and brings back neither.
    let rss = dir.path().join("wire.rss");
    let wire = |headline: &str| {
        format!(
            r#"<item><title>{headline}</title><guid isPermaLink="false">w-1</guid>
<description>Measured.</description><pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>
<item><title>Pier closed</title><guid isPermaLink="false">w-2</guid>
<description>Storm damage.</description><pubDate>Mon, 05 Jan 2026 11:00:00 GMT</pubDate></item>"#
        )
    };
    write_feed(&rss, &wire("Glacier retreat measured"));
    import_feed(&old, &rss, "2 created");
    write_feed(&rss, &wire("Glacier retreat measured in the Alps"));
    import_feed(&old, &rss, "0 created, 1 updated, 1 unchanged");
    let pier = "/api/v1/articles/pier-closed-2026-01-05";
    let reply = send(&app, common::admin("DELETE", pier, serde_json::Value::Null)).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let exported = dir.path().join("site.ndjson");
    let export = frontpage(&old, &["export", "--output", exported.to_str().unwrap()]);
    assert!(export.status.success(), "{export:?}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains(r#"{"kind":"category","slug":"home","name":"Home","parent":null"#));
    assert!(text.contains(r#""kind":"author""#) && text.contains(r#""kind":"tag""#));
    assert!(text.contains(r#""slug":"2026""#) && text.contains(r#""slug":"1999""#));
    assert!(
        text.contains(&format!(r#""old_slugs":[{first}]"#)),
        "{first}"
    );

    assert!(frontpage(&new, &["migrate"]).status.success());
    let import = frontpage(&new, &["import", exported.to_str().unwrap()]);
    assert!(import.status.success(), "{import:?}");
    let report = stdout(&import);
    assert!(report.contains("unchanged, 0 failed"), "{report}");
    assert!(!report.contains(" 0 created"), "{report}");

    // The new store holds what the old one did: its export is the same
    // file, names, tree, bios, tags, drafts and dates alike.
    let again = dir.path().join("again.ndjson");
    let export = frontpage(&new, &["export", "--output", again.to_str().unwrap()]);
    assert!(export.status.success(), "{export:?}");
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    // And importing it again changes nothing.
    let import = frontpage(&new, &["import", exported.to_str().unwrap()]);
    assert!(import.status.success(), "{import:?}");
    assert!(
        stdout(&import).contains(" 0 created, 0 updated, "),
        "{}",
        stdout(&import)
    );
    // Nor does the feed, read again into the new store.
    import_feed(&new, &rss, "0 created, 0 updated, 2 unchanged, 0 failed");
}

#[test]
fn an_operator_is_told_what_each_command_did_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.db");
    let first = frontpage(&db, &["migrate"]);
    assert!(first.status.success(), "{first:?}");
    assert!(
        stdout(&first).starts_with("created the database"),
        "{first:?}"
    );
    let again = frontpage(&db, &["migrate"]);
    assert!(stdout(&again).contains("is up to date"), "{again:?}");

    // A key's name is one row of `keys list`.
    for name in ["two\nlines", &"n".repeat(101)] {
        let refused = frontpage(&db, &["keys", "create", name]);
        assert!(!refused.status.success(), "{name:?}: {refused:?}");
    }
    let list = stdout(&frontpage(&db, &["keys", "list"]));
    assert_eq!(list.lines().count(), 1, "only the header: {list}");

    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let import = frontpage(&db, &["import", empty.to_str().unwrap()]);
    assert!(import.status.success(), "{import:?}");
    assert!(stdout(&import).contains("nothing to import"), "{import:?}");
}

/// A `RUST_LOG` with a typo is refused, not replaced by the default: that
/// would drop the parts that were right (`warn`) without a word.
#[test]
fn a_log_filter_that_cannot_be_read_stops_the_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("frontpage.db");
    let output = Command::new(env!("CARGO_BIN_EXE_frontpage"))
        .arg("migrate")
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "warn,frontpage=bogus")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("RUST_LOG"), "{said}");
    assert!(!db.exists(), "a store was made before the refusal");
}

/// The names of the tables in the SQLite file at `path`.
fn tables(path: &Path) -> Vec<String> {
    use diesel::{Connection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .load::<Name>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|table| table.name)
        .collect()
}

/// Another application's SQLite file is refused and left as it was, by
/// `migrate` and by `serve`; so is a store a newer version migrated.
#[test]
fn another_applications_database_and_a_newer_store_are_refused() {
    use diesel::{Connection, RunQueryDsl};
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("crm.db");
    let mut conn = diesel::SqliteConnection::establish(foreign.to_str().unwrap()).unwrap();
    diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    for command in ["migrate", "serve"] {
        let output = frontpage(&foreign, &[command]);
        assert!(!output.status.success(), "{command}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("not a frontpage database"),
            "{command}: {said}"
        );
        assert_eq!(tables(&foreign), ["users"], "{command}");
        // Not even switched to a write-ahead log, which the file would keep
        // (its header's write version, byte 18: 1 rollback journal, 2 WAL).
        assert_eq!(std::fs::read(&foreign).unwrap()[18], 1, "{command}");
        assert!(!dir.path().join("crm.db-wal").exists(), "{command}");
    }

    let store = dir.path().join("frontpage.db");
    assert!(frontpage(&store, &["migrate"]).status.success());
    let mut conn = diesel::SqliteConnection::establish(store.to_str().unwrap()).unwrap();
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000')")
        .execute(&mut conn)
        .unwrap();
    drop(conn);
    for command in [&["migrate"][..], &["keys", "list"]] {
        let output = frontpage(&store, command);
        assert!(!output.status.success(), "{command:?}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("newer version") && said.contains("29990101000000"),
            "{said}"
        );
    }
}

/// A folder given as the database is named as the mistake it is.
#[test]
fn a_folder_given_as_the_database_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = frontpage(dir.path(), &["migrate"]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("is a folder"), "{said}");
}

/// `migrate` says whether it changed the file.
#[test]
fn migrate_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("frontpage.db");
    let first = stdout(&frontpage(&store, &["migrate"]));
    assert!(first.contains("created the database"), "{first}");
    let again = stdout(&frontpage(&store, &["migrate"]));
    assert!(again.contains("is up to date"), "{again}");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let filled = stdout(&frontpage(&empty, &["migrate"]));
    assert!(
        filled.contains("migrated to the latest schema ("),
        "{filled}"
    );
}

/// `export -o` never writes over the store it reads, nor its log, and an
/// export again replaces the last one whole.
#[actix_web::test]
async fn export_refuses_to_write_over_the_store() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let before = send(&app, get("/api/v1/articles?limit=1")).await.body;
    for name in ["frontpage.db", "frontpage.db-wal", "./frontpage.db-shm"] {
        let output = Command::new(env!("CARGO_BIN_EXE_frontpage"))
            .args(["export", "-o", name])
            .current_dir(dir.path())
            .env("DATABASE_URL", &db)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}: {output:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("is the database itself"), "{said}");
    }
    assert_eq!(
        send(&app, get("/api/v1/articles?limit=1")).await.body,
        before
    );
    let file = dir.path().join("site.ndjson");
    std::fs::write(
        &file,
        "an earlier export, longer than this one will be\n".repeat(9_000),
    )
    .unwrap();
    let output = frontpage(&db, &["export", "-o", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("an earlier export"));
    assert!(text.lines().all(|line| line.starts_with('{')), "{text}");

    // The earlier file's permissions stay; a new file gets a new file's.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(
        frontpage(&db, &["export", "-o", file.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(mode(&file), 0o640);
    let probe = dir.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    let fresh = dir.path().join("fresh.ndjson");
    assert!(
        frontpage(&db, &["export", "-o", fresh.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(mode(&fresh), mode(&probe));
    // A device is written as it is.
    let output = frontpage(&db, &["export", "-o", "/dev/stdout"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), text);
}

/// A file written by hand may name a sub-category before its parent: it
/// imports whole the first time, not only when imported again.
#[actix_web::test]
async fn a_category_line_before_its_parents_imports_at_the_first_try() {
    let (app, dir) = test_app(true).await;
    let db = dir.path().join("frontpage.db");
    let file = dir.path().join("site.ndjson");
    let lines = [
        serde_json::json!({"kind": "category", "slug": "harbours", "name": "Harbours", "parent": "coast"}),
        serde_json::json!({"kind": "category", "slug": "coast", "name": "Coast", "parent": "news"}),
        serde_json::json!({"slug": "ferry-dock", "title": "Ferry dock rebuilt", "category": "harbours",
               "body_html": "<p>The dock reopens.</p>", "status": "published"}),
    ];
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let output = frontpage(&db, &["import", file.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let harbours = send(&app, get("/api/v1/categories/harbours")).await;
    assert_eq!(harbours.status, 200, "{}", harbours.body);
    let breadcrumb: Vec<&str> = harbours.body["data"]["breadcrumb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        breadcrumb,
        ["home", "news", "coast", "harbours"],
        "{}",
        harbours.body
    );
    let dock = send(&app, get("/api/v1/articles/ferry-dock")).await;
    assert_eq!(dock.status, 200, "{}", dock.body);
}
