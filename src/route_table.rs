//! The served path templates, matched without regular expressions: which
//! template a path belongs to (the `endpoint` label of the request metrics)
//! and which methods it allows (to tell a 405 from a 404).
//!
//! Actix answers the same questions through its resource map, but that runs
//! each template's regular expression again for every request; here a path
//! is compared segment by segment.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use utoipa::openapi::OpenApi;

/// The path of `req` as the router reads it, percent-escapes decoded:
/// `/%61pi/v1/%72ecommendations` reaches the recommendations, so every
/// rule about what a path is (personal, public, under `/api/`) reads this,
/// never the path as sent.
pub fn routed_path(req: &actix_web::HttpRequest) -> &str {
    req.match_info().as_str()
}

/// Routes that are served but not documented in the spec: the spec itself,
/// its explorer, and the metrics.
const UNDOCUMENTED: [&str; 4] = ["/openapi.json", "/docs", "/docs/{_:.*}", "/metrics"];

/// The label of a path that no template matches.
pub const UNMATCHED: &str = "UNMATCHED";

/// Path templates and the methods each allows.
#[derive(Clone, Default)]
pub struct RouteTable(Arc<Routes>);

#[derive(Default)]
struct Routes {
    all: Vec<Route>,
    /// By a path's number of pieces, the routes that can match it, in the
    /// order a match is chosen: most literal segments first, and of equals
    /// the one listed last.
    by_pieces: Vec<Vec<usize>>,
    /// The same for paths of more pieces than any `by_pieces` is for.
    beyond: Vec<usize>,
    /// Templates without parameters, by their text: a path equal to one
    /// is that template's, since no other can be more literal.
    exact: FxHashMap<String, usize>,
}

struct Route {
    template: String,
    segments: Vec<Segment>,
    methods: Vec<&'static str>,
    /// Segments before a [`Segment::Rest`], if any.
    fixed: usize,
    rest: bool,
    literals: usize,
}

/// One `/`-separated piece of a template.
#[derive(Debug, PartialEq)]
enum Segment {
    /// Text the path's segment must equal.
    Literal(String),
    /// Parameters (`{id}`), maybe with fixed text around and between them
    /// (`latest.{format}`, `{slug}.{format}`), each a non-empty run of
    /// anything but `/`: the fixed texts, one more than the parameters.
    Params(Vec<String>),
    /// `{name:.*}`: everything left, slashes included.
    Rest,
}

impl Segment {
    fn parse(text: &str) -> Self {
        if !text.contains('{') {
            return Self::Literal(text.to_owned());
        }
        if text.contains(":.*}") {
            return Self::Rest;
        }
        let mut fixed = Vec::new();
        let mut rest = text;
        while let Some((before, after)) = rest.split_once('{') {
            fixed.push(before.to_owned());
            rest = after.split_once('}').map_or("", |(_, after)| after);
        }
        fixed.push(rest.to_owned());
        Self::Params(fixed)
    }

    fn matches(&self, piece: &str) -> bool {
        match self {
            Self::Literal(text) => same(piece, text),
            Self::Params(fixed) => {
                let (first, last) = (&fixed[0], &fixed[fixed.len() - 1]);
                let Some(mut rest) =
                    without_prefix(piece, first).and_then(|rest| without_suffix(rest, last))
                else {
                    return false;
                };
                // Each parameter takes at least one character, then the
                // earliest occurrence of the text after it.
                for between in &fixed[1..fixed.len() - 1] {
                    let mut chars = rest.chars();
                    if chars.next().is_none() {
                        return false;
                    }
                    let after_one = chars.as_str();
                    let Some(at) = after_one.find(between.as_str()) else {
                        return false;
                    };
                    rest = &after_one[at + between.len()..];
                }
                !rest.is_empty()
            }
            Self::Rest => true,
        }
    }
}

/// `a == b`, without asking `memcmp` to compare nothing. An empty
/// string's pointer may dangle (`0x1`, as every empty `String`'s does), and
/// on this kind of machine glibc's `memcmp` reads zero bytes through it
/// with a masked vector load that takes a microcode assist: about 100 ns,
/// fifty times a real comparison. Every template begins with an empty
/// segment, and most parameters have no fixed text around them.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a == b)
}

/// `text` without `prefix` (see [`same`]).
fn without_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, rest) = text.split_at_checked(prefix.len())?;
    same(head, prefix).then_some(rest)
}

/// `text` without `suffix` (see [`same`]).
fn without_suffix<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let (rest, tail) = text.split_at_checked(text.len().checked_sub(suffix.len())?)?;
    same(tail, suffix).then_some(rest)
}

impl Route {
    fn new(template: &str, methods: Vec<&'static str>) -> Self {
        let segments: Vec<Segment> = template.split('/').map(Segment::parse).collect();
        let rest = segments.last() == Some(&Segment::Rest);
        Self {
            template: template.to_owned(),
            fixed: segments.len() - usize::from(rest),
            rest,
            literals: segments
                .iter()
                .filter(|segment| matches!(segment, Segment::Literal(_)))
                .count(),
            segments,
            methods,
        }
    }

    /// True when a path of `pieces` pieces can be one of this template's.
    fn takes(&self, pieces: usize) -> bool {
        if self.rest {
            pieces > self.fixed
        } else {
            pieces == self.fixed
        }
    }

    /// True when a path of these `/`-separated pieces is one of this
    /// template's. A rest takes what is left after the fixed segments,
    /// which may be empty, but its slash must be there: `takes` sees to
    /// both. The fixed segments are compared last first: templates of as
    /// many pieces mostly differ late (`/api/v1/articles/{id}` and
    /// `/api/v1/tags/{slug}`).
    fn matches(&self, pieces: &[&str]) -> bool {
        self.takes(pieces.len())
            && self.segments[..self.fixed]
                .iter()
                .zip(pieces)
                .rev()
                .all(|(segment, piece)| segment.matches(piece))
    }
}

/// The `/`-separated pieces of `path`.
fn pieces(path: &str) -> Vec<&str> {
    path.split('/').collect()
}

impl RouteTable {
    /// The routes of a spec, plus the undocumented ones and `also_served`
    /// (GET only).
    pub fn from_spec(spec: &OpenApi, also_served: &[&str]) -> Self {
        let mut routes: Vec<Route> = spec
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                let allowed = methods
                    .iter()
                    .filter(|(_, has)| *has)
                    .map(|(method, _)| *method)
                    .collect();
                Route::new(template, allowed)
            })
            .collect();
        routes.extend(
            UNDOCUMENTED
                .iter()
                .chain(also_served)
                .map(|template| Route::new(template, vec!["GET", "HEAD"])),
        );
        Self::new(routes)
    }

    fn new(all: Vec<Route>) -> Self {
        let longest = all.iter().map(|route| route.fixed).max().unwrap_or(0);
        let in_order = |pieces: usize| {
            let mut taken: Vec<usize> = (0..all.len())
                .filter(|&index| all[index].takes(pieces))
                .collect();
            taken.sort_by_key(|&index| std::cmp::Reverse((all[index].literals, index)));
            taken
        };
        let exact = all
            .iter()
            .enumerate()
            .filter(|(_, route)| route.literals == route.segments.len())
            .map(|(index, route)| (route.template.clone(), index))
            .collect();
        Self(Arc::new(Routes {
            by_pieces: (0..=longest).map(in_order).collect(),
            exact,
            beyond: in_order(longest + 1),
            all,
        }))
    }

    /// The template `path` belongs to (the most literal one, when more
    /// than one matches: `/articles/bulk` rather than `/articles/{id}`), or
    /// [`UNMATCHED`]. Only the routes that can take a path of as many
    /// pieces are tried (those of as many, and those ending in a rest of
    /// fewer), most literal first: once one matches, no other can be chosen.
    pub fn template(&self, path: &str) -> &str {
        let routes = &self.0;
        if let Some(&index) = routes.exact.get(path) {
            return &routes.all[index].template;
        }
        let pieces = pieces(path);
        routes
            .by_pieces
            .get(pieces.len())
            .unwrap_or(&routes.beyond)
            .iter()
            .map(|&index| &routes.all[index])
            .find(|route| route.matches(&pieces))
            .map_or(UNMATCHED, |route| route.template.as_str())
    }

    /// The methods allowed on `path`; `None` when no template matches it.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let mut allowed: Vec<&'static str> = Vec::new();
        let pieces = pieces(path);
        for route in self.0.all.iter().filter(|route| route.matches(&pieces)) {
            for method in &route.methods {
                if !allowed.contains(method) {
                    allowed.push(method);
                }
            }
        }
        (!allowed.is_empty()).then_some(allowed)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::dev::ResourceDef;

    use super::*;

    const TEMPLATES: [&str; 7] = [
        "/api/v1/articles",
        "/api/v1/articles/{id_or_slug}",
        "/api/v1/articles/{id_or_slug}/reactions/{kind}",
        "/feeds/latest.{format}",
        "/feeds/category/{slug}.{format}",
        "/docs/{_:.*}",
        "/healthz",
    ];

    const PATHS: [&str; 25] = [
        "/api/v1/articles",
        "/api/v1/articles/",
        "/api/v1/articles/42",
        "/api/v1/articles/a-slug",
        "/api/v1/articles/42/",
        "/api/v1/articles//reactions/x",
        "/api/v1/articles/42/reactions/veryGood",
        "/api/v1/articles/42/reactions",
        "/api/v1/articles/42/reactions/veryGood/more",
        "/api/v1/articlesx",
        "/feeds/latest.rss",
        "/feeds/latest.",
        "/feeds/latest",
        "/feeds/category/world.atom",
        "/feeds/category/.atom",
        "/feeds/category/world",
        "/feeds/category/world.",
        "/feeds/category/a.b.rss",
        "/feeds/category/w.atom/x",
        "/docs/",
        "/docs/index.html",
        "/docs/a/b/c.js",
        "/docs",
        "/healthz",
        "/",
    ];

    #[test]
    fn templates_match_the_paths_actix_routes_to_them() {
        for template in TEMPLATES {
            let ours = Route::new(template, vec!["GET"]);
            let actix = ResourceDef::new(template);
            for path in PATHS {
                assert_eq!(
                    ours.matches(&pieces(path)),
                    actix.is_match(path),
                    "{template} against {path}"
                );
            }
        }
    }

    #[test]
    fn fixed_text_is_taken_off_only_where_it_is() {
        assert_eq!(without_prefix("latest.rss", "latest."), Some("rss"));
        assert_eq!(without_prefix("latest", "latest."), None);
        assert_eq!(without_prefix("é.rss", ""), Some("é.rss"));
        assert_eq!(without_suffix("world.atom", ".atom"), Some("world"));
        assert_eq!(without_suffix("atom", ".atom"), None);
        assert_eq!(without_suffix("", ""), Some(""));
        // Never a cut inside a character.
        assert_eq!(without_suffix("aé", "x"), None);
        assert!(same("", "") && !same("", "a") && !same("ab", "ac"));
    }

    #[test]
    fn a_path_gets_its_templates_label_and_methods() {
        let table = RouteTable::new(vec![
            Route::new("/api/v1/articles/{id_or_slug}", vec!["GET", "HEAD", "PUT"]),
            Route::new("/api/v1/articles/bulk", vec!["POST"]),
            Route::new("/docs/{_:.*}", vec!["GET"]),
        ]);
        assert_eq!(
            table.template("/api/v1/articles/7"),
            "/api/v1/articles/{id_or_slug}"
        );
        assert_eq!(
            table.template("/api/v1/articles/bulk"),
            "/api/v1/articles/bulk"
        );
        assert_eq!(table.template("/nowhere"), UNMATCHED);
        assert_eq!(table.template("/docs/a/b/c/d/e/f.js"), "/docs/{_:.*}");
        assert_eq!(
            table.allowed("/api/v1/articles/bulk"),
            Some(vec!["GET", "HEAD", "PUT", "POST"])
        );
        assert_eq!(table.allowed("/nowhere"), None);
    }
}
