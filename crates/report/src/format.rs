//! How numbers are printed in reports.

use hipfrac_eval::intervals::Estimate;

/// Two decimals, or a dash for undefined values.
pub fn f2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "–".into()
    }
}

/// [`f2`] of an optional value.
pub fn opt(v: Option<f64>) -> String {
    v.map(f2).unwrap_or_else(|| "–".into())
}

/// A value with its 95 % interval: `0.80 (0.70–0.88)`.
pub fn ci(e: &Estimate) -> String {
    if e.value.is_finite() && e.lower.is_finite() {
        format!("{:.2} ({:.2}–{:.2})", e.value, e.lower, e.upper)
    } else {
        "–".into()
    }
}

/// A p-value: three decimals, `< 0.001` below that.
pub fn p3(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v < 0.001 {
        "< 0.001".into()
    } else {
        format!("{v:.3}")
    }
}
