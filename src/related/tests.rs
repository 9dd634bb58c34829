use std::collections::HashSet;

use chrono::DateTime;

use super::*;

/// Forty articles on six themes of the same six words, each with a word
/// of its own (no two are copies): every list is long.
pub(super) fn engine_of_older_articles() -> Engine {
    let words = ["council", "budget", "rail", "festival", "orbit", "court"];
    let documents = (1..=40)
        .map(|id: i32| {
            let at = DateTime::from_timestamp(1_700_000_000 + i64::from(id) * 3_600, 0)
                .unwrap()
                .naive_utc();
            let letters: String = id
                .to_string()
                .chars()
                .map(|digit| (b'k' + digit as u8 - b'0') as char)
                .collect();
            let own = format!("marker{letters}");
            let mut body: Vec<&str> = (0..30).map(|i| words[(i * id as usize) % 6]).collect();
            body.extend([own.as_str(); 5]);
            Document {
                id,
                title: format!("Town notes {}", words[id as usize % 6]),
                body: body.join(" "),
                category_id: 1,
                tag_ids: Vec::new(),
                published_at: at,
                updated_at: at,
            }
        })
        .collect();
    // No list is kept current: every list is an older article's.
    let engine = Engine::new(0);
    engine.index.write().extend([documents]);
    engine
}

/// An older article's list is kept in memory cut to its first items,
/// which are served for as many as they cover and no more; a change to
/// an item cut from it still drops it.
#[test]
fn an_older_list_is_kept_cut_short_and_dropped_when_a_cut_item_changes() {
    let engine = engine_of_older_articles();
    let whole = engine.compute_list(7).expect("indexed");
    assert!(whole.len() > OLDER_ITEMS + 2, "{} items", whole.len());
    assert_eq!(
        engine.stored(7, STORED),
        Some(Arc::clone(&whole)),
        "kept whole when computed"
    );

    // As a list read from the store is kept.
    let changes = engine.changes.load(Ordering::SeqCst);
    engine.keep_older(7, Older::cut(&whole), changes);
    let kept = engine.stored(7, 12).expect("kept cut");
    assert_eq!(kept[..], whole[..OLDER_ITEMS]);
    assert_eq!(
        engine.stored(7, OLDER_ITEMS).unwrap()[..],
        whole[..OLDER_ITEMS]
    );
    assert!(
        engine.stored(7, OLDER_ITEMS + 1).is_none(),
        "more than is kept"
    );
    assert_eq!(
        engine.list(7).as_deref(),
        Some(&*whole),
        "the whole list, computed again"
    );

    let elsewhere = (1..=40).find(|id| *id != 7 && whole.iter().all(|item| item.id != *id));
    engine.reindex(Vec::new(), &[], &HashSet::from([elsewhere.unwrap()]));
    assert!(
        engine.stored(7, 12).is_some(),
        "kept: no item of it changed"
    );
    let cut = whole.last().unwrap().id;
    engine.reindex(Vec::new(), &[], &HashSet::from([cut]));
    assert!(
        engine.stored(7, 12).is_none(),
        "dropped: item {cut} changed"
    );
}

/// Once a hundredth of the corpus (and at least twenty) changes were
/// followed since the index was built, it is built again, unless a
/// second index would not fit in the room given: then not, and the
/// count starts again.
#[test]
fn the_index_is_built_again_after_enough_changes_if_there_is_room() {
    use super::refresh::REBUILD_AFTER_CHANGES;

    let engine = engine_of_older_articles();
    engine
        .followed_since_build
        .store(REBUILD_AFTER_CHANGES - 1, Ordering::SeqCst);
    assert!(!engine.take_rebuild_due(), "too few changes");
    engine
        .followed_since_build
        .store(REBUILD_AFTER_CHANGES, Ordering::SeqCst);
    assert!(engine.take_rebuild_due(), "enough changes");

    let index = engine.index.read().heap_bytes();
    let cramped = engine_of_older_articles().with_rebuild_room(index - 1);
    cramped
        .followed_since_build
        .store(REBUILD_AFTER_CHANGES, Ordering::SeqCst);
    assert!(!cramped.take_rebuild_due(), "no room for a second index");
    assert_eq!(cramped.followed_since_build.load(Ordering::SeqCst), 0);
    let roomy = engine_of_older_articles().with_rebuild_room(index);
    roomy
        .followed_since_build
        .store(REBUILD_AFTER_CHANGES, Ordering::SeqCst);
    assert!(roomy.take_rebuild_due());
}

/// A list shows one copy of a daily series, not a screenful of it, and
/// when the copies outscore everything else it looks past them for the
/// other stories on the same subject.
#[test]
fn a_list_shows_one_copy_of_a_series_and_the_stories_past_it() {
    let at = |id: i32| {
        DateTime::from_timestamp(1_700_000_000 + i64::from(id) * 60, 0)
            .unwrap()
            .naive_utc()
    };
    let document = |id: i32, title: &str, body: &str| Document {
        id,
        title: title.into(),
        body: body.into(),
        category_id: 1,
        tag_ids: Vec::new(),
        published_at: at(id),
        updated_at: at(id),
    };
    let mut documents = vec![document(
        1,
        "Lottery jackpot claimed",
        "A lottery jackpot winner claimed the prize after the draw numbers matched the ticket",
    )];
    let series = 100..400;
    documents.extend(series.clone().map(|id| {
        document(
            id,
            "Lottery draw results",
            "Lottery draw results: the winning numbers, the jackpot and the prize for each ticket",
        )
    }));
    // Near-copies: each a copy of the series, but words the series
    // makes common weigh little, so not quite one of the other.
    let near = [
        (
            500,
            "Lottery draw results: jackpot shared",
            "Lottery draw results: the winning numbers, the jackpot and the prize for each ticket",
        ),
        (
            501,
            "Lottery draw results",
            "Lottery draw results: the winning numbers, the jackpot and the prize for each ticket holder",
        ),
    ];
    documents.extend(
        near.iter()
            .map(|(id, title, body)| document(*id, title, body)),
    );
    let stories = [
        (
            2,
            "Lottery ticket sales rise",
            "Lottery ticket sales rose as the jackpot grew",
        ),
        (
            3,
            "Lottery money funds a park",
            "The lottery prize fund paid for a new park",
        ),
        (
            4,
            "Winner gives jackpot away",
            "The jackpot winner gave the lottery prize to a school",
        ),
    ];
    documents.extend(
        stories
            .iter()
            .map(|(id, title, body)| document(*id, title, body)),
    );
    documents.push(document(
        1000,
        "Orchestra opens its season",
        "The orchestra played a new symphony to a full hall on opening night",
    ));
    let engine = Engine::new(0);
    engine.index.write().extend([documents]);

    let (list, _) = engine.compute(1).expect("indexed");
    let ids: Vec<i32> = list.iter().map(|item| item.id).collect();
    let copies = ids
        .iter()
        .filter(|id| series.contains(id) || near.iter().any(|(copy, _, _)| copy == *id))
        .count();
    assert_eq!(copies, 1, "one copy of the series: {ids:?}");
    for (id, _, _) in stories {
        assert!(ids.contains(&id), "story {id} listed: {ids:?}");
    }
}
