// The tables Diesel queries, as the migrations make them (`migrations/`).
// Kept by hand or with `diesel print-schema`; `tests/schema.rs` checks every
// table, column and nullability here against a migrated store.

diesel::table! {
    api_keys (id) {
        id -> Integer,
        name -> Text,
        prefix -> Text,
        key_hash -> Binary,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        scopes -> Text,
    }
}

diesel::table! {
    article_tags (article_id, tag_id) {
        article_id -> Integer,
        tag_id -> Integer,
        position -> Integer,
    }
}

diesel::table! {
    article_writes (id) {
        id -> Integer,
        count -> BigInt,
    }
}

diesel::table! {
    articles (id) {
        id -> Integer,
        slug -> Text,
        title -> Text,
        summary -> Text,
        body_html -> Text,
        dateline -> Nullable<Text>,
        source -> Nullable<Text>,
        image_url -> Nullable<Text>,
        category_id -> Integer,
        author_id -> Nullable<Integer>,
        status -> Text,
        published_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        word_count -> Integer,
        summary_derived -> Bool,
    }
}

diesel::table! {
    authors (id) {
        id -> Integer,
        slug -> Text,
        name -> Text,
        bio -> Nullable<Text>,
    }
}

diesel::table! {
    categories (id) {
        id -> Integer,
        slug -> Text,
        name -> Text,
        parent_id -> Nullable<Integer>,
        position -> Integer,
    }
}

diesel::table! {
    reaction_kinds (key) {
        key -> Text,
        label -> Text,
        position -> Integer,
    }
}

diesel::table! {
    tags (id) {
        id -> Integer,
        slug -> Text,
        name -> Text,
    }
}

diesel::table! {
    article_counts (article_id, counter) {
        article_id -> Integer,
        counter -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    engagement_days (period, article_id) {
        period -> Integer,
        article_id -> Integer,
        views -> Integer,
        reactions -> Integer,
    }
}

diesel::table! {
    engagement_hours (period, article_id) {
        period -> Integer,
        article_id -> Integer,
        views -> Integer,
        reactions -> Integer,
    }
}

diesel::table! {
    reactions (article_id, kind, reader_id) {
        article_id -> Integer,
        kind -> Text,
        reader_id -> Integer,
        reacted_at -> Timestamp,
    }
}

diesel::table! {
    readers (id) {
        id -> Integer,
        key -> Text,
    }
}

diesel::table! {
    article_id_mark (id) {
        id -> Integer,
        last_deleted -> Integer,
    }
}

diesel::table! {
    view_tally (id) {
        id -> Integer,
        counted_through -> Integer,
    }
}

diesel::table! {
    view_purges (article_id) {
        article_id -> Integer,
        last_view_id -> Integer,
        next_view_id -> Integer,
    }
}

diesel::table! {
    views (id) {
        id -> Integer,
        article_id -> Integer,
        reader_id -> Nullable<Integer>,
        viewed_at -> Timestamp,
    }
}

diesel::table! {
    feed_entries (entry) {
        entry -> Text,
        article_id -> Nullable<Integer>,
        digest -> Nullable<Text>,
    }
}

diesel::table! {
    old_slugs (slug) {
        slug -> Text,
        article_id -> Integer,
    }
}

diesel::table! {
    related_lists (article_id) {
        article_id -> Integer,
        computed_at -> Timestamp,
        fingerprint -> BigInt,
        items -> Binary,
    }
}

diesel::table! {
    related_sync (id) {
        id -> Integer,
        synced_at -> Timestamp,
        lists_version -> Integer,
        article_writes -> Nullable<BigInt>,
    }
}

diesel::table! {
    search_pending (article_id) {
        article_id -> Integer,
    }
}

diesel::joinable!(article_counts -> articles (article_id));
diesel::joinable!(article_tags -> articles (article_id));
diesel::joinable!(article_tags -> tags (tag_id));
diesel::joinable!(articles -> authors (author_id));
diesel::joinable!(articles -> categories (category_id));
diesel::joinable!(engagement_days -> articles (article_id));
diesel::joinable!(feed_entries -> articles (article_id));
diesel::joinable!(old_slugs -> articles (article_id));
diesel::joinable!(engagement_hours -> articles (article_id));
diesel::joinable!(reactions -> articles (article_id));
diesel::joinable!(reactions -> reaction_kinds (kind));
diesel::joinable!(reactions -> readers (reader_id));
diesel::joinable!(related_lists -> articles (article_id));
diesel::joinable!(views -> articles (article_id));
diesel::joinable!(views -> readers (reader_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    article_counts,
    article_id_mark,
    article_tags,
    article_writes,
    articles,
    authors,
    categories,
    engagement_days,
    engagement_hours,
    feed_entries,
    old_slugs,
    reaction_kinds,
    reactions,
    readers,
    related_lists,
    related_sync,
    search_pending,
    tags,
    view_purges,
    view_tally,
    views,
);
