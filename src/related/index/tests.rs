use chrono::DateTime;

use super::*;

fn document(id: i32, title: &str, body: String) -> Document {
    let at = DateTime::from_timestamp(1_700_000_000 + i64::from(id), 0)
        .unwrap()
        .naive_utc();
    Document {
        id,
        title: title.into(),
        body,
        category_id: 1,
        tag_ids: Vec::new(),
        published_at: at,
        updated_at: at,
    }
}

/// More articles use a word than a query reads postings of: the one
/// that uses it most is still found first, whether it was indexed with
/// the rest or added on its own later.
#[test]
fn a_common_terms_strongest_postings_are_read_first() {
    let passing = |id: i32| {
        let filler = ["council", "budget", "rail", "festival", "orbit", "court"];
        let words: Vec<&str> = (0..40).map(|i| filler[(i + id as usize) % 6]).collect();
        document(id, "Town notes", format!("{} harbour.", words.join(" ")))
    };
    let count = POSTINGS_PER_TERM as i32 + 500;
    let mut index = Index::default();
    let mut all: Vec<Document> = (1..=count).map(passing).collect();
    all.insert(
        700,
        document(-1, "Harbour", "harbour harbour harbour crane".into()),
    );
    index.extend([all]);
    index.insert(document(-2, "Harbour harbour", "harbour harbour".into()));

    let term = index.spellings.iter().position(|s| s == "harbour").unwrap() as u32;
    let postings = &index.postings[term as usize];
    assert_eq!(postings.len(), count as usize + 2);
    assert!(postings.is_sorted_by(|a, b| impact_order(a, b).is_le()));

    let found = index.search(&[(term, 1.0)], 0, 3, &mut Vec::new());
    let ids: Vec<i32> = found
        .iter()
        .map(|(slot, _)| index.slots[*slot as usize].as_ref().unwrap().id)
        .collect();
    assert_eq!(ids[..2], [-2, -1], "{found:?}");
}

/// Two builds from the same articles give the same lists, ties and
/// all: with few words, many scores tie, and ties were broken by term
/// numbers given in hash-map order, different at every start.
#[test]
fn the_same_articles_give_the_same_lists() {
    let words = [
        "council", "budget", "rail", "festival", "orbit", "court", "harbour", "storm",
    ];
    let articles = || -> Vec<Document> {
        (1..=300)
            .map(|id: i32| {
                let pick = |k: usize| words[(id as usize * (k + 3) + k * k) % words.len()];
                let body: Vec<&str> = (0..12).map(pick).collect();
                document(id, &format!("{} {}", pick(20), pick(21)), body.join(" "))
            })
            .collect()
    };
    let lists = || {
        let mut index = Index::default();
        index.extend([articles()]);
        (1..=300)
            .map(|id| index.similar(id, 10, &mut Vec::new()))
            .collect::<Vec<_>>()
    };
    let first = lists();
    for _ in 0..3 {
        assert_eq!(lists(), first);
    }
}

/// A common term keeps only its strongest postings; when removals leave
/// it fewer than a query reads, the strongest of the rest come back.
#[test]
fn a_common_term_keeps_its_strongest_postings_through_removals() {
    // Article `id` says "harbour" 1 to 10 times: 500 of each.
    let strength = |id: i32| 1 + id as usize % 10;
    let article = |id: i32| {
        let filler = ["council", "budget", "rail", "festival", "orbit", "court"];
        let mut words: Vec<&str> = (0..30).map(|i| filler[(i + id as usize) % 6]).collect();
        words.extend(std::iter::repeat_n("harbour", strength(id)));
        document(id, "Town notes", words.join(" "))
    };
    let mut index = Index::default();
    index.extend([(1..=5_000).map(article).collect()]);
    let term = index.spellings.iter().position(|s| s == "harbour").unwrap();
    assert_eq!(index.postings[term].len(), POSTINGS_KEPT);
    let strongest = |index: &Index| -> Vec<usize> {
        let found = index.search(&[(term as u32, 1.0)], 0, 600, &mut Vec::new());
        let id = |slot: u32| index.slots[slot as usize].as_ref().unwrap().id;
        found.iter().map(|(slot, _)| strength(id(*slot))).collect()
    };
    assert!(strongest(&index).iter().take(500).all(|s| *s == 10));

    // Those that say it 5 times or more go: 1,000 of the kept remain.
    for id in (1..=5_000).filter(|id| strength(*id) >= 5) {
        index.remove(id);
    }
    index.compact();
    assert_eq!(index.postings[term].len(), POSTINGS_PER_TERM);
    let found = strongest(&index);
    assert!(found.iter().take(500).all(|s| *s == 4), "{found:?}");
    assert!(found.iter().skip(500).all(|s| *s == 3));
}

/// An article filed many times over (here two hundred copies, more than a
/// list looks through at first) still gets a list of the articles about
/// the same thing: the copies, near-duplicates, are left out, and the
/// search looks further rather than coming back empty.
#[test]
fn an_article_with_many_copies_still_gets_its_related_articles() {
    let story = "Dockers strike shuts the harbour as cranes stand idle and ships queue";
    let mut all: Vec<Document> = (1..=200)
        .map(|id| document(id, "Harbour strike", story.into()))
        .collect();
    all.push(document(
        1001,
        "Union talks on harbour pay",
        "The dockers union met harbour managers over pay as the strike went on".into(),
    ));
    all.push(document(
        1002,
        "Cranes idle for a second week",
        "Cranes at the harbour stood idle while dockers kept up their strike".into(),
    ));
    all.push(document(
        1003,
        "Orchestra opens its season",
        "The orchestra played a new symphony to a full hall on opening night".into(),
    ));
    let mut index = Index::default();
    index.extend([all]);

    let found = index.nearest(1, 10, &mut Vec::new());
    assert!(found.contains(&1001) && found.contains(&1002), "{found:?}");
    assert!(
        found.iter().all(|id| *id > 1000),
        "a copy is listed: {found:?}"
    );
}

/// A term is shown as the word most articles use for its stem, whether
/// they came first or later.
#[test]
fn a_term_is_shown_as_the_word_most_articles_use() {
    let mut index = Index::default();
    index.extend([vec![
        document(1, "Hospitality jobs", "hospitality staff walked out".into()),
        document(2, "Staff walk out", "staff at the hotel walked out".into()),
        document(3, "Organ donors", "an organ for the hospital".into()),
    ]]);
    for id in 4..7 {
        index.insert(document(
            id,
            "Hospital strike",
            "the organization of hospital staff".into(),
        ));
    }
    let shown = |word: &str| index.spellings.iter().any(|s| s == word);
    assert!(shown("hospital"), "{:?}", index.spellings);
    assert!(shown("organization"), "{:?}", index.spellings);
    assert!(!shown("hospitality") && !shown("organ"));
}
