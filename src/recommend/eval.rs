//! `frontpage eval recommend`: measures the Recommendation engine on an
//! interaction log (the Instacart order-lines CSV: `order_id`, `user_id`,
//! `order_number`, `order_dow`, `order_hour_of_day`,
//! `days_since_prior_order`, `product_id`, ...).
//!
//! Every product becomes an article and every user a reader, in a fresh
//! temporary store. Each user's orders are laid out in time (their last
//! order a day ago, earlier ones `days_since_prior_order` apart), every
//! order line but those of the last order is recorded as a view through the
//! same ingest path as `POST .../views`, and the engine loads the store as
//! the server does at start. Each user's last order is held out: the engine
//! is asked for 10 articles, and an item is a hit when the user bought it in
//! that order. The engine never recommends what a reader has already read,
//! so only held-out products the user had not bought before count as
//! relevant, for the engine and for the most-popular baseline alike.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDateTime, TimeDelta};

use super::{Engine, Params, Sources};
use crate::api::article_input::ArticleInput;
use crate::api::articles::ArticleStatus;
use crate::api::input::Checked;
use crate::db::articles::ArticleKey;
use crate::db::engagement::{self, View};
use crate::db::{self, Db, article_writes};
use crate::ranking::Decay;

/// Rows written per transaction.
const PER_TRANSACTION: usize = 5_000;

/// One order: when, and what (product ids, in cart order).
#[derive(Debug, Default)]
struct Order {
    days_since_prior: f64,
    hour: u32,
    products: Vec<(u32, i64)>,
}

/// Scores of one recommender.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    pub hit_rate: f64,
    pub ndcg: f64,
}

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub k: usize,
    pub users: usize,
    pub skipped_users: usize,
    pub articles: usize,
    pub events: usize,
    pub engine: Scores,
    pub popular: Scores,
    pub ingest_seconds: f64,
    pub load_seconds: f64,
    pub mean_latency: Duration,
    pub p99_latency: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "store            {} articles, {} events replayed in {:.1} s, loaded in {:.1} s",
            self.articles, self.events, self.ingest_seconds, self.load_seconds
        )?;
        writeln!(
            f,
            "users            {} scored ({} skipped: nothing new in their last order)",
            self.users, self.skipped_users
        )?;
        writeln!(f, "                 HitRate@{0:<3} NDCG@{0}", self.k)?;
        writeln!(
            f,
            "engine           {:<11.4} {:.4}",
            self.engine.hit_rate, self.engine.ndcg
        )?;
        writeln!(
            f,
            "most popular     {:<11.4} {:.4}",
            self.popular.hit_rate, self.popular.ndcg
        )?;
        write!(
            f,
            "latency          mean {:.2} ms, p99 {:.2} ms per recommendation",
            self.mean_latency.as_secs_f64() * 1000.0,
            self.p99_latency.as_secs_f64() * 1000.0
        )
    }
}

/// Replays `dataset` and scores the top `k` for every user.
pub fn run(dataset: &Path, k: usize) -> anyhow::Result<Report> {
    let users = read_orders(dataset)?;
    let dir = tempfile::TempDir::new()?;
    let db = Db::open(&dir.path().join("eval.db"), 2)?;
    db.write_blocking(crate::demo::seed_taxonomy)?;
    let now = db::now();

    let started = Instant::now();
    let products: HashSet<u32> = users
        .values()
        .flat_map(|orders| orders.values())
        .flat_map(|order| order.products.iter().map(|(product, _)| *product))
        .collect();
    let articles = create_articles(&db, products, now)?;

    let (views, held_out) = split_orders(&users, &articles, now);
    let events = views.len();
    record_views(&db, &views)?;
    let ingest_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let engine = Engine::new(Params {
        half_life_days: 30.0,
        // Every product is in one category: a cap would only shorten lists.
        category_share: 1.0,
        decay: Decay {
            half_life_hours: 24.0,
            reaction_weight: 5.0,
        },
    });
    db.read_blocking(|conn| engine.load(conn))?;
    let load_seconds = started.elapsed().as_secs_f64();

    let popular = most_read(&views);
    let related = crate::related::Engine::default();
    let (mut engine_scores, mut popular_scores) = (Scores::default(), Scores::default());
    let mut latencies = Vec::new();
    let mut scored = 0;
    for HeldOut {
        reader,
        relevant,
        seen,
    } in &held_out
    {
        if relevant.is_empty() {
            continue;
        }
        scored += 1;
        let started = Instant::now();
        let sources = Sources {
            related: &related,
            known: &super::NothingKnown,
        };
        let list =
            db.read_blocking(|conn| engine.recommend(conn, sources, reader, None, k, now))?;
        latencies.push(started.elapsed());
        let ids: Vec<i32> = list.items.iter().map(|item| item.article_id).collect();
        add_scores(&mut engine_scores, &ids, relevant, k);
        let baseline: Vec<i32> = popular
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .take(k)
            .collect();
        add_scores(&mut popular_scores, &baseline, relevant, k);
    }
    if scored == 0 {
        bail!("no user has a last order with a product they had not bought before");
    }
    latencies.sort();
    let count = scored as f64;
    Ok(Report {
        k,
        users: scored,
        skipped_users: held_out.len() - scored,
        articles: articles.len(),
        events,
        engine: Scores {
            hit_rate: engine_scores.hit_rate / count,
            ndcg: engine_scores.ndcg / count,
        },
        popular: Scores {
            hit_rate: popular_scores.hit_rate / count,
            ndcg: popular_scores.ndcg / count,
        },
        ingest_seconds,
        load_seconds,
        mean_latency: latencies.iter().sum::<Duration>() / scored as u32,
        p99_latency: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
    })
}

/// A view to record: the reader, the article, when.
type TrainingRead = (String, i32, NaiveDateTime);

/// A user's last order, held out of training.
struct HeldOut {
    reader: String,
    /// Articles of the last order the reader had not read before.
    relevant: HashSet<i32>,
    /// Articles the reader read in training.
    seen: HashSet<i32>,
}

/// Every user's orders as views of the products' `articles` (the training
/// reads), but for their last order, held out.
fn split_orders(
    users: &BTreeMap<u32, BTreeMap<u32, Order>>,
    articles: &HashMap<u32, i32>,
    now: NaiveDateTime,
) -> (Vec<TrainingRead>, Vec<HeldOut>) {
    let mut views = Vec::new();
    let mut held_out = Vec::new();
    for (user, orders) in users {
        let reader = format!("user-{user}");
        let times = order_times(orders, now);
        let last = *orders.keys().next_back().expect("a user has an order");
        let mut seen = HashSet::new();
        for ((number, order), at) in orders.iter().zip(&times) {
            if *number == last {
                continue;
            }
            for (product, position) in &order.products {
                let article = articles[product];
                seen.insert(article);
                views.push((reader.clone(), article, *at + TimeDelta::seconds(*position)));
            }
        }
        let relevant = orders[&last]
            .products
            .iter()
            .map(|(product, _)| articles[product])
            .filter(|article| !seen.contains(article))
            .collect();
        held_out.push(HeldOut {
            reader,
            relevant,
            seen,
        });
    }
    (views, held_out)
}

/// Records `views` through the same ingest path as `POST .../views`.
fn record_views(db: &Db, views: &[TrainingRead]) -> anyhow::Result<()> {
    for chunk in views.chunks(PER_TRANSACTION) {
        let chunk = chunk.to_vec();
        db.write_tallied_blocking(move |_, tally| {
            for (reader, article, at) in chunk {
                let view = View {
                    article: ArticleKey::Id(article),
                    reader: Some(reader),
                    at,
                    visible_at: None,
                };
                engagement::record_view(tally, view);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// The articles of `views`, most read first (ties by id): the baseline.
fn most_read(views: &[TrainingRead]) -> Vec<i32> {
    let mut popularity: HashMap<i32, usize> = HashMap::new();
    for (_, article, _) in views {
        *popularity.entry(*article).or_default() += 1;
    }
    let mut popular: Vec<(i32, usize)> = popularity.into_iter().collect();
    popular.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    popular.into_iter().map(|(id, _)| id).collect()
}

/// Adds one list's hit (0 or 1) and NDCG (binary relevance) to `scores`.
fn add_scores(scores: &mut Scores, list: &[i32], relevant: &HashSet<i32>, k: usize) {
    let gain = |rank: usize| 1.0 / (rank as f64 + 2.0).log2();
    let dcg: f64 = list
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, id)| relevant.contains(id))
        .map(|(rank, _)| gain(rank))
        .sum();
    let ideal: f64 = (0..k.min(relevant.len())).map(gain).sum();
    if dcg > 0.0 {
        scores.hit_rate += 1.0;
        scores.ndcg += dcg / ideal;
    }
}

/// Orders per user, by order number.
fn read_orders(dataset: &Path) -> anyhow::Result<BTreeMap<u32, BTreeMap<u32, Order>>> {
    let file =
        std::fs::File::open(dataset).with_context(|| format!("opening {}", dataset.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header = lines.next().context("the file is empty")??;
    let columns: Vec<&str> = header.trim().split(',').collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .with_context(|| format!("no `{name}` column"))
    };
    let (user, number, days, hour, product, position) = (
        column("user_id")?,
        column("order_number")?,
        column("days_since_prior_order")?,
        column("order_hour_of_day")?,
        column("product_id")?,
        column("add_to_cart_order")?,
    );
    let mut users: BTreeMap<u32, BTreeMap<u32, Order>> = BTreeMap::new();
    for (line_number, line) in lines.enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split(',').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        let parse = |i: usize| {
            field(i)
                .parse::<f64>()
                .with_context(|| format!("line {}: bad number {:?}", line_number + 2, field(i)))
        };
        let order = users
            .entry(parse(user)? as u32)
            .or_default()
            .entry(parse(number)? as u32)
            .or_default();
        order.days_since_prior = field(days).parse().unwrap_or(0.0);
        order.hour = parse(hour)? as u32;
        order
            .products
            .push((parse(product)? as u32, parse(position)? as i64));
    }
    Ok(users)
}

/// When each order was placed: the last a day before `now`, each earlier
/// one `days_since_prior_order` of its successor before it.
fn order_times(orders: &BTreeMap<u32, Order>, now: NaiveDateTime) -> Vec<NaiveDateTime> {
    let day_start = |at: NaiveDateTime| at.date().and_hms_opt(0, 0, 0).expect("midnight");
    let mut times = vec![now; orders.len()];
    let mut day = day_start(now) - TimeDelta::days(1);
    let list: Vec<&Order> = orders.values().collect();
    for i in (0..list.len()).rev() {
        times[i] = day + TimeDelta::hours(i64::from(list[i].hour));
        day -= TimeDelta::seconds((list[i].days_since_prior * 86_400.0) as i64);
    }
    times
}

/// One article per product, titled so that it holds no words (the
/// Related engine has nothing to compare); returns product → article id.
fn create_articles(
    db: &Db,
    products: HashSet<u32>,
    now: NaiveDateTime,
) -> anyhow::Result<HashMap<u32, i32>> {
    let mut products: Vec<u32> = products.into_iter().collect();
    products.sort_unstable();
    let mut ids = HashMap::with_capacity(products.len());
    for chunk in products.chunks(PER_TRANSACTION) {
        let writes = chunk
            .iter()
            .map(|product| {
                let input = ArticleInput {
                    slug: Some(format!("product-{product}")),
                    title: format!("#{product}"),
                    body_html: Some(format!("<p>Product {product} of the order log.</p>")),
                    category: "news".into(),
                    status: Some(Checked::Valid(ArticleStatus::Published)),
                    published_at: Some(Checked::Valid((now - TimeDelta::days(400)).and_utc())),
                    ..ArticleInput::default()
                };
                input
                    .validate(now)
                    .map(|write| (*product, write))
                    .map_err(|error| anyhow::anyhow!("product {product}: {error:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let created = db.write_blocking(move |conn| {
            writes
                .into_iter()
                .map(|(product, write)| Ok((product, article_writes::create(conn, &write)?)))
                .collect::<db::StoreResult<Vec<_>>>()
        })?;
        ids.extend(created);
    }
    Ok(ids)
}
