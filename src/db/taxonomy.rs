//! Categories (a tree), tags (see `tag`) and authors.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::in_ids::InIdsExt;
use super::schema::{articles, authors, categories, tags};
use super::{StoreError, StoreResult};

mod tag;
pub use self::tag::{
    TagsShown, delete_tag, ensure_tags, find_shown_tag, find_tag, find_tags, insert_tag, list_tags,
    update_tag,
};

/// A category row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = categories)]
pub struct CategoryRow {
    pub id: i32,
    pub slug: String,
    pub name: String,
    pub parent_id: Option<i32>,
    pub position: i32,
}

/// A tag row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tags)]
pub struct TagRow {
    pub id: i32,
    pub slug: String,
    pub name: String,
}

/// An author row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = authors)]
pub struct AuthorRow {
    pub id: i32,
    pub slug: String,
    pub name: String,
    pub bio: Option<String>,
}

/// The whole category table, indexed; small enough to load per request.
#[derive(Debug, Clone, Default)]
pub struct CategoryTree {
    rows: Vec<CategoryRow>,
    by_id: HashMap<i32, usize>,
}

impl CategoryTree {
    /// Loads every category, ordered by position then name.
    pub fn load(conn: &mut SqliteConnection) -> StoreResult<Self> {
        let rows: Vec<CategoryRow> = categories::table
            .order((categories::position, categories::name))
            .select(CategoryRow::as_select())
            .load(conn)?;
        let by_id = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.id, i))
            .collect();
        Ok(Self { rows, by_id })
    }

    /// The category with this id.
    pub fn get(&self, id: i32) -> Option<&CategoryRow> {
        self.by_id.get(&id).map(|&i| &self.rows[i])
    }

    /// The category with this slug.
    pub fn by_slug(&self, slug: &str) -> Option<&CategoryRow> {
        self.rows.iter().find(|row| row.slug == slug)
    }

    /// From the root down to `id` itself: the breadcrumb.
    pub fn path(&self, id: i32) -> Vec<&CategoryRow> {
        let mut path = Vec::new();
        let mut next = self.get(id);
        while let Some(row) = next {
            // A cycle can only come from hand-edited data; stop rather than loop.
            if path.len() > self.rows.len() {
                break;
            }
            path.push(row);
            next = row.parent_id.and_then(|parent| self.get(parent));
        }
        path.reverse();
        path
    }

    /// The direct children of `parent` (the roots for `None`), in order.
    pub fn children(&self, parent: Option<i32>) -> impl Iterator<Item = &CategoryRow> {
        self.rows.iter().filter(move |row| row.parent_id == parent)
    }

    /// The ids of the category with this slug and of every category below
    /// it; none when no category has it.
    pub fn subtree_of_slug(&self, slug: &str) -> Vec<i32> {
        self.by_slug(slug)
            .map(|c| self.subtree_ids(c.id))
            .unwrap_or_default()
    }

    /// `id` and every category below it.
    pub fn subtree_ids(&self, id: i32) -> Vec<i32> {
        let mut ids = vec![id];
        let mut i = 0;
        while i < ids.len() && ids.len() <= self.rows.len() {
            let parent = ids[i];
            ids.extend(self.children(Some(parent)).map(|row| row.id));
            i += 1;
        }
        ids
    }
}

/// A category to create or the changes to make to one.
#[derive(Debug, Clone, Default)]
pub struct CategoryWrite {
    pub slug: Option<String>,
    pub name: Option<String>,
    /// `Some(None)` makes it a root; `None` leaves the parent alone.
    pub parent: Option<Option<String>>,
    pub position: Option<i32>,
}

fn parent_id(tree: &CategoryTree, parent: Option<&str>) -> StoreResult<Option<i32>> {
    match parent {
        None => Ok(None),
        Some(slug) => tree.by_slug(slug).map(|row| Some(row.id)).ok_or_else(|| {
            StoreError::invalid("parent", format!("no category has the slug `{slug}`"))
        }),
    }
}

fn ensure_slug_free(taken: bool, kind: &str, slug: &str) -> StoreResult<()> {
    if taken {
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "An"
        } else {
            "A"
        };
        Err(StoreError::SlugTaken(format!(
            "{article} {kind} with the slug `{slug}` exists already."
        )))
    } else {
        Ok(())
    }
}

/// Creates a category; returns its id.
pub fn insert_category(conn: &mut SqliteConnection, new: &CategoryWrite) -> StoreResult<i32> {
    let tree = CategoryTree::load(conn)?;
    let slug = new.slug.as_deref().unwrap_or_default();
    ensure_slug_free(tree.by_slug(slug).is_some(), "category", slug)?;
    let parent = parent_id(&tree, new.parent.clone().flatten().as_deref())?;
    Ok(diesel::insert_into(categories::table)
        .values((
            categories::slug.eq(slug),
            categories::name.eq(new.name.as_deref().unwrap_or_default()),
            categories::parent_id.eq(parent),
            categories::position.eq(new.position.unwrap_or(0)),
        ))
        .returning(categories::id)
        .get_result(conn)?)
}

/// Changes a category; refuses to make it its own ancestor.
pub fn update_category(
    conn: &mut SqliteConnection,
    slug: &str,
    change: &CategoryWrite,
) -> StoreResult<i32> {
    let tree = CategoryTree::load(conn)?;
    let row = tree.by_slug(slug).ok_or(StoreError::NotFound)?;
    let id = row.id;
    if let Some(new_slug) = change.slug.as_deref().filter(|s| *s != slug) {
        ensure_slug_free(tree.by_slug(new_slug).is_some(), "category", new_slug)?;
        diesel::update(categories::table.find(id))
            .set(categories::slug.eq(new_slug))
            .execute(conn)?;
    }
    if let Some(name) = &change.name {
        diesel::update(categories::table.find(id))
            .set(categories::name.eq(name))
            .execute(conn)?;
    }
    if let Some(position) = change.position {
        diesel::update(categories::table.find(id))
            .set(categories::position.eq(position))
            .execute(conn)?;
    }
    if let Some(parent) = &change.parent {
        let parent = parent_id(&tree, parent.as_deref())?;
        if parent.is_some_and(|p| tree.subtree_ids(id).contains(&p)) {
            return Err(StoreError::invalid(
                "parent",
                "a category cannot be moved under itself or one of its sub-categories",
            ));
        }
        diesel::update(categories::table.find(id))
            .set(categories::parent_id.eq(parent))
            .execute(conn)?;
    }
    Ok(id)
}

/// Deletes a category that has no sub-categories and no articles (drafts
/// included); a conflict saying which it has otherwise.
pub fn delete_category(conn: &mut SqliteConnection, slug: &str) -> StoreResult<()> {
    let tree = CategoryTree::load(conn)?;
    let row = tree.by_slug(slug).ok_or(StoreError::NotFound)?;
    if tree.children(Some(row.id)).next().is_some() {
        return Err(StoreError::Conflict(format!(
            "The category `{slug}` has sub-categories: move or delete them first."
        )));
    }
    let filed: i64 = articles::table
        .filter(articles::category_id.eq(row.id))
        .count()
        .get_result(conn)?;
    if filed > 0 {
        return Err(StoreError::Conflict(format!(
            "{filed} article(s), drafts included, are in the category `{slug}`: move them first."
        )));
    }
    diesel::delete(categories::table.find(row.id)).execute(conn)?;
    Ok(())
}

/// Authors in slug order, after `after` when paging.
pub fn list_authors(
    conn: &mut SqliteConnection,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<AuthorRow>> {
    let mut query = authors::table
        .select(AuthorRow::as_select())
        .order(authors::slug)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(authors::slug.gt(after));
    }
    Ok(query.load(conn)?)
}

/// The author with this slug.
pub fn find_author(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Option<AuthorRow>> {
    Ok(authors::table
        .filter(authors::slug.eq(slug))
        .select(AuthorRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// An author to create, or the changes to make to one.
#[derive(Debug, Clone, Default)]
pub struct AuthorWrite {
    pub slug: Option<String>,
    pub name: Option<String>,
    /// `Some(None)` clears the bio.
    pub bio: Option<Option<String>>,
}

/// Creates an author; a taken slug is a conflict.
pub fn insert_author(conn: &mut SqliteConnection, new: &AuthorWrite) -> StoreResult<AuthorRow> {
    let slug = new.slug.as_deref().unwrap_or_default();
    ensure_slug_free(find_author(conn, slug)?.is_some(), "author", slug)?;
    Ok(diesel::insert_into(authors::table)
        .values((
            authors::slug.eq(slug),
            authors::name.eq(new.name.as_deref().unwrap_or_default()),
            authors::bio.eq(new.bio.clone().flatten()),
        ))
        .returning(AuthorRow::as_returning())
        .get_result(conn)?)
}

/// Changes an author.
pub fn update_author(
    conn: &mut SqliteConnection,
    slug: &str,
    change: &AuthorWrite,
) -> StoreResult<AuthorRow> {
    let row = find_author(conn, slug)?.ok_or(StoreError::NotFound)?;
    if let Some(new_slug) = change.slug.as_deref().filter(|s| *s != slug) {
        ensure_slug_free(find_author(conn, new_slug)?.is_some(), "author", new_slug)?;
    }
    Ok(diesel::update(authors::table.find(row.id))
        .set((
            authors::slug.eq(change.slug.as_deref().unwrap_or(&row.slug)),
            authors::name.eq(change.name.as_deref().unwrap_or(&row.name)),
            authors::bio.eq(change.bio.clone().unwrap_or(row.bio)),
        ))
        .returning(AuthorRow::as_returning())
        .get_result(conn)?)
}

/// Deletes an author that no article (draft or not) names; a conflict
/// saying how many do otherwise.
pub fn delete_author(conn: &mut SqliteConnection, slug: &str) -> StoreResult<()> {
    let author = find_author(conn, slug)?.ok_or(StoreError::NotFound)?;
    let bylined: i64 = articles::table
        .filter(articles::author_id.eq(author.id))
        .count()
        .get_result(conn)?;
    if bylined > 0 {
        return Err(StoreError::Conflict(format!(
            "{bylined} article(s), drafts included, name the author `{slug}`: \
             give them another author, or none, first."
        )));
    }
    diesel::delete(authors::table.find(author.id)).execute(conn)?;
    Ok(())
}

/// Authors by id, for assembling article lists.
pub fn authors_by_id(
    conn: &mut SqliteConnection,
    ids: &[i32],
) -> StoreResult<HashMap<i32, AuthorRow>> {
    // Many articles have no author: no statement for none.
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<AuthorRow> = authors::table
        .filter(authors::id.in_ids(ids))
        .select(AuthorRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}
