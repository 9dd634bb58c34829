//! Hot public responses kept in memory as serialised bytes, and when one
//! may be served again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::xxh3_64;

use super::is_personal;
use crate::db::changes::{Counters, Counts};
use crate::observe::CacheCounters;

/// A successful public response kept in memory: its body and the headers
/// that describe it.
pub(super) struct Cached {
    pub body: KeptBody,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The content generation it was computed in.
    pub generation: u64,
    /// For a response that shows Related lists, the generation of those
    /// lists it was computed in.
    pub related_generation: Option<u64>,
    pub stored_at: Instant,
    pub shown: Option<ShownCounts>,
}

/// Put in a response's extensions by a handler whose response shows
/// articles' counters and nothing else that changes by itself (an article
/// alone, a Related list): the cached response then stays exact, past the
/// engagement lag, for as long as each of those counters is the one kept
/// (a commit that changes them drops them, see [`Counters`]).
///
/// Held weakly: a kept response keeps no counters alive, only the header
/// of their allocation, so that its address cannot be reused for new
/// counters while the response could take them for its own.
#[derive(Clone, Default)]
pub struct ShownCounts(Vec<(i32, Weak<Counts>)>);

/// Put in a response's extensions by a handler whose body is spliced from
/// parts of which some are kept elsewhere as well (an article's body, by the
/// article cache): the response cache keeps the parts, sharing those, rather
/// than a copy of the whole body, and weighs only what it alone holds. An
/// article's body is half its response or more: at 100,000 articles the
/// response cache's share of the memory budget held about three in five of
/// their responses whole, and holds nearly all of them this way.
#[derive(Default)]
pub struct SplicedBody {
    /// The parts held only here, joined.
    own: Vec<u8>,
    /// The parts kept elsewhere, each with where in `own` it goes.
    shared: Vec<(usize, Arc<RawValue>)>,
    /// Bytes of `shared` that nothing else held when the body was kept
    /// (see [`SplicedBody::into_kept`]).
    unshared: usize,
}

impl SplicedBody {
    /// A body whose own parts will take about `own` bytes.
    pub fn with_capacity(own: usize) -> Self {
        Self {
            own: Vec::with_capacity(own),
            ..Self::default()
        }
    }

    /// Adds a part held only by this body.
    pub fn own(&mut self, part: &[u8]) {
        self.own.extend_from_slice(part);
    }

    /// Adds `value`'s JSON, held only by this body.
    pub fn own_json(&mut self, value: &impl serde::Serialize) -> serde_json::Result<()> {
        serde_json::to_writer(&mut self.own, value)
    }

    /// Adds the fields of `object`, which serialises to a JSON object, to
    /// those of the object being written: its `{` becomes the comma, and
    /// its `}` is left for the object's own.
    pub fn own_fields(&mut self, object: &impl serde::Serialize) -> serde_json::Result<()> {
        let at = self.own.len();
        serde_json::to_writer(&mut self.own, object)?;
        self.own[at] = b',';
        self.own.pop();
        Ok(())
    }

    /// Adds a part kept elsewhere as well.
    pub fn shared(&mut self, part: Arc<RawValue>) {
        self.shared.push((self.own.len(), part));
    }

    /// Bytes in all.
    fn len(&self) -> usize {
        let shared: usize = self.shared.iter().map(|(_, part)| part.get().len()).sum();
        self.own.len() + shared
    }

    /// The parts in order.
    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let mut from = 0;
        let shared = self.shared.iter().flat_map(move |(at, part)| {
            let before = &self.own[from..*at];
            from = *at;
            [before, part.get().as_bytes()]
        });
        let last = self.shared.last().map_or(0, |(at, _)| *at);
        shared.chain([&self.own[last..]])
    }

    /// The whole body, its parts joined.
    pub fn to_bytes(&self) -> Bytes {
        let mut whole = Vec::with_capacity(self.len());
        for part in self.parts() {
            whole.extend_from_slice(part);
        }
        whole.into()
    }

    /// True when its parts joined are `bytes`.
    pub(super) fn is(&self, mut bytes: &[u8]) -> bool {
        self.len() == bytes.len()
            && self
                .parts()
                .all(|part| match bytes.split_at_checked(part.len()) {
                    Some((head, rest)) if head == part => {
                        bytes = rest;
                        true
                    }
                    _ => false,
                })
    }

    /// Bytes of its shared parts that nothing else holds now beyond those
    /// weighed as its own when it was kept: the article cache has let go
    /// of them since (a teaser rendered again for new counters, an article
    /// edited or pushed out).
    fn held_alone_unweighed(&self) -> usize {
        let alone: usize = self
            .shared
            .iter()
            .filter(|(_, part)| Arc::strong_count(part) == 1)
            .map(|(_, part)| part.get().len())
            .sum();
        alone.saturating_sub(self.unshared)
    }

    /// The body as it is kept: its buffers no larger than its parts (one
    /// grown a part at a time may hold twice its bytes), and the shared
    /// parts nothing else holds now (an article read from the store and
    /// not kept, the article cache being off or full) weighed as its own.
    pub(super) fn into_kept(mut self) -> Self {
        self.own.shrink_to_fit();
        self.shared.shrink_to_fit();
        self.unshared = self
            .shared
            .iter()
            .filter(|(_, part)| Arc::strong_count(part) == 1)
            .map(|(_, part)| part.get().len())
            .sum();
        self
    }
}

/// A kept response's body: as sent, or as the parts it was spliced from.
pub(super) enum KeptBody {
    Whole(Bytes),
    Spliced(SplicedBody),
}

impl KeptBody {
    /// The body to send.
    pub(super) fn bytes(&self) -> Bytes {
        match self {
            Self::Whole(bytes) => bytes.clone(),
            Self::Spliced(spliced) => spliced.to_bytes(),
        }
    }

    /// Bytes held by this body alone, as it was kept. A shared part the
    /// article cache drops later (a teaser rendered again for new counters,
    /// an article edited or pushed out) stays alive, uncounted, until the
    /// next [`ResponseCache::sweep`] drops the entry. A write that drops
    /// every article drops every response too (see
    /// `AppState::content_changed`).
    fn own_len(&self) -> usize {
        match self {
            Self::Whole(bytes) => bytes.len(),
            Self::Spliced(spliced) => {
                spliced.own.capacity()
                    + spliced.shared.capacity() * std::mem::size_of::<(usize, Arc<RawValue>)>()
                    + spliced.unshared
            }
        }
    }
}

impl ShownCounts {
    /// Article `article_id`'s counters shown.
    pub fn of(article_id: i32, counts: &Arc<Counts>) -> Self {
        let mut shown = Self::default();
        shown.add(article_id, &Arc::downgrade(counts));
        shown
    }

    /// Article `article_id`'s counters shown too.
    pub fn add(&mut self, article_id: i32, counts: &Weak<Counts>) {
        self.0.push((article_id, Weak::clone(counts)));
    }

    fn current(&self, counters: &Counters) -> bool {
        !self.0.is_empty()
            && self
                .0
                .iter()
                .all(|(article_id, counts)| counters.still(*article_id, counts))
    }

    /// Bytes held: each reference, and the allocation header it keeps
    /// (its two counts and the empty map) once the counters are dropped.
    fn own_len(&self) -> usize {
        let held = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Counts>();
        self.0.capacity() * (std::mem::size_of::<(i32, Weak<Counts>)>() + held)
    }
}

impl crate::memory::Resizable for ResponseCache {
    fn resize(&self, bytes: u64) {
        self.entries.set_capacity(bytes.max(1));
    }

    fn held(&self) -> u64 {
        self.entries.weight()
    }
}

/// Weighs cached responses by their size.
#[derive(Clone)]
struct BySize;

impl Weighter<String, Arc<Cached>> for BySize {
    fn weight(&self, key: &String, cached: &Arc<Cached>) -> u64 {
        let shown = cached.shown.as_ref().map_or(0, ShownCounts::own_len);
        (key.len() + cached.body.own_len() + shown + 256) as u64
    }
}

/// Serialised responses of public GETs, bounded in bytes, each kept from
/// the second time it is asked for (see [`Doorkeeper`]). An entry is used
/// only while no content write has happened since it was computed (every
/// admin write calls [`ResponseCache::invalidate`] before it answers), and
/// while it is younger than the engagement lag allowed (view and reaction
/// counts may be that old) or shows counters that have not changed since
/// (see [`ShownCounts`]).
pub struct ResponseCache {
    entries: Cache<String, Arc<Cached>, BySize>,
    generation: AtomicU64,
    related_generation: AtomicU64,
    max_age: Duration,
    lookups: CacheCounters,
    doorkeeper: Doorkeeper,
}

/// How often [`ResponseCache::sweep`] runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Slots of the [`Doorkeeper`] (256 KiB). A miss passes when no other miss
/// has landed in its slot since the key's last one: with M keys missing
/// and asked for alike, about S/(S + M) of the misses. Under the bench's
/// uniform random reads of 100,000 articles, 40% of them not kept, that
/// is some 45%; a page asked for twice a second at that load is kept at
/// its second request about two times in three, and within a few almost
/// surely.
const DOORKEEPER_SLOTS: usize = 1 << 15;

/// What the cache has for a key.
pub(super) enum Lookup {
    Hit(Arc<Cached>),
    /// Nothing current; `keep` when the response, once made, is worth
    /// keeping.
    Miss {
        keep: bool,
    },
}

/// Lets a response into the cache on the second request for it within a
/// short while, not the first, like TinyLFU's doorkeeper (here a table of
/// the last key to miss in each slot, which ages as slots are taken by
/// others): keys asked for once, such as a crawl's or a random
/// benchmark's, never evict the ones asked for again and again, and never
/// pay for a copy that is dropped unread.
struct Doorkeeper {
    /// The hash of the last key that missed, by the low bits of its hash.
    slots: Box<[AtomicU64]>,
}

impl Doorkeeper {
    fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.next_power_of_two())
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// True when `key` was the last key to miss in its slot; it is now.
    fn seen_again(&self, key: &str) -> bool {
        let hash = xxh3_64(key.as_bytes());
        let slot = &self.slots[hash as usize & (self.slots.len() - 1)];
        slot.swap(hash, Ordering::Relaxed) == hash
    }
}

impl ResponseCache {
    /// A cache of at most `bytes`, whose entries live `max_age`; a zero
    /// age turns it off.
    pub fn new(bytes: u64, max_age: Duration, lookups: CacheCounters) -> Self {
        Self {
            entries: Cache::with_weighter((bytes / 8192).max(16) as usize, bytes.max(1), BySize),
            generation: AtomicU64::new(0),
            related_generation: AtomicU64::new(0),
            max_age,
            lookups,
            doorkeeper: Doorkeeper::new(DOORKEEPER_SLOTS),
        }
    }

    /// Forgets everything cached: content changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops every response kept. [`ResponseCache::invalidate`] is enough
    /// for what is served; this also lets go of what they hold.
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Drops the responses that now hold parts alone which they shared
    /// when kept, and so weigh less than they hold: a Related list whose
    /// teasers the article cache has rendered again for new counters (the
    /// list is out of date then too), or any response whose article the
    /// cache has let go. Run every [`SWEEP_EVERY`]: between sweeps, what
    /// the cache holds may exceed its bound by what went out of date since.
    pub fn sweep(&self) {
        self.entries.retain(|_, cached| match &cached.body {
            KeptBody::Spliced(spliced) => spliced.held_alone_unweighed() == 0,
            KeptBody::Whole(_) => true,
        });
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Forgets the responses that show Related lists: the lists changed
    /// after the write that changed them (made by a background thread).
    pub fn related_changed(&self) {
        self.related_generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn related_generation(&self) -> u64 {
        self.related_generation.load(Ordering::SeqCst)
    }

    pub(super) fn get(&self, key: &str, counters: &Counters) -> Lookup {
        let kept = self.entries.get(key);
        let current = kept.as_ref().is_some_and(|cached| {
            cached.generation == self.generation()
                && cached
                    .related_generation
                    .is_none_or(|generation| generation == self.related_generation())
                && (cached.stored_at.elapsed() < self.max_age
                    || cached
                        .shown
                        .as_ref()
                        .is_some_and(|shown| shown.current(counters)))
        });
        self.lookups.record(current);
        match kept {
            Some(cached) if current => Lookup::Hit(cached),
            // Kept before, and asked for again.
            Some(_) => Lookup::Miss { keep: true },
            None => Lookup::Miss {
                keep: self.doorkeeper.seen_again(key),
            },
        }
    }

    pub(super) fn put(&self, key: String, cached: Cached) {
        // Computed before a write, or a change of Related lists, that has
        // invalidated it since.
        let lists_current = cached
            .related_generation
            .is_none_or(|generation| generation == self.related_generation());
        let generation = cached.generation;
        if generation == self.generation() && lists_current {
            self.entries.insert(key.clone(), Arc::new(cached));
            // A write in between invalidated it and may have emptied the
            // cache before it went in: it would never be served, and would
            // hold what it shares outside the budget.
            if self.generation() != generation {
                self.entries.remove(&key);
            }
        }
    }

    /// True when responses to `req` may be kept: a public GET of the API
    /// that is the same for every reader.
    pub(super) fn may_keep(&self, req: &ServiceRequest) -> bool {
        !self.max_age.is_zero()
            && req.method() == Method::GET
            && !req.headers().contains_key(header::AUTHORIZATION)
            && crate::route_table::routed_path(req.request()).starts_with("/api/v1/")
            && !is_personal(
                crate::route_table::routed_path(req.request()),
                req.query_string(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spliced_body_is_sent_whole_and_weighs_what_it_alone_holds() {
        let text = "<p>A long body kept by the article cache</p>";
        let shared: Arc<RawValue> = serde_json::value::to_raw_value(text).unwrap().into();
        let spliced = || {
            let mut spliced = SplicedBody::default();
            spliced.own(br#"{"data":{"id":1,"body_html":"#);
            spliced.shared(Arc::clone(&shared));
            spliced.own(b"}}");
            spliced
        };
        let whole =
            br#"{"data":{"id":1,"body_html":"<p>A long body kept by the article cache</p>"}}"#;
        assert!(spliced().is(whole));
        assert!(!spliced().is(&whole[1..]));
        let mut other = whole.to_vec();
        other[20] = b'x';
        assert!(!spliced().is(&other), "as long, not the same");

        // Kept while the article cache (here `shared`) holds the body, it
        // weighs its own bytes and what names the shared part; kept alone
        // with it, the body as well.
        let naming = std::mem::size_of::<(usize, Arc<RawValue>)>();
        let own = whole.len() - shared.get().len();
        let kept = KeptBody::Spliced(spliced().into_kept());
        assert_eq!(kept.bytes(), &whole[..]);
        assert_eq!(kept.own_len(), own + naming);
        let alone = spliced();
        drop((kept, shared));
        let kept = KeptBody::Spliced(alone.into_kept());
        assert_eq!(kept.own_len(), whole.len() + naming);
        assert_eq!(
            KeptBody::Whole(Bytes::from_static(whole)).own_len(),
            whole.len()
        );
    }

    /// A response that came to hold alone a part it shared when kept is
    /// swept out; one that shares it still, or weighed it when kept, stays.
    #[test]
    fn a_sweep_drops_responses_left_holding_what_they_shared() {
        let cache = ResponseCache::new(1 << 20, Duration::from_secs(60), CacheCounters::default());
        let part =
            |text: &str| -> Arc<RawValue> { serde_json::value::to_raw_value(text).unwrap().into() };
        let keep = |key: &str, shared: Arc<RawValue>| {
            let mut body = SplicedBody::default();
            body.own(b"[");
            body.shared(shared);
            body.own(b"]");
            cache.put(
                key.into(),
                Cached {
                    body: KeptBody::Spliced(body.into_kept()),
                    headers: Vec::new(),
                    generation: cache.generation(),
                    related_generation: None,
                    stored_at: Instant::now(),
                    shown: None,
                },
            );
        };
        let (kept_elsewhere, let_go) = (part("kept"), part("let go"));
        keep("/kept", Arc::clone(&kept_elsewhere));
        keep("/let-go", Arc::clone(&let_go));
        keep("/alone", part("alone"));
        cache.sweep();
        assert!(cache.entries.get("/let-go").is_some(), "still shared");

        drop(let_go);
        cache.sweep();
        assert!(cache.entries.get("/let-go").is_none());
        assert!(cache.entries.get("/kept").is_some());
        assert!(cache.entries.get("/alone").is_some(), "weighed whole");
    }

    #[test]
    fn a_spliced_body_joins_parts_at_its_edges_and_fields_into_an_object() {
        let part: Arc<RawValue> = serde_json::value::to_raw_value(&[1, 2]).unwrap().into();
        let mut spliced = SplicedBody::default();
        spliced.shared(Arc::clone(&part));
        spliced.own(br#",{"a":0"#);
        spliced.own_fields(&serde_json::json!({"b": 1})).unwrap();
        spliced.own(b"},");
        spliced.shared(part);
        assert_eq!(spliced.to_bytes(), &br#"[1,2],{"a":0,"b":1},[1,2]"#[..]);
        assert!(spliced.is(br#"[1,2],{"a":0,"b":1},[1,2]"#));
    }

    #[test]
    fn counters_shown_hold_no_counters_alive_and_tell_them_by_address() {
        let counters = Counters::default();
        let counts = |views: i64| Arc::new(Counts::from([("view".to_string(), views)]));
        let (first, second) = (counts(1), counts(2));
        counters.keep(counters.epoch(), 1, Arc::clone(&first));
        counters.keep(counters.epoch(), 2, Arc::clone(&second));
        let mut shown = ShownCounts::of(1, &first);
        shown.add(2, &Arc::downgrade(&second));
        assert!(shown.current(&counters));
        assert!(!ShownCounts::default().current(&counters), "nothing shown");

        // Counters of the same values, read again, are not the ones shown.
        counters.keep(counters.epoch(), 2, counts(2));
        assert!(!shown.current(&counters));

        // Dropped everywhere else, the counters are freed, and what they
        // held is not weighed.
        drop(second);
        assert!(shown.0[1].1.upgrade().is_none());
        let many = Arc::new((0..50).map(|kind| (format!("kind-{kind}"), 1)).collect());
        assert_eq!(
            ShownCounts::of(1, &many).own_len(),
            ShownCounts::of(1, &first).own_len()
        );
    }

    #[test]
    fn the_doorkeeper_lets_in_a_key_that_missed_before_its_slot_was_taken() {
        let doorkeeper = Doorkeeper::new(1);
        assert!(!doorkeeper.seen_again("/a"), "a first miss");
        assert!(doorkeeper.seen_again("/a"));
        assert!(doorkeeper.seen_again("/a"));
        assert!(!doorkeeper.seen_again("/b"), "takes the slot");
        assert!(!doorkeeper.seen_again("/a"), "forgotten");
        assert!(doorkeeper.seen_again("/a"));

        // Two keys in slots of their own (as these two are, of 1,024) are
        // both let in on their second miss.
        let roomy = Doorkeeper::new(1 << 10);
        assert!(!roomy.seen_again("/a") && !roomy.seen_again("/b"));
        assert!(roomy.seen_again("/a") && roomy.seen_again("/b"));
    }
}
