//! Property tests: one per property of the softmax math, each over many
//! seeded random rows on every engine (dispatched backends and the portable
//! 4/8/16-lane kernels). Every comparison uses a tolerance derived from the
//! bounds in `family_support` (docs/ACCURACY.md for `softmax`, the derived ones for
//! the family), never a loose constant:
//!
//! * shift invariance `S(x + c) = S(x)`, `c` up to ±1e3;
//! * the inverse: `S(logits_from_probs(S(x))) ≈ S(x)`,
//!   `logits_from_probs(S(x), ZeroMean) ≈ x − mean(x)`, and `x − x_k` for
//!   `Component(k)`;
//! * superposition: `S(x1 + x2) ∝ S(x1) ⊙ S(x2)`, `S(x1 − x2) ∝ S(x1) ./ S(x2)`,
//!   `S(αx) ∝ S(x)^α`, `S(−x) ∝ 1 ./ S(x)`, and `S(Σ α_k x_k) ∝ ⊙ S(x_k)^α_k`;
//! * sharpness: `S(αx)` → one-hot / shared ties as `α → ∞`, → uniform as
//!   `α → 0⁺`, the max entry non-decreasing (the min non-increasing) in `α`;
//! * the Jacobian equals central differences of an f64 softmax, the backward
//!   pass equals `Jᵀ·dy`, Jacobian rows sum to 0 (and `J` is symmetric);
//! * the 2-class softmax is the sigmoid (and `σ(z) + σ(−z) = 1`).
//!
//! Tolerance arithmetic: an f32 result within `E` ULP of its exact value `q`
//! has relative error ≤ `2u·E` (`ulp(q) ≤ 2u·q`, u = 2^-24); relative errors
//! of a product or quotient add; normalizing `w/Σw` adds the `w`-weighted mean
//! of the relative errors; an absolute error `η` in a logit is a relative
//! error `≈ η` of its exponential. A 1% slack covers the second-order terms.

mod family_support;

use family_support::*;
use rand::RngExt;
use simd_softmax::Anchor;

/// Random rows per property and engine.
const ROWS: usize = 160;
/// Second-order slack on first-order error bounds.
const SLACK: f64 = 1.01;

/// A random row length: mostly 1..=300 (every tail of every lane count),
/// every 16th row 1000..=4096 (several sum blocks).
fn row_len(g: &mut Rng, k: usize) -> usize {
    if k % 16 == 15 {
        g.random_range(1000..=4096)
    } else {
        g.random_range(1..=300)
    }
}

/// Failures of one property on one engine: counted, the first few kept.
/// Also tracks the worst `diff / tol` seen, printed per engine to show how
/// much of each derived tolerance the engines actually use.
#[derive(Default)]
struct Fails {
    count: usize,
    first: Vec<String>,
    worst: f64,
}

impl Fails {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.count += 1;
            if self.first.len() < 4 {
                self.first.push(msg());
            }
        }
    }

    /// Records a `diff / tol` ratio checked elsewhere.
    fn note(&mut self, ratio: f64) {
        self.worst = self.worst.max(ratio);
    }

    /// `diff ≤ tol`, recording the ratio.
    fn within(&mut self, diff: f64, tol: f64, msg: impl FnOnce() -> String) {
        if tol > 0.0 {
            self.worst = self.worst.max(diff / tol);
        }
        self.check(diff <= tol, msg);
    }
}

/// Runs `body` for every engine with its own seeded generator and fails with
/// the collected messages.
fn on_every_engine(property: &str, seed: u64, body: impl Fn(&Engine, &mut Rng, &mut Fails)) {
    let mut report = Vec::new();
    for e in engines() {
        let mut g = rng(seed);
        let mut f = Fails::default();
        body(&e, &mut g, &mut f);
        println!(
            "{property}: {} uses {:.3} of its tolerance",
            e.name, f.worst
        );
        if f.count > 0 {
            report.push(format!(
                "{property} on {}: {} failures, e.g.\n  {}",
                e.name,
                f.count,
                f.first.join("\n  ")
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

fn softmax_of(e: &Engine, x: &[f32]) -> Vec<f32> {
    let mut y = sentinel(x.len());
    e.ops.softmax(x, &mut y);
    y
}

fn scaled_of(e: &Engine, x: &[f32], alpha: f32) -> Vec<f32> {
    let mut y = sentinel(x.len());
    e.ops.softmax_scaled(x, &mut y, alpha);
    y
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// The ULP bounds of `softmax_scaled(x, α)` (see `C_SCALED`), weighted by
/// the computed output `y`.
fn scaled_bounds(x: &[f32], alpha: f32, y: &[f32]) -> Vec<f64> {
    scaled_terms(x, alpha, &wide(y))
        .into_iter()
        .map(|t| C_SCALED + t)
        .collect()
}

/// `y ≈ w / Σw`, where `y_i` is within `ey_i` ULP of the exact vector and
/// `w_i` within relative `rho_i` of a positive multiple of it. First order:
/// `|y_i − q_i| ≤ ulp(q_i)·ey_i + q_i·(rho_i + Σ_j q_j·rho_j)`, `q = w/Σw`.
/// Returns the worst `diff / tol` and the first violation as a message.
fn proportional(y: &[f32], ey: &[f64], w: &[f64], rho: &[f64]) -> (f64, Result<(), String>) {
    let sw: f64 = w.iter().sum();
    let q: Vec<f64> = w.iter().map(|v| v / sw).collect();
    let mean_rho: f64 = q.iter().zip(rho).map(|(a, b)| a * b).sum();
    let mut worst = 0.0f64;
    for i in 0..y.len() {
        let tol = (ulp_f32(q[i].max(y[i] as f64)) * ey[i] + q[i] * (rho[i] + mean_rho)) * SLACK;
        let diff = (y[i] as f64 - q[i]).abs();
        worst = worst.max(diff / tol);
        let within = diff <= tol; // false for NaN
        if !within {
            return (
                worst,
                Err(format!(
                    "i={i} of {}: got {:e}, the normalized product gives {:e} (diff {diff:e} > tol {tol:e})",
                    y.len(),
                    y[i],
                    q[i]
                )),
            );
        }
    }
    (worst, Ok(()))
}

// ---------------------------------------------------------------------------
// Shift invariance
// ---------------------------------------------------------------------------

/// `S(α(x + c)) = S(αx)`. Even rows use inputs and shifts on a 2^-10 grid, so
/// `x + c` is exact in f32 and the two outputs agree within the sum of their
/// bounds. Odd rows use arbitrary `c ∈ [−1e3, 1e3]`: the f32 addition moves
/// each input by `δ_i = fl(x_i + c) − (x_i + c)` (computed exactly in f64),
/// which changes the exact softmax by a relative `≤ 2|α|·max|δ|`.
#[test]
fn shift_invariance() {
    on_every_engine("shift invariance", 0x5_41f7, |e, g, f| {
        for k in 0..ROWS {
            let n = row_len(g, k);
            let exact = k % 2 == 0;
            let (x, c): (Vec<f32>, f32) = if exact {
                (
                    (0..n)
                        .map(|_| g.random_range(-10_240i32..=10_240) as f32 / 1024.0)
                        .collect(),
                    g.random_range(-1_024_000i32..=1_024_000) as f32 / 1024.0,
                )
            } else {
                (uniform(g, n, -10.0, 10.0), g.random_range(-1e3f32..=1e3))
            };
            let xs: Vec<f32> = x.iter().map(|&v| v + c).collect();
            let dmax = x
                .iter()
                .zip(&xs)
                .map(|(&a, &b)| (b as f64 - a as f64 - c as f64).abs())
                .fold(0.0, f64::max);
            if exact {
                assert_eq!(dmax, 0.0, "grid shift not exact");
            }
            let alpha = g.random_range(-3.0f32..3.0);
            for (what, alpha) in [("softmax", 1.0f32), ("softmax_scaled", alpha)] {
                let (y, ys, b, bs) = if what == "softmax" {
                    let (y, ys) = (softmax_of(e, &x), softmax_of(e, &xs));
                    (y, ys, softmax_bounds(&x), softmax_bounds(&xs))
                } else {
                    let (y, ys) = (scaled_of(e, &x, alpha), scaled_of(e, &xs, alpha));
                    let (b, bs) = (scaled_bounds(&x, alpha, &y), scaled_bounds(&xs, alpha, &ys));
                    (y, ys, b, bs)
                };
                for i in 0..n {
                    let big = (y[i].abs().max(ys[i].abs())) as f64;
                    let tol = (ulp_f32(big) * (b[i] + bs[i])
                        + big * 2.0 * (alpha as f64).abs() * dmax)
                        * SLACK;
                    let diff = (y[i] as f64 - ys[i] as f64).abs();
                    f.within(diff, tol, || {
                        format!(
                            "{what} alpha={alpha} n={n} c={c:e} (exact grid: {exact}) i={i}: \
                             S(x)={:e} S(x+c)={:e}, diff {diff:e} > {tol:e}; x={}",
                            y[i],
                            ys[i],
                            show(&x)
                        )
                    });
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// The inverse
// ---------------------------------------------------------------------------

/// `p = S(x)`, `l = logits_from_probs(p)`:
/// * ZeroMean: `l ≈ x − mean(x)`. `ln p_i` is within `η_i = 2u·B_i` of the
///   exact `ln S(x)_i = x_i − m − ln Z` (B_i the documented bound of `p_i`), the
///   anchor removes `m + ln Z` up to `mean(η)`, and the function itself adds
///   `K_LOGITS_ZERO_MEAN·ulp(|ln p_i| + mean|ln p|)`.
/// * Component(k): `l_k = 0` exactly and `l ≈ x − x_k` (η_i + η_k +
///   `K_LOGITS_COMPONENT·ulp(|ln p_i| + |ln p_k|)`).
/// * `S(l) ≈ p`: `l = ln p + c` up to the logits error `ε_i`, so the exact
///   `S(l) = p/Σp` within relative `ε_i + max ε`; `S(l)` adds its own documented
///   bound `4 + |l_i − max l|` ULP.
#[test]
fn inverse_round_trip() {
    on_every_engine("inverse round trip", 0x1_7e75, |e, g, f| {
        for k in 0..ROWS {
            let n = row_len(g, k);
            let x = if k % 2 == 0 {
                uniform(g, n, -10.0, 10.0)
            } else {
                normal(g, n, 3.0)
            };
            let p = softmax_of(e, &x);
            let bp = softmax_bounds(&x);
            let eta: Vec<f64> = bp.iter().map(|b| 2.0 * U * b * SLACK).collect();
            let mean_eta = eta.iter().sum::<f64>() / n as f64;
            let lnp: Vec<f64> = p.iter().map(|&v| (v as f64).ln()).collect();
            let mean_abs = lnp.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
            let x_mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;

            let mut l = sentinel(n);
            e.ops.logits_from_probs(&p, &mut l, Anchor::ZeroMean);
            let eps: Vec<f64> = lnp
                .iter()
                .map(|v| K_LOGITS_ZERO_MEAN * ulp_f32(v.abs() + mean_abs))
                .collect();
            for i in 0..n {
                let want = x[i] as f64 - x_mean;
                let tol = eta[i] + mean_eta + eps[i];
                let diff = (l[i] as f64 - want).abs();
                f.within(diff, tol, || {
                    format!(
                        "ZeroMean n={n} i={i}: logits {:e}, x_i − mean(x) = {want:e}, diff {diff:e} > {tol:e}; x={}",
                        l[i],
                        show(&x)
                    )
                });
            }

            // S(l) ≈ p.
            let s = softmax_of(e, &l);
            let bl = softmax_bounds(&l);
            let sum_p: f64 = p.iter().map(|&v| v as f64).sum();
            let max_eps = eps.iter().copied().fold(0.0, f64::max);
            for i in 0..n {
                let pi = p[i] as f64;
                let tol = (ulp_f32(pi.max(s[i] as f64)) * bl[i]
                    + pi * (eps[i] + max_eps)
                    + pi * (1.0 - sum_p).abs())
                    * SLACK;
                let diff = (s[i] as f64 - pi).abs();
                f.within(diff, tol, || {
                    format!(
                        "S(logits(S(x))) n={n} i={i}: {:e} vs S(x) = {pi:e}, diff {diff:e} > {tol:e}; x={}",
                        s[i],
                        show(&x)
                    )
                });
            }

            // Component(k).
            let kk = g.random_range(0..n);
            let mut lc = sentinel(n);
            e.ops.logits_from_probs(&p, &mut lc, Anchor::Component(kk));
            f.check(lc[kk] == 0.0, || {
                format!("Component({kk}) n={n}: l_k = {:e}, not 0", lc[kk])
            });
            for i in 0..n {
                let want = x[i] as f64 - x[kk] as f64;
                let tol =
                    eta[i] + eta[kk] + K_LOGITS_COMPONENT * ulp_f32(lnp[i].abs() + lnp[kk].abs());
                let diff = (lc[i] as f64 - want).abs();
                f.within(diff, tol, || {
                    format!(
                        "Component({kk}) n={n} i={i}: logits {:e}, x_i − x_k = {want:e}, diff {diff:e} > {tol:e}",
                        lc[i]
                    )
                });
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Superposition
// ---------------------------------------------------------------------------

/// The ULP bounds of `softmax_of_combination(terms)` (see `C_COMBINATION`),
/// weighted by the computed output `y`.
fn combination_bounds(terms: &[(f32, &[f32])], y: &[f32]) -> Vec<f64> {
    let n = y.len();
    let z = ref_combination_logits(terms, n);
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let t = terms.len() as f64;
    let big_e: Vec<f64> = (0..n)
        .map(|i| {
            let a: f64 = terms
                .iter()
                .map(|&(w, x)| (w as f64 * x[i] as f64).abs())
                .sum();
            2.0 * t * a + (z[i] - m).abs()
        })
        .collect();
    let mean_e: f64 = y.iter().zip(&big_e).map(|(&p, e)| p as f64 * e).sum();
    big_e.iter().map(|e| C_COMBINATION + e + mean_e).collect()
}

fn combination_of(e: &Engine, terms: &[(f32, &[f32])], n: usize) -> Vec<f32> {
    let mut y = sentinel(n);
    e.ops.softmax_of_combination(terms, &mut y);
    y
}

/// Relative error bounds `2u·B_i` of a softmax output with documented bounds `B`.
fn rel(bounds: &[f64]) -> Vec<f64> {
    bounds.iter().map(|b| 2.0 * U * b).collect()
}

/// `S(x1 + x2) ∝ S(x1) ⊙ S(x2)` (product of experts) and
/// `S(x1 − x2) ∝ S(x1) ./ S(x2)`: the combination against the normalized
/// product/quotient of the two softmaxes (relative errors add).
#[test]
fn superposition_sum_and_difference() {
    on_every_engine("superposition", 0x5_0be7, |e, g, f| {
        for k in 0..ROWS {
            let n = row_len(g, k);
            let (x1, x2) = (uniform(g, n, -5.0, 5.0), uniform(g, n, -5.0, 5.0));
            let (a, b) = (softmax_of(e, &x1), softmax_of(e, &x2));
            let rho: Vec<f64> = rel(&softmax_bounds(&x1))
                .iter()
                .zip(rel(&softmax_bounds(&x2)))
                .map(|(p, q)| p + q)
                .collect();
            for (what, sign) in [
                ("S(x1 + x2) ∝ S(x1)⊙S(x2)", 1.0f32),
                ("S(x1 − x2) ∝ S(x1)./S(x2)", -1.0),
            ] {
                let terms: [(f32, &[f32]); 2] = [(1.0, &x1), (sign, &x2)];
                let y = combination_of(e, &terms, n);
                let w: Vec<f64> = a
                    .iter()
                    .zip(&b)
                    .map(|(&p, &q)| {
                        if sign > 0.0 {
                            p as f64 * q as f64
                        } else {
                            p as f64 / q as f64
                        }
                    })
                    .collect();
                let (ratio, r) = proportional(&y, &combination_bounds(&terms, &y), &w, &rho);
                f.note(ratio);
                f.check(r.is_ok(), || {
                    format!(
                        "{what} n={n}: {}; x1={} x2={}",
                        r.unwrap_err(),
                        show(&x1),
                        show(&x2)
                    )
                });
            }
        }
    });
}

/// `S(αx) ∝ S(x)^α` (any sign of α: softmin for α < 0) and
/// `S(−x) ∝ 1 ./ S(x)` (through `softmax_scaled(x, −1)` and `softmax(−x)`).
#[test]
fn superposition_power_and_reciprocal() {
    on_every_engine("power/reciprocal", 0x90_3e7, |e, g, f| {
        for k in 0..ROWS {
            let n = row_len(g, k);
            let x = uniform(g, n, -5.0, 5.0);
            let a = softmax_of(e, &x);
            let ra = rel(&softmax_bounds(&x));
            let alpha = if k % 4 == 0 {
                g.random_range(-3.0f32..-0.05)
            } else {
                g.random_range(0.05f32..3.0)
            };
            let y = scaled_of(e, &x, alpha);
            let w: Vec<f64> = a.iter().map(|&p| (p as f64).powf(alpha as f64)).collect();
            let rho: Vec<f64> = ra.iter().map(|r| r * (alpha as f64).abs()).collect();
            let (ratio, r) = proportional(&y, &scaled_bounds(&x, alpha, &y), &w, &rho);
            f.note(ratio);
            f.check(r.is_ok(), || {
                format!(
                    "S(αx) ∝ S(x)^α alpha={alpha} n={n}: {}; x={}",
                    r.unwrap_err(),
                    show(&x)
                )
            });

            let w: Vec<f64> = a.iter().map(|&p| 1.0 / p as f64).collect();
            let y = scaled_of(e, &x, -1.0);
            let (ratio, r) = proportional(&y, &scaled_bounds(&x, -1.0, &y), &w, &ra);
            f.note(ratio);
            f.check(r.is_ok(), || {
                format!(
                    "S(−x) ∝ 1./S(x) via softmax_scaled(x, −1) n={n}: {}",
                    r.unwrap_err()
                )
            });
            let neg: Vec<f32> = x.iter().map(|v| -v).collect();
            let y = softmax_of(e, &neg);
            let (ratio, r) = proportional(&y, &softmax_bounds(&neg), &w, &ra);
            f.note(ratio);
            f.check(r.is_ok(), || {
                format!("S(−x) ∝ 1./S(x) via softmax(−x) n={n}: {}", r.unwrap_err())
            });
        }
    });
}

/// The general superposition `S(Σ_k α_k x_k) ∝ ⊙_k S(x_k)^{α_k}` with 1 to
/// 4 terms and random weights in [−2, 2] (classifier-free guidance and
/// products of experts are special cases).
#[test]
fn superposition_general() {
    on_every_engine("general superposition", 0x6e_4e7a, |e, g, f| {
        for k in 0..ROWS {
            let n = row_len(g, k);
            let t = 1 + k % 4;
            let xs: Vec<Vec<f32>> = (0..t).map(|_| uniform(g, n, -4.0, 4.0)).collect();
            let ws: Vec<f32> = (0..t).map(|_| g.random_range(-2.0f32..2.0)).collect();
            let terms: Vec<(f32, &[f32])> = ws
                .iter()
                .zip(&xs)
                .map(|(&w, x)| (w, x.as_slice()))
                .collect();
            let y = combination_of(e, &terms, n);
            let mut w = vec![1.0f64; n];
            let mut rho = vec![0.0f64; n];
            for (&a, x) in ws.iter().zip(&xs) {
                let s = softmax_of(e, x);
                let rs = rel(&softmax_bounds(x));
                for i in 0..n {
                    w[i] *= (s[i] as f64).powf(a as f64);
                    rho[i] += (a as f64).abs() * rs[i];
                }
            }
            let (ratio, r) = proportional(&y, &combination_bounds(&terms, &y), &w, &rho);
            f.note(ratio);
            f.check(r.is_ok(), || {
                format!("weights {ws:?} n={n}: {}", r.unwrap_err())
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Sharpness
// ---------------------------------------------------------------------------

/// `S(αx)` for `α = 2^-40 … 2^40`: near-uniform at the small end (within
/// the bound of `1/N`), exactly the `α = +∞` limit (1/k on the k tied maxima,
/// 0 elsewhere) at the large end, tied maxima always equal, and the max entry
/// non-decreasing (`∂S_max/∂α = S_max·(x_max − E_S[x]) ≥ 0`) while the min
/// entry is non-increasing, each up to the two steps' bounds. The same
/// towards `−∞` with the roles of max and min swapped.
#[test]
fn sharpness() {
    on_every_engine("sharpness", 0x5_4a39, |e, g, f| {
        for k in 0..ROWS / 2 {
            let n = if k % 8 == 7 {
                g.random_range(1000..=2000)
            } else {
                g.random_range(1..=200)
            };
            // Even rows on a 1/2 grid (many ties), odd rows continuous.
            let x: Vec<f32> = if k % 2 == 0 {
                (0..n)
                    .map(|_| g.random_range(-6i32..=6) as f32 * 0.5)
                    .collect()
            } else {
                uniform(g, n, -3.0, 3.0)
            };
            for dir in [1.0f32, -1.0] {
                // Under α < 0 the roles of max and min swap: work on −x's order.
                let key = |v: f32| v * dir;
                let top = x.iter().copied().map(key).fold(f32::NEG_INFINITY, f32::max);
                let bottom = x.iter().copied().map(key).fold(f32::INFINITY, f32::min);
                let tops: Vec<usize> = (0..n).filter(|&i| key(x[i]) == top).collect();
                let ib = (0..n).find(|&i| key(x[i]) == bottom).unwrap();
                let limit = scaled_of(e, &x, dir * f32::INFINITY);
                let mut prev: Option<(f32, f64, f32, f64)> = None;
                for j in -20..=20 {
                    let alpha = dir * 2f32.powi(2 * j);
                    let y = scaled_of(e, &x, alpha);
                    let b = scaled_bounds(&x, alpha, &y);
                    let it = tops[0];
                    f.check(tops.iter().all(|&i| y[i] == y[it]), || {
                        format!(
                            "alpha={alpha:e} n={n}: tied maxima differ: {:?}",
                            tops.iter().map(|&i| y[i]).collect::<Vec<_>>()
                        )
                    });
                    if let Some((pt, pbt, pb, pbb)) = prev {
                        let tol = ulp_f32(pt.max(y[it]) as f64) * (pbt + b[it]) * SLACK;
                        f.within(pt as f64 - y[it] as f64, tol, || {
                            format!(
                                "alpha={alpha:e} n={n}: max entry fell from {pt:e} to {:e} (tol {tol:e}); x={}",
                                y[it],
                                show(&x)
                            )
                        });
                        let tol = ulp_f32(pb.max(y[ib]) as f64) * (pbb + b[ib]) * SLACK;
                        f.within(y[ib] as f64 - pb as f64, tol, || {
                            format!(
                                "alpha={alpha:e} n={n}: min entry rose from {pb:e} to {:e} (tol {tol:e}); x={}",
                                y[ib],
                                show(&x)
                            )
                        });
                    }
                    prev = Some((y[it], b[it], y[ib], b[ib]));
                    if j == -20 {
                        // α = ±2^-40: uniform within the bound.
                        let u = 1.0 / n as f64;
                        for i in 0..n {
                            let err = ulps(y[i], u, b[i]);
                            f.within(err, b[i], || {
                                format!("alpha={alpha:e} n={n}: y[{i}] = {:e} is not ≈ 1/{n} ({err:.2} ulp)", y[i])
                            });
                        }
                    }
                    if j == 20 {
                        // α = ±2^40: every gap (≥ 2^-22 in [−3, 3]) times α
                        // flushes, so this is exactly the limit.
                        let same = y
                            .iter()
                            .zip(&limit)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        f.check(same, || {
                            format!(
                                "alpha={alpha:e} n={n}: {} is not the ±∞ limit {}",
                                show(&y),
                                show(&limit)
                            )
                        });
                        let share = (1.0 / tops.len() as f64) as f32;
                        f.check(
                            (0..n).all(|i| y[i] == if tops.contains(&i) { share } else { 0.0 }),
                            || {
                                format!(
                                    "alpha={alpha:e} n={n}: not one-hot/shared ties: {}",
                                    show(&y)
                                )
                            },
                        );
                    }
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Jacobian and backward pass
// ---------------------------------------------------------------------------

/// The f32 `y = softmax(x)` is within relative `ρ_i = 2u·B_i` of the exact
/// `q`; `J_ij = y_i(δ_ij − y_j)` then differs from the exact `q_i(δ_ij − q_j)`
/// by `≤ y_i·ρ_i·|δ_ij − y_j| + y_i·y_j·ρ_j`, plus `jacobian`'s own rounding
/// (`JAC_OFF` / `JAC_DIAG` ULP). Central differences with `h = 1e-5` in f64
/// err by `h²/6·max|S'''| ≤ h²/6` (truncation) plus `2·2^-53/h` (rounding).
#[test]
fn jacobian_matches_central_differences() {
    const H: f64 = 1e-5;
    let fd_err = H * H / 6.0 + 2.0 * f64::EPSILON / H;
    on_every_engine("jacobian vs finite differences", 0x1_acfd, |e, g, f| {
        for k in 0..ROWS / 2 {
            let n = if k % 10 == 9 {
                g.random_range(33..=48)
            } else {
                g.random_range(1..=20)
            };
            let x = normal(g, n, 2.0);
            let y = softmax_of(e, &x);
            let rho = rel(&softmax_bounds(&x));
            let mut jac = sentinel(n * n);
            e.ops.jacobian(&y, &mut jac);
            let xd = wide(&x);
            for j in 0..n {
                let (mut xp, mut xm) = (xd.clone(), xd.clone());
                xp[j] += H;
                xm[j] -= H;
                let (sp, sm) = (softmax64(&xp), softmax64(&xm));
                for i in 0..n {
                    let fd = (sp[i] - sm[i]) / (2.0 * H);
                    let got = jac[i * n + j];
                    let (yi, yj) = (y[i] as f64, y[j] as f64);
                    let delta = if i == j { 1.0 } else { 0.0 };
                    let own = if i == j { JAC_DIAG } else { JAC_OFF };
                    let tol = (own * ulp_f32(got as f64)
                        + yi * rho[i] * (delta - yj).abs()
                        + yi * yj * rho[j])
                        * SLACK
                        + fd_err;
                    let diff = (got as f64 - fd).abs();
                    f.within(diff, tol, || {
                        format!(
                            "n={n} J[{i}][{j}] = {got:e}, central difference {fd:e}, diff {diff:e} > {tol:e}; x={}",
                            show(&x)
                        )
                    });
                }
            }
        }
    });
}

/// `softmax_backward(y, dy) = Jᵀ·dy` with `J = jacobian(y)`: `Jᵀdy` summed
/// in f64 from the f32 entries is off the exact `y ⊙ (dy − ⟨y, dy⟩)` by
/// `≤ Σ_j ulp-bounds·|dy_j| ≤ 4u·y_i·(|dy_i| + S)`, and the backward pass
/// by `K_BACKWARD` units of `u·y_i·(|dy_i| + S)`, `S = Σ|y_j dy_j|`.
#[test]
fn backward_is_jacobian_transpose_times_dy() {
    on_every_engine("backward = Jᵀ·dy", 0xb_ac7a, |e, g, f| {
        for k in 0..ROWS / 2 {
            let n = if k % 10 == 9 {
                g.random_range(300..=600)
            } else {
                g.random_range(1..=100)
            };
            let x = normal(g, n, 2.0);
            let y = softmax_of(e, &x);
            let dy = if k % 3 == 0 {
                let mut d = vec![0.0f32; n];
                let c = g.random_range(0..n);
                d[c] = -1.0 / y[c];
                d
            } else {
                normal(g, n, 1.0)
            };
            let mut jac = sentinel(n * n);
            e.ops.jacobian(&y, &mut jac);
            let mut dx = sentinel(n);
            e.ops.softmax_backward(&y, &dy, &mut dx);
            let s = dot_scale(&y, &dy);
            for i in 0..n {
                let jt_dy: f64 = (0..n).map(|j| jac[j * n + i] as f64 * dy[j] as f64).sum();
                let unit = U * (y[i] as f64) * ((dy[i] as f64).abs() + s);
                let tol = (K_BACKWARD + 4.0) * unit * SLACK;
                let diff = (dx[i] as f64 - jt_dy).abs();
                f.within(diff, tol, || {
                    format!(
                        "n={n} i={i}: backward {:e}, (Jᵀdy)_i = {jt_dy:e}, diff {diff:e} > {tol:e}",
                        dx[i]
                    )
                });
            }
        }
    });
}

/// Rows of the Jacobian sum to 0: exactly, `Σ_j J_ij = y_i·(1 − Σ_j y_j)`,
/// which the documented bound of the softmax keeps within `y_i·Σ_j B_j·ulp(y_j)`
/// of 0; the computed entries add their own rounding. `J` is symmetric bit
/// for bit (`y_i·y_j` is one correctly rounded product either way).
#[test]
fn jacobian_rows_sum_to_zero() {
    on_every_engine("jacobian rows sum to 0", 0x2e_2050, |e, g, f| {
        for k in 0..ROWS / 2 {
            let n = if k % 10 == 9 {
                g.random_range(300..=600)
            } else {
                g.random_range(1..=100)
            };
            let x = normal(g, n, 3.0);
            let y = softmax_of(e, &x);
            let by = softmax_bounds(&x);
            let sum_slack: f64 = (0..n).map(|j| by[j] * ulp_f32(y[j] as f64)).sum();
            let mut jac = sentinel(n * n);
            e.ops.jacobian(&y, &mut jac);
            for i in 0..n {
                let row = &jac[i * n..(i + 1) * n];
                let sum: f64 = row.iter().map(|&v| v as f64).sum();
                let own: f64 = row
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| if i == j { JAC_DIAG } else { JAC_OFF } * ulp_f32(v as f64))
                    .sum();
                let tol = (y[i] as f64 * sum_slack + own) * SLACK;
                f.within(sum.abs(), tol, || {
                    format!(
                        "n={n} row {i}: sums to {sum:e}, tol {tol:e}; x={}",
                        show(&x)
                    )
                });
                for j in 0..i {
                    f.check(jac[i * n + j].to_bits() == jac[j * n + i].to_bits(), || {
                        format!(
                            "n={n}: J[{i}][{j}] = {:e} but J[{j}][{i}] = {:e}",
                            jac[i * n + j],
                            jac[j * n + i]
                        )
                    });
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// The 2-class softmax is the sigmoid
// ---------------------------------------------------------------------------

/// `softmax([z1, z2]) = [σ(z1 − z2), σ(z2 − z1)]`. Even pairs lie on a 2^-12
/// grid (the f32 difference is exact), odd pairs are normal(σ = 5); the
/// difference's rounding `δ` moves `σ` by `σ(1 − σ)·|δ|`. Each side has its
/// bound (`4 + |z_i − m|` and `C_SIGMOID`). Also `σ(d) + σ(−d) = 1` within the
/// two sigmoid bounds. The sigmoid runs on all the differences as one row
/// (every lane and tail); the softmax on each pair.
#[test]
fn two_class_softmax_is_sigmoid() {
    on_every_engine("2-class softmax = sigmoid", 0x2c_5160, |e, g, f| {
        let pairs = ROWS * 8;
        let z: Vec<(f32, f32)> = (0..pairs)
            .map(|k| {
                if k % 2 == 0 {
                    let s = |g: &mut Rng| g.random_range(-163_840i32..=163_840) as f32 / 4096.0;
                    (s(g), s(g))
                } else {
                    ((5.0 * std_normal(g)) as f32, (5.0 * std_normal(g)) as f32)
                }
            })
            .collect();
        let d: Vec<f32> = z.iter().map(|&(a, b)| a - b).collect();
        let nd: Vec<f32> = d.iter().map(|v| -v).collect();
        let (mut s, mut sn) = (sentinel(pairs), sentinel(pairs));
        e.ops.sigmoid(&d, &mut s);
        e.ops.sigmoid(&nd, &mut sn);
        for (k, &(z1, z2)) in z.iter().enumerate() {
            let y = softmax_of(e, &[z1, z2]);
            let b = softmax_bounds(&[z1, z2]);
            let exact = z1 as f64 - z2 as f64;
            let delta = (d[k] as f64 - exact).abs();
            if k % 2 == 0 {
                assert_eq!(delta, 0.0, "grid difference not exact");
            }
            for (i, (yi, si, r)) in [
                (y[0], s[k], simd_softmax::reference::logistic(exact)),
                (y[1], sn[k], simd_softmax::reference::logistic(-exact)),
            ]
            .into_iter()
            .enumerate()
            {
                let tol = (ulp_f32(r) * (b[i] + C_SIGMOID) + r * (1.0 - r) * delta) * SLACK;
                let diff = (yi as f64 - si as f64).abs();
                f.within(diff, tol, || {
                    format!(
                        "softmax([{z1:e}, {z2:e}])[{i}] = {yi:e}, sigmoid(±{:e}) = {si:e}, diff {diff:e} > {tol:e}",
                        d[k]
                    )
                });
            }
            let (r0, r1) = (
                simd_softmax::reference::logistic(d[k] as f64),
                simd_softmax::reference::logistic(-d[k] as f64),
            );
            let tol = C_SIGMOID * (ulp_f32(r0) + ulp_f32(r1)) * SLACK;
            let sum = s[k] as f64 + sn[k] as f64;
            f.within((sum - 1.0).abs(), tol, || {
                format!(
                    "σ({:e}) + σ(−{:e}) = {sum:e}, not 1 within {tol:e}",
                    d[k], d[k]
                )
            });
        }
    });
}
