// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Integer,
        name -> Text,
        prefix -> Text,
        key_hash -> Binary,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
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

diesel::joinable!(article_tags -> articles (article_id));
diesel::joinable!(article_tags -> tags (tag_id));
diesel::joinable!(articles -> authors (author_id));
diesel::joinable!(articles -> categories (category_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    article_tags,
    articles,
    authors,
    categories,
    reaction_kinds,
    tags,
);
