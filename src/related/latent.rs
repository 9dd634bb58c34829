//! A latent topic model (LSI): the truncated SVD of the corpus's weighted
//! term matrix. Two articles about the same subject often share fewer words
//! than their topic does ("car" and "engine", "god" and "faith"); in the
//! space of the matrix's strongest singular vectors they still lie close.
//!
//! The SVD is computed the randomized way (Halko, Martinsson and Tropp,
//! 2011): the matrix is multiplied by a random block a few times, which
//! needs only sparse products, and only the small dense results are
//! factored, with `faer`. An article is placed in the space by projecting
//! its term vector on the basis, so articles written after training are
//! placed the same way as those it was trained on.

use faer::Mat;

/// Extra random directions beyond the dimensions kept: they make the
/// leading singular vectors accurate.
const OVERSAMPLING: usize = 20;
/// Times the random block goes through the matrix and back: the
/// singular values of text fall slowly, and each pass sharpens them.
const POWER_ITERATIONS: usize = 2;

/// The trained basis: `dimensions` coordinates per term.
pub struct Latent {
    dimensions: usize,
    /// Row-major, one row per term known when it was trained.
    basis: Vec<f32>,
}

impl Latent {
    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.basis.capacity() * std::mem::size_of::<f32>()
    }

    /// Trains on `rows` (one sparse term vector per article, unit length,
    /// sorted by term) over a vocabulary of `terms`. `None` when the corpus
    /// is too small to hold `dimensions` topics.
    pub fn train(rows: &[Vec<(u32, f32)>], terms: usize, dimensions: usize) -> Option<Self> {
        let width = dimensions + OVERSAMPLING;
        if rows.len() < Self::minimum_corpus(dimensions) || terms < width * 2 {
            return None;
        }
        let matrix = Sparse::new(rows, terms);
        // A random block in the row space: a fixed pseudo-random ±1 per
        // entry, so that the same corpus always gives the same model.
        let mut right: Vec<f32> = (0..terms * width)
            .map(|i| if mix(i as u64) & 1 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut left = orthonormal(&matrix.times(&right, width), width);
        for _ in 0..POWER_ITERATIONS {
            right = orthonormal(&matrix.transpose_times(&left, width), width);
            left = orthonormal(&matrix.times(&right, width), width);
        }
        // A ≈ L Lᵀ A, and (Lᵀ A)ᵀ = Aᵀ L is small: its left singular
        // vectors are A's right singular vectors, the term coordinates.
        let projected = matrix.transpose_times(&left, width);
        let svd = dense(&projected, width).thin_svd().ok()?;
        let vectors = svd.U();
        let mut basis = vec![0f32; terms * dimensions];
        for term in 0..terms {
            for dimension in 0..dimensions {
                basis[term * dimensions + dimension] = vectors[(term, dimension)];
            }
        }
        Some(Self { dimensions, basis })
    }

    /// The fewest articles a model of `dimensions` is trained on.
    pub fn minimum_corpus(dimensions: usize) -> usize {
        (dimensions + OVERSAMPLING) * 2
    }

    /// An article's place in the latent space, unit length: the projection
    /// of its term vector. Terms newer than the model are left out.
    pub fn embed(&self, vector: &[(u32, f32)]) -> Point {
        let mut point = vec![0f32; self.dimensions];
        for (term, weight) in vector {
            let start = *term as usize * self.dimensions;
            if let Some(row) = self.basis.get(start..start + self.dimensions) {
                for (value, coordinate) in point.iter_mut().zip(row) {
                    *value += weight * coordinate;
                }
            }
        }
        normalise(&mut point);
        Point::quantise(&point)
    }
}

/// An article's place in the latent space, kept in a byte per dimension: a
/// million articles hold 100 MB of places rather than 400. Each coordinate
/// is a step of `scale`, so a vector loses less than half a step of 127 of
/// its largest coordinate, and cosines move by well under 0.01.
#[derive(Debug, Clone)]
pub struct Point {
    scale: f32,
    steps: Box<[i8]>,
}

impl Point {
    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.steps.len()
    }

    fn quantise(point: &[f32]) -> Self {
        let largest = point.iter().fold(0f32, |max, value| max.max(value.abs()));
        let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
        let steps = point
            .iter()
            .map(|value| (value / scale).round().clamp(-127.0, 127.0) as i8)
            .collect();
        Self { scale, steps }
    }

    /// The coordinates, as well as they are kept.
    fn coordinates(&self) -> impl Iterator<Item = f32> + '_ {
        self.steps.iter().map(|step| f32::from(*step) * self.scale)
    }
}

/// The unit-length direction of `own` plus `weight` times the mean of
/// `others`: a query's place pulled towards its best matches.
pub fn centroid<'a>(own: &Point, others: impl Iterator<Item = &'a Point>, weight: f32) -> Vec<f32> {
    let mut point: Vec<f32> = own.coordinates().collect();
    let others: Vec<&Point> = others.collect();
    for other in &others {
        for (value, coordinate) in point.iter_mut().zip(other.coordinates()) {
            *value += weight * coordinate / others.len() as f32;
        }
    }
    normalise(&mut point);
    point
}

/// The cosine of a query's place (unit length) and an article's.
pub fn cosine(query: &[f32], point: &Point) -> f32 {
    let sum: f32 = query
        .iter()
        .zip(point.steps.iter())
        .map(|(x, step)| x * f32::from(*step))
        .sum();
    sum * point.scale
}

/// Scales a vector to unit length (a zero vector stays zero).
fn normalise(point: &mut [f32]) {
    let norm = point.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        point.iter_mut().for_each(|v| *v /= norm);
    }
}

/// The article-term matrix, by row and by column.
struct Sparse<'a> {
    rows: &'a [Vec<(u32, f32)>],
    columns: Vec<Vec<(u32, f32)>>,
}

impl<'a> Sparse<'a> {
    fn new(rows: &'a [Vec<(u32, f32)>], terms: usize) -> Self {
        let mut columns = vec![Vec::new(); terms];
        for (row, vector) in rows.iter().enumerate() {
            for (term, weight) in vector {
                columns[*term as usize].push((row as u32, *weight));
            }
        }
        Self { rows, columns }
    }

    /// `A · X` for a row-major `X` with `width` columns.
    fn times(&self, x: &[f32], width: usize) -> Vec<f32> {
        product(self.rows, x, width)
    }

    /// `Aᵀ · X` for a row-major `X` with `width` columns.
    fn transpose_times(&self, x: &[f32], width: usize) -> Vec<f32> {
        product(&self.columns, x, width)
    }
}

/// `S · X`, where `S` is given as sparse rows; rows are split across cores.
fn product(rows: &[Vec<(u32, f32)>], x: &[f32], width: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows.len() * width];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (part, out) in rows.chunks(chunk).zip(out.chunks_mut(chunk * width)) {
            scope.spawn(move || {
                for (row, out) in part.iter().zip(out.chunks_mut(width)) {
                    for (column, weight) in row {
                        let start = *column as usize * width;
                        for (value, x) in out.iter_mut().zip(&x[start..start + width]) {
                            *value += weight * x;
                        }
                    }
                }
            });
        }
    });
    out
}

/// A row-major matrix as a `faer` matrix.
fn dense(values: &[f32], width: usize) -> Mat<f32> {
    Mat::from_fn(values.len() / width, width, |i, j| values[i * width + j])
}

/// An orthonormal basis of the columns of a row-major matrix, row-major.
fn orthonormal(values: &[f32], width: usize) -> Vec<f32> {
    let q = dense(values, width).qr().compute_thin_Q();
    let mut out = vec![0f32; values.len()];
    for (i, row) in out.chunks_mut(width).enumerate() {
        for (j, value) in row.iter_mut().enumerate() {
            *value = q[(i, j)];
        }
    }
    out
}

/// SplitMix64: a well-spread hash of an index.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two topics with disjoint vocabularies, and words that only ever
    /// co-occur with their topic's others: the model must put articles
    /// that share no word, but share a topic, close together.
    #[test]
    fn articles_of_one_topic_meet_without_shared_words() {
        let terms = 200;
        let mut rows = Vec::new();
        for i in 0..300u32 {
            let topic = i % 2;
            // Each article uses 5 of its topic's 100 words.
            let mut row: Vec<(u32, f32)> = (0..5)
                .map(|j| (topic * 100 + (i * 7 + j * 13) % 100, 1.0 / 5f32.sqrt()))
                .collect();
            row.sort_unstable_by_key(|(term, _)| *term);
            row.dedup_by_key(|(term, _)| *term);
            rows.push(row);
        }
        let model = Latent::train(&rows, terms, 10).expect("corpus is large enough");
        let a = model.embed(&[(0, 1.0)]);
        let b = model.embed(&[(50, 1.0)]);
        let other = model.embed(&[(150, 1.0)]);
        let query = centroid(&a, std::iter::empty(), 0.0);
        assert!(cosine(&query, &b) > cosine(&query, &other) + 0.3);
    }

    #[test]
    fn a_place_kept_in_bytes_keeps_its_cosines() {
        let unit = |seed: u64| {
            let mut point: Vec<f32> = (0..100)
                .map(|i| (mix(seed * 1000 + i) % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            normalise(&mut point);
            point
        };
        for seed in 0..50 {
            let (a, b) = (unit(seed), unit(seed + 500));
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let kept = cosine(&a, &Point::quantise(&b));
            assert!((exact - kept).abs() < 0.01, "{exact} kept as {kept}");
            assert!((cosine(&a, &Point::quantise(&a)) - 1.0).abs() < 0.01);
        }
    }

    #[test]
    fn a_small_corpus_has_no_model() {
        let rows = vec![vec![(0, 1.0)]; 10];
        assert!(Latent::train(&rows, 100, 10).is_none());
    }
}
