//! One column's profile in one window, kept as mergeable sketches of
//! bounded size whatever the row count: counts, Welford's mean and
//! variance, min and max, a t-digest for quantiles, a HyperLogLog for the
//! distinct count, and capped item counts for categorical columns. Each
//! sketch merges with another of its kind (so a refresh adds new rows to a
//! window kept from the last one) and writes itself to bytes ([`codec`]).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use datafusion_functions_aggregate_common::tdigest::{Centroid, TDigest};

use crate::codec::{Corrupt, Decoded, Reader, Writer};
pub use crate::distinct::{Distinct, Fnv};

/// Centroids a column's t-digest keeps.
const DIGEST_SIZE: usize = 200;
/// Values buffered before they are merged into the digest.
const BUFFER: usize = 8_192;
/// Distinct items a categorical profile counts; later new items count as "other".
const MAX_ITEMS: usize = 10_000;

/// A numeric column's sketches.
#[derive(Debug, Clone)]
pub struct Numeric {
    pub count: u64,
    pub nan: u64,
    pub zeros: u64,
    pub mean: f64,
    m2: f64,
    pub min: f64,
    pub max: f64,
    digest: TDigest,
    buffer: Vec<f64>,
    pub distinct: Distinct,
}

impl Default for Numeric {
    fn default() -> Self {
        Self {
            count: 0,
            nan: 0,
            zeros: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            digest: TDigest::new(DIGEST_SIZE),
            buffer: Vec::new(),
            distinct: Distinct::default(),
        }
    }
}

impl Numeric {
    /// Adds many values at once: their mean and spread merged in one step
    /// (Chan's formula), with no division per value.
    pub fn add_all(&mut self, values: &[f64]) {
        for &v in values {
            self.distinct.add_bits(v.to_bits());
        }
        self.count += values.len() as u64;
        let start = self.buffer.len();
        self.buffer.extend(values.iter().copied().filter(|v| !v.is_nan()));
        let numbers = &self.buffer[start..];
        self.nan += (values.len() - numbers.len()) as u64;
        if numbers.is_empty() {
            return;
        }
        let sums = Sums::of(numbers);
        self.zeros += sums.zeros;
        self.min = self.min.min(sums.min);
        self.max = self.max.max(sums.max);
        let n = numbers.len() as f64;
        let mean = sums.sum / n;
        let m2 = squares_about(numbers, mean);
        let total = self.numbers() as f64;
        let before = total - n;
        let delta = mean - self.mean;
        self.mean += delta * n / total;
        self.m2 += m2 + delta * delta * before * n / total;
        if self.buffer.len() >= BUFFER {
            self.flush();
        }
    }

    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.distinct.add_bits(v.to_bits());
        if v.is_nan() {
            self.nan += 1;
            return;
        }
        if v == 0.0 {
            self.zeros += 1;
        }
        let n = (self.count - self.nan) as f64;
        let delta = v - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (v - self.mean);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.buffer.push(v);
        if self.buffer.len() >= BUFFER {
            self.flush();
        }
    }

    /// Moves buffered values into the digest.
    pub fn flush(&mut self) {
        if !self.buffer.is_empty() {
            sort_floats(&mut self.buffer);
            self.digest = self.digest.merge_sorted_f64(&self.buffer);
            self.buffer.clear();
        }
    }

    /// Adds `other`'s values: counts add, mean and spread by Chan's
    /// formula, the digests merge (within the t-digest's own error).
    pub fn merge(&mut self, other: &mut Self) {
        self.flush();
        other.flush();
        let (a, b) = (self.numbers() as f64, other.numbers() as f64);
        if b > 0.0 {
            let total = a + b;
            let delta = other.mean - self.mean;
            self.mean += delta * b / total;
            self.m2 += other.m2 + delta * delta * a * b / total;
        }
        self.count += other.count;
        self.nan += other.nan;
        self.zeros += other.zeros;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.digest = match (self.digest.count() > 0.0, other.digest.count() > 0.0) {
            (true, true) => TDigest::merge_digests([&self.digest, &other.digest]),
            (false, true) => other.digest.clone(),
            _ => std::mem::replace(&mut self.digest, TDigest::new(DIGEST_SIZE)),
        };
        self.distinct.merge(&other.distinct);
    }

    fn encode(&mut self, w: &mut Writer) {
        self.flush();
        for n in [self.count, self.nan, self.zeros] {
            w.u64(n);
        }
        for x in [self.mean, self.m2, self.min, self.max] {
            w.f64(x);
        }
        let d = &self.digest;
        w.u64(d.max_size() as u64);
        for x in [d.sum(), d.count(), d.max(), d.min()] {
            w.f64(x);
        }
        w.len(d.centroids().len());
        for c in d.centroids() {
            w.f64(c.mean());
            w.f64(c.weight());
        }
        self.distinct.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let (count, nan, zeros) = (r.u64()?, r.u64()?, r.u64()?);
        let (mean, m2, min, max) = (r.f64()?, r.f64()?, r.f64()?, r.f64()?);
        let max_size = usize::try_from(r.u64()?).ok().filter(|m| (1..=100_000).contains(m));
        let max_size = max_size.ok_or_else(|| Corrupt("a t-digest size out of range".into()))?;
        let (sum, weight, d_max, d_min) = (r.f64()?, r.f64()?, r.f64()?, r.f64()?);
        let centroids = (0..r.count()?).map(|_| Ok(Centroid::new(r.f64()?, r.f64()?))).collect::<Decoded<Vec<_>>>()?;
        let digest = TDigest::try_from_parts(max_size, sum, weight, d_max, d_min, centroids)
            .map_err(|e| Corrupt(e.to_string()))?;
        if nan > count || zeros > count {
            return Err(Corrupt("counts that do not add up".into()));
        }
        let distinct = Distinct::decode(r)?;
        Ok(Self { count, nan, zeros, mean, m2, min, max, digest, buffer: Vec::new(), distinct })
    }

    /// Values that are numbers (not NaN).
    pub fn numbers(&self) -> u64 {
        self.count - self.nan
    }

    pub fn stddev(&self) -> Option<f64> {
        let n = self.numbers();
        (n > 1).then(|| (self.m2 / (n - 1) as f64).sqrt())
    }

    /// The value at each of `points` quantiles (0 to 1).
    pub fn quantiles(&mut self, points: &[f64]) -> Vec<f64> {
        self.flush();
        if self.numbers() == 0 {
            return Vec::new();
        }
        points.iter().map(|&q| self.digest.estimate_quantile(q)).collect()
    }

    /// Centroids in the digest (for tests of its bounds).
    pub fn digest_size(&self) -> usize {
        self.digest.centroids().len()
    }
}

/// Lanes the compiler can keep in vector registers.
const LANES: usize = 8;

/// Sum, zeros, min and max of values that are all numbers (no NaN),
/// folded in independent lanes so the loop vectorizes.
struct Sums {
    sum: f64,
    zeros: u64,
    min: f64,
    max: f64,
}

impl Sums {
    fn of(values: &[f64]) -> Self {
        let (mut sum, mut zeros) = ([0.0; LANES], [0u64; LANES]);
        let (mut min, mut max) = ([f64::INFINITY; LANES], [f64::NEG_INFINITY; LANES]);
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for i in 0..LANES {
                let v = chunk[i];
                sum[i] += v;
                zeros[i] += u64::from(v == 0.0);
                min[i] = if v < min[i] { v } else { min[i] };
                max[i] = if v > max[i] { v } else { max[i] };
            }
        }
        let mut out = Self {
            sum: sum.iter().sum(),
            zeros: zeros.iter().sum(),
            min: min.iter().copied().fold(f64::INFINITY, f64::min),
            max: max.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        for &v in rest {
            out.sum += v;
            out.zeros += u64::from(v == 0.0);
            out.min = out.min.min(v);
            out.max = out.max.max(v);
        }
        out
    }
}

/// The sum of squared distances of `values` from `mean`, in lanes.
fn squares_about(values: &[f64], mean: f64) -> f64 {
    let mut lanes = [0.0; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f64 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    for chunk in chunks {
        for i in 0..LANES {
            lanes[i] += (chunk[i] - mean) * (chunk[i] - mean);
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// A float's bits as an unsigned key in `f64::total_cmp` order.
fn ordered(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

fn unordered(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

thread_local! {
    static SORT_KEYS: std::cell::RefCell<(Vec<u64>, Vec<u64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Sorts floats in `f64::total_cmp` order: the digest needs each buffer
/// sorted, and sorting is most of a numeric column's profiling. An LSD radix
/// sort over the keys' upper 33 bits leaves only values that share them out
/// of order, which an insertion sort then fixes in about one pass; where too
/// many share them (values in a very narrow range) it sorts on all the bits
/// instead. On 8,192 normal values this measured 1.8x faster than a radix
/// sort on all eight bytes, itself 1.5x faster than a comparison sort.
fn sort_floats(values: &mut [f64]) {
    SORT_KEYS.with(|scratch| {
        let Ok(mut scratch) = scratch.try_borrow_mut() else {
            values.sort_unstable_by(f64::total_cmp);
            return;
        };
        let (keys, spare) = &mut *scratch;
        let fill = |keys: &mut Vec<u64>| {
            keys.clear();
            keys.extend(values.iter().map(|v| ordered(*v)));
        };
        fill(keys);
        radix_sort(keys, spare, 31);
        let budget = keys.len();
        if !insertion_sort(keys, budget) {
            fill(keys);
            radix_sort(keys, spare, 0);
        }
        for (v, k) in values.iter_mut().zip(keys.iter()) {
            *v = unordered(*k);
        }
    });
}

/// Bits per radix digit: a digit's 2,048 counters stay in cache.
const DIGIT_BITS: usize = 11;

/// A stable LSD radix sort of `keys` on their bits from `low` up, a digit
/// at a time, skipping digits every key shares.
fn radix_sort(keys: &mut Vec<u64>, spare: &mut Vec<u64>, low: usize) {
    const SLOTS: usize = 1 << DIGIT_BITS;
    spare.clear();
    spare.resize(keys.len(), 0);
    let shifts: Vec<usize> = (low..64).step_by(DIGIT_BITS).collect();
    let mut counts = vec![[0usize; SLOTS]; shifts.len()];
    for k in keys.iter() {
        for (count, shift) in counts.iter_mut().zip(&shifts) {
            count[((k >> shift) as usize) & (SLOTS - 1)] += 1;
        }
    }
    let n = keys.len();
    for (count, shift) in counts.iter_mut().zip(&shifts) {
        if count.contains(&n) {
            continue;
        }
        let mut next = 0;
        for slot in count.iter_mut() {
            (*slot, next) = (next, next + *slot);
        }
        for &k in keys.iter() {
            let slot = &mut count[((k >> shift) as usize) & (SLOTS - 1)];
            spare[*slot] = k;
            *slot += 1;
        }
        std::mem::swap(keys, spare);
    }
}

/// Sorts `keys` by insertion, or gives up (false, `keys` reordered but
/// whole) after `budget` moves.
fn insertion_sort(keys: &mut [u64], mut budget: usize) -> bool {
    for i in 1..keys.len() {
        let k = keys[i];
        let mut j = i;
        while j > 0 && keys[j - 1] > k {
            if budget == 0 {
                keys[j] = k;
                return false;
            }
            budget -= 1;
            keys[j] = keys[j - 1];
            j -= 1;
        }
        keys[j] = k;
    }
    true
}

/// A categorical (string or boolean) column's sketches.
#[derive(Debug, Clone, Default)]
pub struct Categorical {
    pub count: u64,
    pub min_length: Option<usize>,
    pub max_length: usize,
    pub total_length: u64,
    pub items: HashMap<String, u64, BuildHasherDefault<Fnv>>,
    /// Values of items past the cap.
    pub other: u64,
    pub distinct: Distinct,
}

impl Categorical {
    pub fn add(&mut self, v: &str) {
        self.count += 1;
        let chars = v.chars().count();
        self.min_length = Some(self.min_length.map_or(chars, |m| m.min(chars)));
        self.max_length = self.max_length.max(chars);
        self.total_length += chars as u64;
        self.distinct.add_str(v);
        self.add_item(v, 1);
    }

    fn add_item(&mut self, item: &str, n: u64) {
        let room = self.items.len() < MAX_ITEMS;
        match self.items.get_mut(item) {
            Some(count) => *count += n,
            None if room => {
                self.items.insert(item.to_string(), n);
            }
            None => self.other += n,
        }
    }

    /// Adds `other`'s values; its items join this one's while under the cap.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.min_length = match (self.min_length, other.min_length) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_length = self.max_length.max(other.max_length);
        self.total_length += other.total_length;
        // Most frequent first, so the cap drops the rarest.
        let mut items: Vec<(&String, &u64)> = other.items.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (item, n) in items {
            self.add_item(item, *n);
        }
        self.other += other.other;
        self.distinct.merge(&other.distinct);
    }

    fn encode(&self, w: &mut Writer) {
        w.u64(self.count);
        w.u64(self.min_length.map_or(u64::MAX, |m| m as u64));
        w.u64(self.max_length as u64);
        w.u64(self.total_length);
        w.len(self.items.len());
        for (item, n) in &self.items {
            w.str(item);
            w.u64(*n);
        }
        w.u64(self.other);
        self.distinct.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let count = r.u64()?;
        let min_length = Some(r.u64()?).filter(|m| *m != u64::MAX).map(|m| m as usize);
        let (max_length, total_length) = (r.u64()? as usize, r.u64()?);
        let mut items = HashMap::default();
        for _ in 0..r.count()? {
            items.insert(r.str()?, r.u64()?);
        }
        let other = r.u64()?;
        let distinct = Distinct::decode(r)?;
        Ok(Self { count, min_length, max_length, total_length, items, other, distinct })
    }

    /// The `k` most frequent items, most frequent first.
    pub fn frequent(&self, k: usize) -> Vec<(String, u64)> {
        let mut items: Vec<(String, u64)> = self.items.iter().map(|(k, v)| (k.clone(), *v)).collect();
        items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        items.truncate(k);
        items
    }
}

/// What a column's values are profiled as.
#[derive(Debug, Clone)]
pub enum Sketch {
    Numeric(Numeric),
    Categorical(Categorical),
    /// Counted only (structs, lists, binary...).
    Other,
}

/// One column in one window.
#[derive(Debug, Clone)]
pub struct ColumnProfile {
    pub data_type: String,
    pub rows: u64,
    pub nulls: u64,
    pub sketch: Sketch,
}

impl ColumnProfile {
    pub fn new(data_type: &str, numeric: bool, categorical: bool) -> Self {
        let sketch = if numeric {
            Sketch::Numeric(Numeric::default())
        } else if categorical {
            Sketch::Categorical(Categorical::default())
        } else {
            Sketch::Other
        };
        Self { data_type: data_type.to_string(), rows: 0, nulls: 0, sketch }
    }

    /// Adds `other`'s rows; both must profile the same kind of column.
    pub fn merge(&mut self, other: &mut Self) -> Decoded<()> {
        match (&mut self.sketch, &mut other.sketch) {
            (Sketch::Numeric(a), Sketch::Numeric(b)) => a.merge(b),
            (Sketch::Categorical(a), Sketch::Categorical(b)) => a.merge(b),
            (Sketch::Other, Sketch::Other) => {}
            _ => return Err(Corrupt(format!("a {} column cannot merge a {} one", self.data_type, other.data_type))),
        }
        self.rows += other.rows;
        self.nulls += other.nulls;
        Ok(())
    }

    pub fn encode(&mut self, w: &mut Writer) {
        w.str(&self.data_type);
        w.u64(self.rows);
        w.u64(self.nulls);
        match &mut self.sketch {
            Sketch::Numeric(n) => {
                w.u8(0);
                n.encode(w);
            }
            Sketch::Categorical(c) => {
                w.u8(1);
                c.encode(w);
            }
            Sketch::Other => w.u8(2),
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Decoded<Self> {
        let (data_type, rows, nulls) = (r.str()?, r.u64()?, r.u64()?);
        let sketch = match r.u8()? {
            0 => Sketch::Numeric(Numeric::decode(r)?),
            1 => Sketch::Categorical(Categorical::decode(r)?),
            2 => Sketch::Other,
            t => return Err(Corrupt(format!("sketch tag {t}"))),
        };
        Ok(Self { data_type, rows, nulls, sketch })
    }

    pub fn distinct(&self) -> Option<u64> {
        match &self.sketch {
            Sketch::Numeric(n) => Some(n.distinct.estimate()),
            Sketch::Categorical(c) => Some(c.distinct.estimate()),
            Sketch::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketches_estimate_what_they_saw() {
        let mut n = Numeric::default();
        for i in 0..100_000 {
            n.add(f64::from(i));
        }
        let q = n.quantiles(&[0.0, 0.5, 1.0]);
        assert!((q[1] - 50_000.0).abs() < 500.0, "{q:?}");
        assert_eq!((n.min, n.max), (0.0, 99_999.0));
        let distinct = n.distinct.estimate() as f64;
        assert!((distinct - 100_000.0).abs() / 100_000.0 < 0.05, "{distinct}");
        assert!((n.stddev().unwrap() - 28_867.66).abs() < 1.0);
        let mut chunked = Numeric::default();
        for chunk in (0..100_000).map(f64::from).collect::<Vec<_>>().chunks(8192) {
            chunked.add_all(chunk);
        }
        assert!((chunked.mean - n.mean).abs() < 1e-6 && (chunked.stddev().unwrap() - n.stddev().unwrap()).abs() < 1e-6);
        let mut c = Categorical::default();
        for s in ["a", "b", "a", "ccc"] {
            c.add(s);
        }
        assert_eq!(c.frequent(1), vec![("a".to_string(), 2)]);
        assert_eq!((c.min_length, c.max_length, c.distinct.estimate()), (Some(1), 3, 3));
    }

    #[test]
    fn floats_sort_as_total_cmp_orders_them() {
        let mut values: Vec<f64> = (0..20_000u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / 1e9 - 4_000.0)
            .chain([f64::NEG_INFINITY, -0.0, 0.0, f64::INFINITY, f64::MIN_POSITIVE, -5e-324, 5e-324, f64::NAN])
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable_by(f64::total_cmp);
        sort_floats(&mut values);
        assert!(values.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Values sharing their upper four bytes take the eight-byte sort.
        let mut narrow: Vec<f64> = (0..5_000u64).map(|i| 1e6 + ((i * 7919) % 5_000) as f64 * 1e-9).collect();
        let mut expected = narrow.clone();
        expected.sort_unstable_by(f64::total_cmp);
        sort_floats(&mut narrow);
        assert_eq!(narrow, expected);
        let mut same = vec![2.5; 100];
        sort_floats(&mut same);
        assert_eq!(same, vec![2.5; 100]);
    }

    fn numbers(range: std::ops::Range<i32>) -> Vec<f64> {
        // A skewed spread with NaNs and zeros, so every counter moves.
        range.map(|i| if i % 97 == 0 { f64::NAN } else { f64::from(i % 1000).powf(1.5) }).collect()
    }

    fn roundtrip(p: &mut ColumnProfile) -> ColumnProfile {
        let mut w = Writer::default();
        p.encode(&mut w);
        let mut r = Reader::new(&w.bytes);
        let back = ColumnProfile::decode(&mut r).unwrap();
        assert!(r.done());
        back
    }

    #[test]
    fn merged_sketches_match_one_pass_within_their_error() {
        let values = numbers(0..60_000);
        let mut whole = Numeric::default();
        whole.add_all(&values);
        let (mut a, mut b) = (Numeric::default(), Numeric::default());
        a.add_all(&values[..25_000]);
        values[25_000..].iter().for_each(|v| b.add(*v));
        a.merge(&mut b);
        assert_eq!(
            (a.count, a.nan, a.zeros, a.min, a.max),
            (whole.count, whole.nan, whole.zeros, whole.min, whole.max)
        );
        assert!((a.mean - whole.mean).abs() < 1e-9 * whole.mean.abs());
        assert!((a.stddev().unwrap() - whole.stddev().unwrap()).abs() < 1e-6 * whole.stddev().unwrap());
        assert_eq!(a.distinct.estimate(), whole.distinct.estimate(), "HLL union is exact");
        let grid: Vec<f64> = (0..=100).map(|i| f64::from(i) / 100.0).collect();
        let (qa, qw) = (a.quantiles(&grid), whole.quantiles(&grid));
        let span = whole.max - whole.min;
        for (x, y) in qa.iter().zip(&qw) {
            assert!((x - y).abs() < 0.01 * span, "{x} vs {y}");
        }
        // Bounded however many refreshes merge into it (the merge's compression may keep one more).
        for chunk in values.chunks(3_000) {
            let mut more = Numeric::default();
            more.add_all(chunk);
            let mut copy = a.clone();
            copy.merge(&mut more);
            assert!(copy.digest_size() <= DIGEST_SIZE + 1, "{}", copy.digest_size());
        }
        // An empty side changes nothing.
        let mut empty = Numeric::default();
        let before = a.quantiles(&grid);
        a.merge(&mut empty);
        assert_eq!(a.quantiles(&grid), before);
        empty.merge(&mut a);
        assert_eq!(empty.quantiles(&grid), before);

        let words: Vec<String> = (0..5_000).map(|i| format!("w{}", i % 37)).collect();
        let (mut c1, mut c2, mut cw) = (Categorical::default(), Categorical::default(), Categorical::default());
        words.iter().for_each(|w| cw.add(w));
        words[..1_234].iter().for_each(|w| c1.add(w));
        words[1_234..].iter().for_each(|w| c2.add(w));
        c1.merge(&c2);
        assert_eq!(c1.frequent(37), cw.frequent(37));
        assert_eq!(
            (c1.count, c1.min_length, c1.max_length, c1.total_length),
            (cw.count, cw.min_length, cw.max_length, cw.total_length)
        );
        assert_eq!(c1.distinct.estimate(), cw.distinct.estimate());
    }

    #[test]
    fn profiles_round_trip_through_bytes_exactly() {
        let mut n = ColumnProfile::new("double", true, false);
        n.rows = 20_000;
        n.nulls = 3;
        if let Sketch::Numeric(s) = &mut n.sketch {
            s.add_all(&numbers(0..19_997));
        }
        let mut back = roundtrip(&mut n);
        assert_eq!((back.data_type.as_str(), back.rows, back.nulls), ("double", 20_000, 3));
        let grid: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
        match (&mut n.sketch, &mut back.sketch) {
            (Sketch::Numeric(a), Sketch::Numeric(b)) => {
                assert_eq!(a.quantiles(&grid), b.quantiles(&grid));
                assert_eq!((a.count, a.nan, a.zeros, a.mean.to_bits()), (b.count, b.nan, b.zeros, b.mean.to_bits()));
                assert_eq!(a.stddev(), b.stddev());
                assert_eq!(a.distinct.estimate(), b.distinct.estimate());
            }
            _ => panic!("not numeric"),
        }
        // An empty numeric profile keeps its infinite min and max.
        let mut empty = ColumnProfile::new("double", true, false);
        match roundtrip(&mut empty).sketch {
            Sketch::Numeric(e) => assert_eq!((e.min, e.max), (f64::INFINITY, f64::NEG_INFINITY)),
            _ => panic!("not numeric"),
        }
        let mut c = ColumnProfile::new("string", false, true);
        if let Sketch::Categorical(s) = &mut c.sketch {
            (0..3_000).for_each(|i| s.add(&format!("v{}", i % 2_000)));
        }
        let back = roundtrip(&mut c);
        match (&c.sketch, back.sketch) {
            (Sketch::Categorical(a), Sketch::Categorical(b)) => {
                assert_eq!(a.frequent(10_000), b.frequent(10_000));
                assert_eq!((a.min_length, a.total_length, a.other), (b.min_length, b.total_length, b.other));
                assert_eq!(a.distinct.estimate(), b.distinct.estimate());
            }
            _ => panic!("not categorical"),
        }
        let mut other = ColumnProfile::new("struct", false, false);
        assert!(matches!(roundtrip(&mut other).sketch, Sketch::Other));
        let mut w = Writer::default();
        n.encode(&mut w);
        assert!(ColumnProfile::decode(&mut Reader::new(&w.bytes[..w.bytes.len() - 1])).is_err());
    }
}
