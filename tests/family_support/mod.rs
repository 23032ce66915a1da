//! Shared by `tests/family.rs` and `tests/properties.rs`: the engine list,
//! the family's operations behind one trait, seeded generators, the f64
//! references of the family and the ULP metric (docs/ACCURACY.md).
//!
//! Each binary does `mod family_support;` and uses only part of it.
#![allow(dead_code)]

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Anchor, Backend, Softmax};
#[cfg(target_arch = "x86_64")]
use simd_softmax_kernels::portable::{self, DynKernel};

// ---------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------

/// The softmax family of one engine. For a dispatched backend these are the
/// checked `Softmax` methods with the `Result` unwrapped (the callers pass
/// only valid arguments; the error paths are tested on `Softmax` directly);
/// for a kernel instantiation they are the unchecked `Kernel` methods.
pub trait Family: Sync {
    fn softmax(&self, x: &[f32], y: &mut [f32]);
    fn softmax_scaled(&self, x: &[f32], y: &mut [f32], alpha: f32);
    fn softmax_scaled_rows(&self, x: &[f32], y: &mut [f32], row_len: usize, alpha: f32);
    fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]);
    fn jacobian(&self, y: &[f32], out: &mut [f32]);
    fn logits_from_probs(&self, p: &[f32], out: &mut [f32], anchor: Anchor);
    fn softmax_of_combination(&self, terms: &[(f32, &[f32])], out: &mut [f32]);
    fn sigmoid(&self, z: &[f32], y: &mut [f32]);
}

impl Family for Softmax {
    fn softmax(&self, x: &[f32], y: &mut [f32]) {
        Softmax::softmax(self, x, y).expect("softmax refused valid arguments")
    }
    fn softmax_scaled(&self, x: &[f32], y: &mut [f32], alpha: f32) {
        Softmax::softmax_scaled(self, x, y, alpha).expect("softmax_scaled refused valid arguments")
    }
    fn softmax_scaled_rows(&self, x: &[f32], y: &mut [f32], row_len: usize, alpha: f32) {
        Softmax::softmax_scaled_rows(self, x, y, row_len, alpha)
            .expect("softmax_scaled_rows refused valid arguments")
    }
    fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        Softmax::softmax_backward(self, y, dy, dx)
            .expect("softmax_backward refused valid arguments")
    }
    fn jacobian(&self, y: &[f32], out: &mut [f32]) {
        Softmax::jacobian(self, y, out).expect("jacobian refused valid arguments")
    }
    fn logits_from_probs(&self, p: &[f32], out: &mut [f32], anchor: Anchor) {
        Softmax::logits_from_probs(self, p, out, anchor)
            .expect("logits_from_probs refused valid arguments")
    }
    fn softmax_of_combination(&self, terms: &[(f32, &[f32])], out: &mut [f32]) {
        Softmax::softmax_of_combination(self, terms, out)
            .expect("softmax_of_combination refused valid arguments")
    }
    fn sigmoid(&self, z: &[f32], y: &mut [f32]) {
        Softmax::sigmoid(self, z, y).expect("sigmoid refused valid arguments")
    }
}

#[cfg(target_arch = "x86_64")]
impl Family for &'static dyn DynKernel {
    fn softmax(&self, x: &[f32], y: &mut [f32]) {
        DynKernel::softmax(*self, x, y)
    }
    fn softmax_scaled(&self, x: &[f32], y: &mut [f32], alpha: f32) {
        DynKernel::softmax_scaled(*self, x, y, alpha)
    }
    fn softmax_scaled_rows(&self, x: &[f32], y: &mut [f32], row_len: usize, alpha: f32) {
        DynKernel::softmax_scaled_rows(*self, x, y, row_len, alpha)
    }
    fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        DynKernel::softmax_backward(*self, y, dy, dx)
    }
    fn jacobian(&self, y: &[f32], out: &mut [f32]) {
        DynKernel::jacobian(*self, y, out)
    }
    fn logits_from_probs(&self, p: &[f32], out: &mut [f32], anchor: Anchor) {
        DynKernel::logits_from_probs(*self, p, out, anchor)
    }
    fn softmax_of_combination(&self, terms: &[(f32, &[f32])], out: &mut [f32]) {
        DynKernel::softmax_of_combination(*self, terms, out)
    }
    fn sigmoid(&self, z: &[f32], y: &mut [f32]) {
        DynKernel::sigmoid(*self, z, y)
    }
}

/// One engine the family tests run.
pub struct Engine {
    /// Printed name: the backend's name, or `portableN`.
    pub name: String,
    /// f32 lanes per vector (for the tail-length sweeps).
    pub lanes: usize,
    pub ops: Box<dyn Family>,
}

/// Every dispatched backend this CPU runs, through the checked API, each
/// skipped one printed with why (`avx512: skipped, CPU lacks avx512f`).
pub fn backends() -> Vec<(Backend, Softmax)> {
    let mut v = Vec::new();
    for &b in Backend::ALL {
        match Softmax::with_backend(b) {
            Ok(sm) => {
                assert_eq!(sm.backend(), b, "with_backend({b}) built another backend");
                v.push((b, sm));
            }
            Err(e) => println!(
                "{}: skipped, {}",
                b.name(),
                b.unavailable_reason()
                    .map_or_else(|| format!("with_backend refused: {e}"), str::to_string)
            ),
        }
    }
    v
}

/// The engine list, in this one place. A new `Backend` variant is picked up
/// from `Backend::ALL` by [`backends`]; a new kernel instantiation is one
/// `kernel(...)` line here. The portable 16-lane kernel runs AVX-512's lane
/// and tail logic on any x86-64 CPU.
pub fn engines() -> Vec<Engine> {
    #[cfg(target_arch = "x86_64")]
    fn kernel(name: &str, k: &'static dyn DynKernel) -> Engine {
        Engine {
            name: name.to_string(),
            lanes: k.lanes(),
            ops: Box::new(k),
        }
    }
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut v: Vec<Engine> = backends()
        .into_iter()
        .map(|(b, sm)| Engine {
            name: b.name().to_string(),
            lanes: b.lanes(),
            ops: Box::new(sm),
        })
        .collect();
    // The 4- and 8-lane portable kernels are not built (see
    // `simd_softmax_kernels::portable`); their lane shapes run natively.
    #[cfg(target_arch = "x86_64")]
    v.push(kernel("portable16", portable::lanes16_dyn()));
    v
}

// ---------------------------------------------------------------------------
// Random inputs
// ---------------------------------------------------------------------------

pub type Rng = Xoshiro256PlusPlus;

pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

pub fn uniform(g: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| g.random_range(lo..=hi)).collect()
}

/// A standard normal deviate (Box–Muller).
pub fn std_normal(g: &mut Rng) -> f64 {
    let u1: f64 = 1.0 - g.random::<f64>(); // (0, 1]
    let u2: f64 = g.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn normal(g: &mut Rng, n: usize, sigma: f64) -> Vec<f32> {
    (0..n).map(|_| (sigma * std_normal(g)) as f32).collect()
}

/// Logit rows of the kinds docs/ACCURACY.md names that stay finite: uniform, normal
/// with σ from 0.1 to 100, huge ranges (±1e30), all equal, one dominant
/// entry, subnormal values.
pub const LOGIT_KINDS: [&str; 8] = [
    "uniform[-10,10]",
    "normal(0.1)",
    "normal(1)",
    "normal(100)",
    "huge(±1e30)",
    "all-equal",
    "one-dominant",
    "subnormal",
];

pub fn logits(kind: &str, g: &mut Rng, n: usize) -> Vec<f32> {
    match kind {
        "uniform[-10,10]" => uniform(g, n, -10.0, 10.0),
        "normal(0.1)" => normal(g, n, 0.1),
        "normal(1)" => normal(g, n, 1.0),
        "normal(100)" => normal(g, n, 100.0),
        "huge(±1e30)" => uniform(g, n, -1e30, 1e30),
        "all-equal" => vec![g.random_range(-50.0f32..50.0); n],
        "one-dominant" => {
            let mut x = uniform(g, n, -1.0, 1.0);
            if n > 0 {
                let k = g.random_range(0..n);
                x[k] = 25.0;
            }
            x
        }
        "subnormal" => (0..n)
            .map(|_| f32::from_bits(g.random_range(1u32..0x0080_0000)) * sign(g))
            .collect(),
        _ => unreachable!("unknown kind {kind}"),
    }
}

fn sign(g: &mut Rng) -> f32 {
    if g.random::<bool>() { 1.0 } else { -1.0 }
}

/// `0..=3`: the unaligned offsets (in elements) tested against the
/// reference; `0` is the aligned-as-allocated case.
pub const OFFSETS: std::ops::RangeInclusive<usize> = 0..=3;

/// Lengths of the differential sweep: every tail of every lane count
/// (1..=64) and a few long rows (kept short of 2^20: the main
/// softmax is swept there by the differential harness; the family shares
/// its passes).
pub fn lengths() -> impl Iterator<Item = usize> {
    (1..=64).chain([100, 1000, 4096, 32000])
}

// ---------------------------------------------------------------------------
// The ULP metric (docs/ACCURACY.md)
// ---------------------------------------------------------------------------

/// `2^-24`, the unit roundoff of f32: one rounding has relative error ≤ u.
pub const U: f64 = 1.0 / 16_777_216.0;
/// `2^-126`, the smallest normal f32.
pub const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;

/// The spacing of f32 numbers at `r` (the ULP of an f32 result whose exact
/// value is `r`): `2^(e−23)` for `2^e ≤ |r| < 2^(e+1)`, `2^-149` below the
/// normal range. A relative error `ε` is less than `ε/u` of these ULP
/// (`ulp(r) > u·|r|`), which is how the bounds below turn relative error
/// into ULP.
pub fn ulp_f32(r: f64) -> f64 {
    let a = r.abs();
    if a < MIN_NORMAL {
        return 2f64.powi(-149);
    }
    let e = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    2f64.powi(e - 23)
}

/// `|y − r| / ulp_f32(r)`, the docs/ACCURACY.md error, with the flush allowance:
/// a `0` is exact for a result whose value, within the `bound` (in ULP), may
/// lie below `2^-126`. An exact `0` (`r == 0`) needs `y == 0`.
pub fn ulps(y: f32, r: f64, bound: f64) -> f64 {
    if r == 0.0 {
        return if y == 0.0 { 0.0 } else { f64::INFINITY };
    }
    if y == 0.0 && r.abs() * (1.0 - bound * 2.0 * U).max(0.0) < MIN_NORMAL {
        return 0.0;
    }
    let e = (y as f64 - r).abs() / ulp_f32(r);
    if e.is_nan() { f64::INFINITY } else { e }
}

/// `[0x7fc1_2345; n]` as f32 bits: a NaN with a payload no kernel produces.
/// A refused call must leave an output filled with it byte-for-byte.
pub const SENTINEL: u32 = 0x7fc1_2345;

pub fn sentinel(n: usize) -> Vec<f32> {
    vec![f32::from_bits(SENTINEL); n]
}

pub fn untouched(out: &[f32]) -> bool {
    out.iter().all(|v| v.to_bits() == SENTINEL)
}

// ---------------------------------------------------------------------------
// Bounds. u = 2^-24; one f32 rounding has relative error ≤ u, and a relative
// error ε is < ε/u ULP of the result (see `ulp_f32`), so "k roundings of
// relative size u" cost at most k ULP.
// ---------------------------------------------------------------------------

/// `softmax_scaled(x, α)` computes, with `m` the max (`α > 0`) or the min
/// (`α < 0`): `d_i = fl(x_i − m)`, `t_i = fl(α·d_i)`, `e_i = exp(t_i)`, the
/// blocked sum `Σ e_j`, and `e_i · fl(1/Σ)`. Against the exact
/// `r_i = e^{α(x_i − m)} / Σ_j e^{α(x_j − m)}`:
/// * `|d_i − (x_i − m)| ≤ u·|x_i − m|` and `|t_i − α·d_i| ≤ u·|α·d_i|`, so the
///   exponent is off by at most `2u·|α(x_i − m)|`, a relative error of
///   `e^{t_i}` of the same size: `2·|α(x_i − m)|` ULP;
/// * the denominator sums those perturbed terms: its relative error is the
///   `r`-weighted mean, `2·Σ_j r_j·|α(x_j − m)|` ULP;
/// * the exp polynomial, the blocked sum, the reciprocal and the product are
///   ACCURACY.md's constant `C ≤ 4` (the same passes as `softmax`).
///
/// `err_i ≤ 4 + 2·|α(x_i − m)| + 2·Σ_j r_j·|α(x_j − m)|` (for `α = 1` the
/// kernel is the plain softmax, whose documented bound `4 + |x_i − m|` is smaller).
pub const C_SCALED: f64 = 4.0;

/// `sigmoid(z)`: `t = exp(−|z|)` (≤ 1 ULP: relative ≤ 2u), `q = fl(1 + t)`,
/// `r = fl(1/q)`, and for `z < 0` also `fl(t·r)`. `t`'s error reaches the
/// result scaled by `t/(1+t) ≤ 1/2` for `z ≥ 0` (then ≤ 1 + 1 + 1 = 3 ULP) and
/// by `1/(1+t) ≤ 1` for `z < 0` (≤ 2 + 1 + 1 + 1 = 5 ULP).
pub const C_SIGMOID: f64 = 5.0;

/// `softmax_backward`: `dx_i = fl(y_i · fl(dy_i − fl32(dot)))` with `dot` the
/// blocked sum of `fl(y_j·dy_j)`. With `S = Σ_j |y_j·dy_j|`: the products
/// cost `u·S`; the blocked sum (≤ 16 additions per lane, log2(lanes) + 2 in
/// the horizontal reduction, an f64 total) at most `(18 + log2 L)·u·S` in the
/// worst case; rounding `dot` to f32 `u·S`; the subtraction
/// `u·(|dy_i| + S)`; the product `u·|dx_i| ≤ u·|y_i|·(|dy_i| + S)`. So
/// `|dx_i − r_i| ≤ (22 + log2 L)·u·|y_i|·(|dy_i| + S)`, at most 26 units of
/// `u·|y_i|·(|dy_i| + S)`: a pure ULP bound would be wrong, since
/// `dy_i − ⟨y, dy⟩` can cancel to anything.
pub const K_BACKWARD: f64 = 26.0;

/// `jacobian`: off the diagonal `fl(y_j · (−y_i))`, one correctly rounded
/// product of f32 values (exact in f64): ≤ 0.5 ULP. On it `y_i·(1 − y_i)`:
/// `1 − y_i` is exact for `y_i ≥ 1/2` (Sterbenz) else one rounding, then the
/// product: ≤ 2 ULP.
pub const JAC_OFF: f64 = 0.5;
pub const JAC_DIAG: f64 = 2.0;

/// `logits_from_probs` with `Anchor::Component(k)`: `out_i = fl(L_i − L_k)`
/// with `L` the vector `ln`, which is within 2 ULP of `ln p` (math.rs: series
/// truncation < 0.02 ULP, then ≤ 3 roundings of which the last two are
/// `e·ln2` additions). So `|out_i − r_i| ≤ 2·ulp(ln p_i) + 2·ulp(ln p_k) +
/// ½·ulp(out_i) ≤ 4.5·ulp(|ln p_i| + |c|)`: absolute, in units of
/// `ulp_f32(|ln p_i| + |c|)`, since the addition of `c` cancels.
pub const K_LOGITS_COMPONENT: f64 = 4.5;

/// `Anchor::ZeroMean`: `c = −fl32(Σ_j L_j / N)`, the sum blocked. With
/// `M = mean_j |ln p_j|` (≥ |c|) and the unit `ulp_f32(|ln p_i| + M)`: the
/// `L_j` errors average to ≤ 2·2u·M (< 4 units), the blocked sum's
/// allowance (2 units), `c` rounded to f32 ½, `L_i` 2, the final addition ½: 9
/// units.
pub const K_LOGITS_ZERO_MEAN: f64 = 9.0;

/// `softmax_of_combination(terms)`: `z_i` accumulates `α_k·x_{k,i}` by
/// (fused or separate) multiply-adds, each step ≤ 2 roundings of size
/// `≤ u·A_i` with `A_i = Σ_k |α_k x_{k,i}|`: `|z̃_i − z_i| ≤ 2T·u·A_i` for `T`
/// terms. Then the softmax of `z̃` (the max's own error cancels: softmax is
/// shift invariant): `fl(z̃_i − m)` adds `u·|z_i − m|`. So with
/// `E_i = 2T·A_i + |z_i − m|`, as for `softmax_scaled`:
/// `err_i ≤ 4 + E_i + Σ_j r_j·E_j`.
pub const C_COMBINATION: f64 = 4.0;

/// ACCURACY.md's bound for `softmax` (and `softmax_scaled` at `α = 1`, which
/// is the same kernel): `4 + |x_i − m|` ULP.
pub fn softmax_bounds(x: &[f32]) -> Vec<f64> {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    x.iter().map(|&v| C_SCALED + (v as f64 - m).abs()).collect()
}

/// The input-dependent part of the `softmax_scaled` bound (see
/// [`C_SCALED`]): `2·|α(x_i − m)| + 2·Σ_j w_j·|α(x_j − m)|`, with `w` the
/// reference (or, in the property tests, the computed) probabilities.
pub fn scaled_terms(x: &[f32], alpha: f32, w: &[f64]) -> Vec<f64> {
    let m = pivot(x, alpha);
    let t: Vec<f64> = x
        .iter()
        .map(|&v| (alpha as f64 * (v as f64 - m)).abs())
        .collect();
    let mean_t: f64 = w.iter().zip(&t).map(|(a, b)| a * b).sum();
    t.iter().map(|ti| 2.0 * ti + 2.0 * mean_t).collect()
}

// ---------------------------------------------------------------------------
// f64 references (the same f32 inputs, widened; docs/ACCURACY.md)
// ---------------------------------------------------------------------------

/// Softmax of f64 values: `e^(z − max) / Σ e^(z − max)`.
pub fn softmax64(z: &[f64]) -> Vec<f64> {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// `softmax(α·x)` for finite `x` and finite `α`: `α·x_i` is exact in f64
/// (a 24-bit by 24-bit product), then [`softmax64`]; `α = 0` is `1/N`.
pub fn ref_scaled(x: &[f32], alpha: f32) -> Vec<f64> {
    let z: Vec<f64> = x.iter().map(|&v| alpha as f64 * v as f64).collect();
    softmax64(&z)
}

/// The pivot the scaled softmax subtracts: the max for `α ≥ 0`, the min for
/// `α < 0` (so that `α·(x − pivot) ≤ 0`).
pub fn pivot(x: &[f32], alpha: f32) -> f64 {
    let it = x.iter().map(|&v| v as f64);
    if alpha < 0.0 {
        it.fold(f64::INFINITY, f64::min)
    } else {
        it.fold(f64::NEG_INFINITY, f64::max)
    }
}

/// `dx = y ⊙ (dy − ⟨y, dy⟩)` in f64 (the products of f32 values are exact).
pub fn ref_backward(y: &[f32], dy: &[f32]) -> Vec<f64> {
    let dot: f64 = y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
    y.iter()
        .zip(dy)
        .map(|(&a, &b)| a as f64 * (b as f64 - dot))
        .collect()
}

/// `Σ_j |y_j·dy_j|`, the scale of the dot product's rounding error.
pub fn dot_scale(y: &[f32], dy: &[f32]) -> f64 {
    y.iter()
        .zip(dy)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum()
}

/// The anchor constant `c` of `x = ln p + c`, in f64.
pub fn ref_anchor(p: &[f32], anchor: Anchor) -> f64 {
    match anchor {
        Anchor::Component(k) => -(p[k] as f64).ln(),
        Anchor::ZeroMean => -p.iter().map(|&v| (v as f64).ln()).sum::<f64>() / p.len() as f64,
    }
}

/// `z = Σ_k α_k x_k` in f64 (each product exact; the sum of at most a few
/// terms rounds at 2^-53, far below the f32 errors measured).
pub fn ref_combination_logits(terms: &[(f32, &[f32])], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| terms.iter().map(|&(a, x)| a as f64 * x[i] as f64).sum())
        .collect()
}

/// Index/value formatting of a short row for failure messages (the whole
/// row up to 16 values, else its length and the seed context suffices).
pub fn show(x: &[f32]) -> String {
    if x.len() <= 16 {
        format!("{x:?}")
    } else {
        format!("[{} values; first {:?}…]", x.len(), &x[..4])
    }
}
