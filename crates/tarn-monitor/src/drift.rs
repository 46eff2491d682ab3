//! Drift between two profiles of a column, from their sketches alone (no
//! rescan): for numbers, the Kolmogorov–Smirnov test, the Wasserstein-1
//! distance and the population stability index, from 1,000 quantiles of
//! each side; for categories, the chi-squared test, total variation,
//! L-infinity and Jensen–Shannon distances over the items both count.

use std::collections::{BTreeSet, HashMap};

/// Quantile points the numeric drift is computed from: 0, 0.001, ..., 1.
pub fn grid() -> Vec<f64> {
    (0..=1000).map(|i| f64::from(i) / 1000.0).collect()
}

/// The fraction of a distribution (given by its quantiles on `grid()`)
/// at or below `x`.
fn cdf(quantiles: &[f64], x: f64) -> f64 {
    let below = quantiles.partition_point(|&q| q <= x);
    below as f64 / quantiles.len() as f64
}

/// The KS statistic and its asymptotic p-value for samples of `n1` and `n2`.
pub fn ks_test(q1: &[f64], n1: u64, q2: &[f64], n2: u64) -> (f64, f64) {
    let statistic = q1.iter().chain(q2).map(|&x| (cdf(q1, x) - cdf(q2, x)).abs()).fold(0.0, f64::max);
    let n = (n1 as f64 * n2 as f64) / (n1 + n2).max(1) as f64;
    let root = n.sqrt();
    let lambda = (root + 0.12 + 0.11 / root.max(1e-9)) * statistic;
    (statistic, kolmogorov_p(lambda))
}

/// P(K > lambda) for the Kolmogorov distribution.
fn kolmogorov_p(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let term = 2.0 * (-1f64).powf(j - 1.0) * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

/// Wasserstein-1: the mean distance between matching quantiles.
pub fn wasserstein(q1: &[f64], q2: &[f64]) -> f64 {
    let n = q1.len().min(q2.len());
    if n == 0 {
        return 0.0;
    }
    q1.iter().zip(q2).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64
}

/// PSI over ten bins cut at the baseline's deciles.
pub fn psi(current: &[f64], baseline: &[f64]) -> f64 {
    const EPSILON: f64 = 1e-4;
    let edges: Vec<f64> = (1..10).map(|d| baseline[d * (baseline.len() - 1) / 10]).collect();
    let fractions = |q: &[f64]| -> Vec<f64> {
        let mut cuts = vec![0.0];
        cuts.extend(edges.iter().map(|&e| cdf(q, e)));
        cuts.push(1.0);
        cuts.windows(2).map(|w| (w[1] - w[0]).max(EPSILON)).collect()
    };
    let (actual, expected) = (fractions(current), fractions(baseline));
    actual.iter().zip(&expected).map(|(a, e)| (a - e) * (a / e).ln()).sum()
}

/// Distances between two item count maps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Categorical {
    pub chi_squared: (f64, f64),
    pub tv: f64,
    pub l_infinity: f64,
    pub js: f64,
}

pub fn categorical<S: std::hash::BuildHasher>(
    a: &HashMap<String, u64, S>,
    b: &HashMap<String, u64, S>,
) -> Option<Categorical> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let (na, nb) = (a.values().sum::<u64>() as f64, b.values().sum::<u64>() as f64);
    if na == 0.0 || nb == 0.0 {
        return None;
    }
    let count = |m: &HashMap<String, u64, S>, k: &String| m.get(k).copied().unwrap_or(0) as f64;
    let (mut tv, mut linf, mut js, mut chi) = (0.0, 0.0f64, 0.0, 0.0);
    for k in &keys {
        let (ca, cb) = (count(a, k), count(b, k));
        let (p, q) = (ca / na, cb / nb);
        tv += (p - q).abs() / 2.0;
        linf = linf.max((p - q).abs());
        let m = (p + q) / 2.0;
        let part = |x: f64| if x > 0.0 { x * (x / m).log2() } else { 0.0 };
        js += (part(p) + part(q)) / 2.0;
        let total = ca + cb;
        for (observed, n) in [(ca, na), (cb, nb)] {
            let expected = total * n / (na + nb);
            chi += (observed - expected).powi(2) / expected;
        }
    }
    let df = keys.len().saturating_sub(1) as f64;
    let pvalue = if df > 0.0 { upper_gamma_q(df / 2.0, chi / 2.0) } else { 1.0 };
    Some(Categorical { chi_squared: (chi, pvalue), tv, l_infinity: linf, js: js.max(0.0).sqrt() })
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos, g = 7.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized upper incomplete gamma Q(s, x): the chi-squared p-value.
fn upper_gamma_q(s: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < s + 1.0 {
        // Series for P, then Q = 1 - P.
        let (mut term, mut sum, mut n) = (1.0 / s, 1.0 / s, s);
        for _ in 0..500 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        return (1.0 - sum * (-x + s * x.ln() - ln_gamma(s)).exp()).clamp(0.0, 1.0);
    }
    // Continued fraction (Lentz).
    let tiny = 1e-300;
    let mut b = x + 1.0 - s;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..500 {
        let an = -f64::from(i) * (f64::from(i) - s);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    ((-x + s * x.ln() - ln_gamma(s)).exp() * h).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantiles_of(mut values: Vec<f64>) -> Vec<f64> {
        values.sort_by(f64::total_cmp);
        grid().iter().map(|q| values[((values.len() - 1) as f64 * q).round() as usize]).collect()
    }

    #[test]
    fn shifted_numbers_drift_and_equal_ones_do_not() {
        let a = quantiles_of((0..10_000).map(|i| f64::from(i) / 10_000.0).collect());
        let b = quantiles_of((0..10_000).map(|i| f64::from(i) / 10_000.0 + 0.5).collect());
        let (d, p) = ks_test(&a, 10_000, &b, 10_000);
        assert!((d - 0.5).abs() < 0.01 && p < 1e-6, "{d} {p}");
        assert!((wasserstein(&a, &b) - 0.5).abs() < 0.01);
        assert!(psi(&b, &a) > 1.0);
        let (d, p) = ks_test(&a, 10_000, &a, 10_000);
        assert!(d < 0.01 && p > 0.99, "{d} {p}");
        assert!(psi(&a, &a).abs() < 1e-9);
    }

    #[test]
    fn categories_match_scipy() {
        let a: HashMap<String, u64> = [("x".into(), 30), ("y".into(), 70)].into();
        let b: HashMap<String, u64> = [("x".into(), 50), ("y".into(), 50)].into();
        let c = categorical(&a, &b).unwrap();
        // scipy.stats.chi2_contingency([[30, 70], [50, 50]], correction=False): 8.333, p 0.00389
        assert!((c.chi_squared.0 - 8.3333).abs() < 1e-3, "{c:?}");
        assert!((c.chi_squared.1 - 0.003892).abs() < 1e-5, "{c:?}");
        assert!((c.tv - 0.2).abs() < 1e-12 && (c.l_infinity - 0.2).abs() < 1e-12);
        // scipy.spatial.distance.jensenshannon([.3, .7], [.5, .5], base=2)
        assert!((c.js - 0.174_084).abs() < 1e-5, "{c:?}");
    }
}
