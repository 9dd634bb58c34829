//! Acknowledged means durable: article writes, views and reactions that got a
//! 2xx survive the server being killed with SIGKILL mid-stream, nothing is
//! half-written, and the counters still equal the events.
//! Runs the real binary on loopback.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

/// The admin key the servers here accept.
const ADMIN: &str = "durability-admin-token";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db: &Path, port: u16) -> Child {
    start_with(db, port, &[])
}

fn start_with(db: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_frontpage"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("DATABASE_URL", db)
        .env("FRONTPAGE_BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("FRONTPAGE_RATE_LIMIT_PER_MIN", "0")
        .env("FRONTPAGE_DEMO", "true")
        .env("FRONTPAGE_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(request(port, "GET", "/readyz", ""), Ok((200, _))) {
        assert!(Instant::now() < deadline, "the server did not become ready");
        thread::sleep(Duration::from_millis(50));
    }
    child
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
fn request(port: u16, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    send_request(port, method, path, body, "")
}

/// [`request`] with an admin key.
fn request_as(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    key: &str,
) -> io::Result<(u16, String)> {
    send_request(
        port,
        method,
        path,
        body,
        &format!("Authorization: Bearer {key}\r\n"),
    )
}

fn send_request(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    extra_headers: &str,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("no status line"))?;
    Ok((
        status,
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    ))
}

fn views_of(port: u16, article: u32) -> i64 {
    let (status, body) = request(port, "GET", &format!("/api/v1/articles/{article}"), "").unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["data"]["stats"]["views"].as_i64().unwrap()
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What the clients of one round were told was stored, and what they asked.
#[derive(Default)]
struct Acknowledged {
    articles: Vec<String>,
    views: u64,
    view_attempts: u64,
    reactions: Vec<String>,
}

/// How many articles and views have been acknowledged so far in a round.
#[derive(Default)]
struct Progress {
    articles: AtomicU64,
    views: AtomicU64,
}

impl Progress {
    /// Waits until at least one article and one view have been
    /// acknowledged, so that a kill timed from then always has writes of
    /// both kinds behind it however slowly the server started; false if
    /// that takes longer than `limit`.
    fn first_writes_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.articles.load(Ordering::SeqCst) == 0 || self.views.load(Ordering::SeqCst) == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

/// Drives concurrent writes of every kind until `stop` or a refusal: two
/// editors creating articles (each with two tags and a body), four readers
/// posting views of `article`, and two posting reactions to it as new
/// readers. Counts acknowledgements in `progress`; returns what was
/// acknowledged.
fn mixed_writes(
    port: u16,
    round: usize,
    article: u32,
    stop: &Arc<AtomicBool>,
    progress: &Arc<Progress>,
) -> Acknowledged {
    type Client = Box<dyn FnOnce() -> Acknowledged + Send>;
    let mut clients: Vec<Client> = Vec::new();
    for editor in 0..2 {
        let (stop, progress) = (stop.clone(), progress.clone());
        clients.push(Box::new(move || {
            let mut done = Acknowledged::default();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let slug = format!("crash-{round}-{editor}-{n}");
                let body = serde_json::json!({
                    "slug": slug, "title": format!("Crash {round} {editor} {n}"),
                    "category": "news", "status": "published",
                    "tags": ["Crash test", format!("Round {round}")],
                    "body_markdown": "A paragraph that search must find.",
                });
                match request_as(port, "POST", "/api/v1/articles", &body.to_string(), ADMIN) {
                    Ok((201, _)) => {
                        done.articles.push(slug);
                        progress.articles.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            done
        }));
    }
    for viewer in 0..4 {
        let (stop, progress) = (stop.clone(), progress.clone());
        clients.push(Box::new(move || {
            let mut done = Acknowledged::default();
            let body = format!("{{\"reader\":\"crash-{round}-{viewer}\"}}");
            let path = format!("/api/v1/articles/{article}/views");
            while !stop.load(Ordering::Relaxed) {
                done.view_attempts += 1;
                match request(port, "POST", &path, &body) {
                    Ok((200, _)) => {
                        done.views += 1;
                        progress.views.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
            done
        }));
    }
    for reactor in 0..2 {
        let stop = stop.clone();
        clients.push(Box::new(move || {
            let mut done = Acknowledged::default();
            let path = format!("/api/v1/articles/{article}/reactions/very_good");
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let reader = format!("react-{round}-{reactor}-{n}");
                let body = format!("{{\"reader\":\"{reader}\"}}");
                match request(port, "PUT", &path, &body) {
                    Ok((200, _)) => done.reactions.push(reader),
                    _ => break,
                }
            }
            done
        }));
    }
    let handles: Vec<_> = clients.into_iter().map(thread::spawn).collect();
    let mut all = Acknowledged::default();
    for handle in handles {
        let done = handle.join().unwrap();
        all.articles.extend(done.articles);
        all.views += done.views;
        all.view_attempts += done.view_attempts;
        all.reactions.extend(done.reactions);
    }
    all
}

/// A count from the store.
fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn acknowledged_writes_of_every_kind_survive_sigkill() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("crash.db");
    let port = free_port();
    let article = 3;
    for (round, kill_after) in [250u64, 600, 1_100, 1_700].into_iter().enumerate() {
        let mut server = start(&db, port);
        let before = views_of(port, article);
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let writers = thread::spawn({
            let (stop, progress) = (stop.clone(), progress.clone());
            move || mixed_writes(port, round, article, &stop, &progress)
        });
        let writing = progress.first_writes_within(Duration::from_secs(10));
        if writing {
            thread::sleep(Duration::from_millis(kill_after));
        }
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let acknowledged = writers.join().unwrap();
        assert!(
            writing,
            "round {round}: no article or no view was acknowledged within 10 s of the server answering"
        );
        eprintln!(
            "round {round}: killed {kill_after} ms after the first acknowledged writes, with {} articles, {} views and {} reactions acknowledged",
            acknowledged.articles.len(),
            acknowledged.views,
            acknowledged.reactions.len()
        );

        let mut server = start(&db, port);
        let after = views_of(port, article);
        let (views, attempts) = (acknowledged.views as i64, acknowledged.view_attempts as i64);
        assert!(
            after >= before + views,
            "round {round}: lost views: {before} + {views} acknowledged, {after} stored"
        );
        assert!(
            after <= before + attempts,
            "round {round}: more views than requests"
        );
        for slug in &acknowledged.articles {
            let (status, body) =
                request(port, "GET", &format!("/api/v1/articles/{slug}"), "").unwrap();
            assert_eq!(
                status, 200,
                "round {round}: acknowledged {slug} is gone: {body}"
            );
        }
        server.kill().unwrap();
        server.wait().unwrap();

        let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        let check: Check = diesel::sql_query("PRAGMA integrity_check")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(check.integrity_check, "ok", "round {round}");
        // Every article stored, acknowledged or not, is whole: its two
        // tags, its body, its search entry.
        let half_written = count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM articles a WHERE a.slug LIKE 'crash-%' AND (
                 (SELECT COUNT(*) FROM article_tags t WHERE t.article_id = a.id) <> 2
                 OR a.body_html NOT LIKE '%search must find%'
                 OR NOT EXISTS (SELECT 1 FROM article_search s WHERE s.rowid = a.id))",
        );
        assert_eq!(half_written, 0, "round {round}: half-written articles");
        // Every acknowledged reaction is stored, and every counter and
        // bucket equals the events it counts.
        for reader in &acknowledged.reactions {
            let stored = count(
                &mut conn,
                &format!(
                    "SELECT COUNT(*) AS n FROM reactions r JOIN readers p ON p.id = r.reader_id
                     WHERE r.article_id = {article} AND p.key = '{reader}'"
                ),
            );
            assert_eq!(stored, 1, "round {round}: lost the reaction of {reader}");
        }
        let checks = [
            (
                "view counter",
                format!("SELECT COUNT(*) AS n FROM views WHERE article_id = {article}"),
                format!(
                    "SELECT count AS n FROM article_counts WHERE article_id = {article} AND counter = 'view'"
                ),
            ),
            (
                "view buckets",
                format!("SELECT COUNT(*) AS n FROM views WHERE article_id = {article}"),
                format!(
                    "SELECT COALESCE(SUM(views), 0) AS n FROM engagement_days WHERE article_id = {article}"
                ),
            ),
            (
                "reaction counter",
                format!(
                    "SELECT COUNT(*) AS n FROM reactions WHERE article_id = {article} AND kind = 'very_good'"
                ),
                format!(
                    "SELECT count AS n FROM article_counts WHERE article_id = {article} AND counter = 'very_good'"
                ),
            ),
            (
                "reaction buckets",
                format!("SELECT COUNT(*) AS n FROM reactions WHERE article_id = {article}"),
                format!(
                    "SELECT COALESCE(SUM(reactions), 0) AS n FROM engagement_hours WHERE article_id = {article}"
                ),
            ),
        ];
        for (what, events, counted) in checks {
            assert_eq!(
                count(&mut conn, &events),
                count(&mut conn, &counted),
                "round {round}: the {what} drifted from the events"
            );
        }
    }
}

/// Posts views from 8 clients until told to stop or refused; counts the
/// acknowledged ones.
fn post_views(port: u16, article: u32, stop: &Arc<AtomicBool>) -> Vec<thread::JoinHandle<u64>> {
    (0..8)
        .map(|client| {
            let stop = stop.clone();
            thread::spawn(move || {
                let body = format!("{{\"reader\":\"term-{client}\"}}");
                let path = format!("/api/v1/articles/{article}/views");
                let mut acknowledged = 0;
                while !stop.load(Ordering::Relaxed) {
                    match request(port, "POST", &path, &body) {
                        Ok((200, _)) => acknowledged += 1,
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect()
}

#[test]
fn sigterm_finishes_requests_in_flight_and_commits_every_queued_write() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("term.db");
    let port = free_port();
    let article = 5;
    // Totals exact at once, so `before` already counts the demo's views.
    let no_lag = [("FRONTPAGE_VIEW_TOTALS_LAG_MS", "0")];
    let mut server = start_with(&db, port, &no_lag);
    let before = views_of(port, article);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = post_views(port, article, &stop);
    thread::sleep(Duration::from_millis(500));
    // SAFETY: a plain signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(status.success(), "the server exited with {status}");
    assert!(acknowledged > 0, "no view was acknowledged before SIGTERM");

    let mut server = start_with(&db, port, &no_lag);
    let after = views_of(port, article);
    server.kill().unwrap();
    server.wait().unwrap();
    // Nothing answered was lost, and nothing was stored without an answer.
    assert_eq!(after, before + acknowledged as i64);
}

#[test]
fn a_client_that_stalls_mid_body_gets_a_408_problem() {
    let dir = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let mut server = start_with(
        &dir.path().join("slow.db"),
        port,
        &[("FRONTPAGE_BODY_TIMEOUT_SECS", "1")],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Promises 40 bytes, sends 10, then nothing.
    write!(
        stream,
        "POST /api/v1/articles/1/views HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"reader\":"
    )
    .unwrap();
    let mut response = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
            break;
        }
    }
    let response = String::from_utf8_lossy(&response);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
}
