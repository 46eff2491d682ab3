//! One column's profile in one window, kept as mergeable sketches of
//! bounded size whatever the row count: counts, Welford's mean and
//! variance, min and max, a t-digest for quantiles, a HyperLogLog for the
//! distinct count, and capped item counts for categorical columns.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use datafusion_functions_aggregate_common::tdigest::TDigest;

/// Centroids a column's t-digest keeps.
const DIGEST_SIZE: usize = 200;
/// Values buffered before they are merged into the digest.
const BUFFER: usize = 8_192;
/// Distinct items a categorical profile counts; later new items count as "other".
const MAX_ITEMS: usize = 10_000;
/// HyperLogLog registers (2^12: about 1.6% error).
const HLL_BITS: u32 = 12;

/// A HyperLogLog distinct counter.
#[derive(Debug, Clone)]
pub struct Distinct {
    registers: Vec<u8>,
}

impl Default for Distinct {
    fn default() -> Self {
        Self { registers: vec![0; 1 << HLL_BITS] }
    }
}

/// FNV-1a over bytes: cheap, and the same value always hashes the same.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64's finalizer: spreads a hash's bits for the registers.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Distinct {
    pub fn add_bits(&mut self, bits: u64) {
        self.add_hash(mix(bits));
    }

    pub fn add_str(&mut self, text: &str) {
        let mut fnv = Fnv::default();
        fnv.write(text.as_bytes());
        self.add_hash(mix(fnv.finish()));
    }

    fn add_hash(&mut self, hash: u64) {
        let index = (hash >> (64 - HLL_BITS)) as usize;
        let rank = ((hash << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        estimate.round() as u64
    }
}

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
        let mut numbers = 0u64;
        let mut sum = 0.0;
        for &v in values {
            self.distinct.add_bits(v.to_bits());
            if v.is_nan() {
                self.nan += 1;
                continue;
            }
            numbers += 1;
            sum += v;
            self.zeros += u64::from(v == 0.0);
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.buffer.push(v);
        }
        self.count += values.len() as u64;
        if numbers == 0 {
            return;
        }
        let mean = sum / numbers as f64;
        let m2: f64 = values.iter().filter(|v| !v.is_nan()).map(|v| (v - mean) * (v - mean)).sum();
        let before = (self.numbers() - numbers) as f64;
        let (n, total) = (numbers as f64, self.numbers() as f64);
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

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            self.buffer.sort_unstable_by(f64::total_cmp);
            self.digest = self.digest.merge_sorted_f64(&self.buffer);
            self.buffer.clear();
        }
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
        let room = self.items.len() < MAX_ITEMS;
        match self.items.get_mut(v) {
            Some(n) => *n += 1,
            None if room => {
                self.items.insert(v.to_string(), 1);
            }
            None => self.other += 1,
        }
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
}
