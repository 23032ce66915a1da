//! The f64 reference every backend is tested against: the same f32
//! inputs, widened to f64, `r_i = e^(x_i − m) / Σ_j e^(x_j − m)` with `m` the
//! max, and the special-value limits for NaN, `+∞` and fully masked rows. Slow and
//! simple on purpose; it allocates and is not meant for hot paths.

/// Softmax in f64 of f32 inputs.
///
/// ```
/// let r = simd_softmax::reference::softmax(&[0.0, 0.0]);
/// assert_eq!(r, vec![0.5, 0.5]);
/// ```
pub fn softmax(x: &[f32]) -> Vec<f64> {
    match special(x) {
        Some(Special::Nan) => vec![f64::NAN; x.len()],
        Some(Special::PosInf(k)) => x
            .iter()
            .map(|&v| {
                if v == f32::INFINITY {
                    1.0 / k as f64
                } else {
                    0.0
                }
            })
            .collect(),
        Some(Special::AllNegInf) => vec![0.0; x.len()],
        None => {
            let m = max(x);
            let e: Vec<f64> = x.iter().map(|&v| libm::exp(v as f64 - m)).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        }
    }
}

/// Log-softmax in f64 of f32 inputs: `x − m − ln Σ e^(x−m)`.
///
/// ```
/// let r = simd_softmax::reference::log_softmax(&[1.0, 1.0]);
/// assert!((r[0] + std::f64::consts::LN_2).abs() < 1e-15);
/// ```
pub fn log_softmax(x: &[f32]) -> Vec<f64> {
    match special(x) {
        Some(Special::Nan) => vec![f64::NAN; x.len()],
        Some(Special::PosInf(k)) => x
            .iter()
            .map(|&v| {
                if v == f32::INFINITY {
                    -libm::log(k as f64)
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect(),
        Some(Special::AllNegInf) => vec![f64::NEG_INFINITY; x.len()],
        None => {
            let m = max(x);
            let l = lse_shifted(x, m);
            x.iter().map(|&v| (v as f64 - m) - l).collect()
        }
    }
}

/// `ln Σ e^x` in f64 (`−∞` for an empty slice).
///
/// ```
/// assert_eq!(simd_softmax::reference::logsumexp(&[]), f64::NEG_INFINITY);
/// ```
pub fn logsumexp(x: &[f32]) -> f64 {
    match special(x) {
        Some(Special::Nan) => f64::NAN,
        Some(Special::PosInf(_)) => f64::INFINITY,
        Some(Special::AllNegInf) => f64::NEG_INFINITY,
        None => {
            let m = max(x);
            m + lse_shifted(x, m)
        }
    }
}

/// The logistic function `1 / (1 + e^(−z))` in f64, the 2-class softmax.
///
/// ```
/// let s = simd_softmax::reference::logistic(0.0);
/// assert_eq!(s, 0.5);
/// ```
pub fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + libm::exp(-z))
    } else {
        let e = libm::exp(z);
        e / (1.0 + e)
    }
}

enum Special {
    Nan,
    PosInf(usize),
    AllNegInf,
}

/// The special-value class of a row, `None` for an ordinary row (finite max). An
/// empty row is "all −∞" (the log of an empty sum), which gives empty outputs.
fn special(x: &[f32]) -> Option<Special> {
    if x.iter().any(|v| v.is_nan()) {
        return Some(Special::Nan);
    }
    let k = x.iter().filter(|&&v| v == f32::INFINITY).count();
    if k > 0 {
        return Some(Special::PosInf(k));
    }
    x.iter()
        .all(|&v| v == f32::NEG_INFINITY)
        .then_some(Special::AllNegInf)
}

fn max(x: &[f32]) -> f64 {
    x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64))
}

/// `ln Σ e^(x−m)` as `ln k + log1p(δ/k)`: `k` entries equal to the max,
/// `δ` the rest. `ln(k + δ)` would lose a `δ` below f64's resolution of `k`
/// (`[0, −50]`: `δ = e^-50`, and log-softmax at the max is `≈ −δ`).
fn lse_shifted(x: &[f32], m: f64) -> f64 {
    let k = x.iter().filter(|&&v| v as f64 == m).count() as f64;
    let delta: f64 = x
        .iter()
        .filter(|&&v| v as f64 != m)
        .map(|&v| libm::exp(v as f64 - m))
        .sum();
    libm::log(k) + libm::log1p(delta / k)
}
