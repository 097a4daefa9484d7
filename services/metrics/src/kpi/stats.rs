//! Confidence intervals for KPI values: Wilson score for rates (honest at small n and near
//! 0 or 1), the normal approximation for means and NPS.

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of `hits` out of `n`.
pub fn wilson(hits: i64, n: i64, z: f64) -> Option<(f64, f64)> {
    if n <= 0 {
        return None;
    }
    let n = n as f64;
    let p = hits as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Mean ± z·s/√n from a sum and a sum of squares.
pub fn mean(sum: f64, sum_sq: f64, n: i64, z: f64) -> Option<(f64, f64, f64)> {
    if n <= 0 {
        return None;
    }
    let nf = n as f64;
    let m = sum / nf;
    let var = if n > 1 {
        ((sum_sq - nf * m * m) / (nf - 1.0)).max(0.0)
    } else {
        0.0
    };
    let half = z * (var / nf).sqrt();
    Some((m, m - half, m + half))
}

/// NPS (−100..100) of `promoters` and `detractors` among `n`, with its interval: each answer
/// scores +100, 0 or −100.
pub fn nps(promoters: i64, detractors: i64, n: i64, z: f64) -> Option<(f64, f64, f64)> {
    if n <= 0 {
        return None;
    }
    let nf = n as f64;
    let (p, d) = (promoters as f64 / nf, detractors as f64 / nf);
    let score = (p - d) * 100.0;
    let var = (p + d - (p - d).powi(2)) * 10_000.0;
    let half = z * (var / nf).sqrt();
    Some((score, (score - half).max(-100.0), (score + half).min(100.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook() {
        // 8 of 10: the Wilson 95 % interval is about (0.490, 0.943).
        let (lo, hi) = wilson(8, 10, Z95).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        // All hits: the upper bound is 1, the lower bound is not.
        let (lo, hi) = wilson(5, 5, Z95).unwrap();
        assert!(lo < 0.6 && (hi - 1.0).abs() < 1e-9);
        assert!(wilson(0, 0, Z95).is_none());
    }

    #[test]
    fn nps_and_means() {
        let (s, lo, hi) = nps(6, 2, 10, Z95).unwrap();
        assert!((s - 40.0).abs() < 1e-9 && lo < s && hi > s);
        let (m, lo, hi) = mean(25.0, 127.0, 5, Z95).unwrap();
        assert!((m - 5.0).abs() < 1e-9 && lo < 5.0 && hi > 5.0);
        let (m, lo, hi) = mean(7.0, 49.0, 1, Z95).unwrap();
        assert_eq!((m, lo, hi), (7.0, 7.0, 7.0));
    }
}
