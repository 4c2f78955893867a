//! The probability side of the risk model: the operator's per-server failure rate, and the
//! chance that enough servers fail inside a window to lose quorum. The derivation is in the
//! module doc of [`crate::report`].

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Milliseconds in a year (365.25 days), the unit the failure rate is kept in.
pub const YEAR_MS: f64 = 365.25 * 24.0 * 3600.0 * 1000.0;

/// A per-server failure rate, e.g. `2/year`: independent failures at a constant rate (a
/// Poisson process per server).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureRate {
    /// As the operator wrote it.
    pub text: String,
    /// Failures per server per year.
    pub per_year: f64,
}

/// Why a failure rate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid failure rate {text:?}: {why} (expected COUNT/PERIOD, e.g. 2/year, 1/month, 0.5/week, 1/1000h)"
)]
pub struct FailureRateError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

impl FailureRate {
    /// Failures per server per millisecond (λ in the module doc).
    pub fn per_ms(&self) -> f64 {
        self.per_year / YEAR_MS
    }
}

impl fmt::Display for FailureRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for FailureRate {
    type Err = FailureRateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| FailureRateError {
            text: s.to_string(),
            why: why.to_string(),
        };
        let (count, period) = s.trim().split_once('/').ok_or_else(|| err("no '/'"))?;
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| err("the count is not a number"))?;
        if !count.is_finite() || count < 0.0 {
            return Err(err("the count must be a finite number >= 0"));
        }
        let period = period.trim();
        // `year` means `1year`: humantime wants a number first.
        let period_text = if period.starts_with(|c: char| c.is_ascii_digit()) {
            period.to_string()
        } else {
            format!("1{period}")
        };
        let d = humantime::parse_duration(&period_text)
            .map_err(|e| err(&format!("period {period:?}: {e}")))?;
        let period_ms = d.as_secs_f64() * 1000.0;
        if period_ms <= 0.0 {
            return Err(err("the period must be longer than 0"));
        }
        Ok(FailureRate {
            text: s.trim().to_string(),
            per_year: count * YEAR_MS / period_ms,
        })
    }
}

/// Probability that at least `f + 1` of `k` servers fail within `t_ms`, each failing
/// independently at `lambda_per_ms` (a binomial tail with q = 1 − e^(−λt)). With `f == 0` this
/// is 1 − e^(−λ·k·t). Returns 0 when fewer than `f + 1` servers could fail.
pub fn p_window(lambda_per_ms: f64, k: u32, f: u32, t_ms: f64) -> f64 {
    if t_ms <= 0.0 || lambda_per_ms <= 0.0 || k <= f {
        return 0.0;
    }
    if f == 0 {
        return -(-lambda_per_ms * f64::from(k) * t_ms).exp_m1();
    }
    let q = -(-lambda_per_ms * t_ms).exp_m1();
    let mut total = 0.0;
    for j in (f + 1)..=k {
        total += binomial(k, j) * q.powi(j as i32) * (1.0 - q).powi((k - j) as i32);
    }
    total.clamp(0.0, 1.0)
}

/// Probability that at least one of independent events with probabilities `ps` happens:
/// 1 − Π(1 − p), computed in log space so tiny probabilities keep their digits.
pub fn p_any(ps: impl IntoIterator<Item = f64>) -> f64 {
    let mut log_none = 0.0;
    for p in ps {
        if p >= 1.0 {
            return 1.0;
        }
        log_none += (-p).ln_1p();
    }
    -log_none.exp_m1()
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// Rounds to `digits` significant digits, so that last-bit differences between platforms'
/// `exp`/`ln` never reach the committed reports.
pub fn round_sig(x: f64, digits: usize) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.*e}", digits.saturating_sub(1))
        .parse()
        .unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_several_forms() {
        let r: FailureRate = "2/year".parse().unwrap();
        assert!((r.per_year - 2.0).abs() < 1e-9);
        let r: FailureRate = "1/6months".parse().unwrap();
        assert!((r.per_year - 2.0).abs() < 0.01, "{}", r.per_year);
        let r: FailureRate = "1/1000h".parse().unwrap();
        assert!((r.per_year - 8.766).abs() < 1e-3, "{}", r.per_year);
        let r: FailureRate = "0/year".parse().unwrap();
        assert_eq!(r.per_year, 0.0);
        for bad in ["2", "x/year", "2/fortnights", "-1/year", "2/0s", "NaN/year"] {
            let e = bad.parse::<FailureRate>().unwrap_err().to_string();
            assert!(e.contains("e.g. 2/year"), "{bad}: {e}");
        }
    }

    #[test]
    fn one_window_at_tolerance_zero_matches_the_closed_form() {
        let lambda = 2.0 / YEAR_MS;
        let t = 20_000.0;
        let p = p_window(lambda, 2, 0, t);
        let expected = 1.0 - (-lambda * 2.0 * t).exp();
        assert!((p - expected).abs() < 1e-15, "{p} vs {expected}");
        // Two windows combine as one of the summed exposure.
        let both = p_any([p_window(lambda, 2, 0, t), p_window(lambda, 2, 0, t)]);
        let one = p_window(lambda, 2, 0, 2.0 * t);
        assert!(((both - one) / one).abs() < 1e-9, "{both} vs {one}");
    }

    #[test]
    fn tolerance_one_needs_two_failures_and_is_second_order() {
        let lambda = 2.0 / YEAR_MS;
        let t = 20_000.0;
        let p0 = p_window(lambda, 3, 0, t);
        let p1 = p_window(lambda, 4, 1, t);
        assert!(p1 > 0.0 && p1 < p0 * 1e-3, "{p1} vs {p0}");
        assert_eq!(p_window(lambda, 1, 1, t), 0.0);
        assert_eq!(p_window(0.0, 3, 0, t), 0.0);
    }

    #[test]
    fn rounding_keeps_significant_digits() {
        assert_eq!(round_sig(0.000123456, 3), 0.000123);
        assert_eq!(round_sig(98765.0, 2), 99000.0);
        assert_eq!(round_sig(0.0, 3), 0.0);
    }
}
