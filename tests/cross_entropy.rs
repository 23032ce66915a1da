//! Cross-entropy (`cross_entropy`, `_rows`, `_backward`, `_with_grad` and
//! their `par_` forms) on every dispatched backend this CPU runs:
//!
//! - the loss and the gradient against an f64 reference, within the bounds
//!   derived below (docs/ACCURACY.md#cross-entropy), with and without label
//!   smoothing, targets at the max and elsewhere;
//! - the reference gradient equals central finite differences of the
//!   reference loss (in f64), so the formula the crate is held to is the
//!   derivative of the loss it returns;
//! - `ignore_index` (rows skipped, zero gradient), all rows ignored → NaN;
//! - special rows (NaN, `+∞`, masked targets, fully masked rows) give the
//!   documented values exactly;
//! - every error leaves the outputs untouched;
//! - `f16`/`bf16` logits give the bits of their widened f32 logits, and a
//!   half gradient is the f32 gradient rounded once;
//! - `with_grad` is the bits of `cross_entropy` + `cross_entropy_backward`,
//!   and the `par_` forms are the bits of the serial ones.
//!
//! Bounds (per row `x`, target `t`, smoothing `ε`, `p` the f64 softmax,
//! `d_j = x_j − m`, `K = Σ_j p_j·ulp(d_j)` the roundings of `fl(x_j − m)`
//! reaching `ln Σ`, `C = 4` the softmax budget in units of `2^-23`,
//! `w = (Σ − k)/Σ` the share of the sum not made of the `k` exact 1s):
//!
//! - loss `r = ln Σ + (1 − ε)(m − x_t) + ε(m − mean x)`: the kernel's `Σ`
//!   is `k` exact plus `δ` within `C·2^-23` relative to `δ`, so `ln Σ` is
//!   within `C·2^-23·w + K`; the other terms are f64: `|ℓ − r| ≤ ulp(r) +
//!   C·2^-23·w + K` (and `w ≤ ln Σ ≤ r`, so it is relative where `r` is
//!   small: the loss at a dominant target keeps its digits);
//! - gradient `g·(p_j − ε/N)` off the target: softmax's bound on `p_j`
//!   (`(C + |d_j|)·ulp(p_j)`, or `2^-126` where it may flush) times `|g|`,
//!   the fused multiply-add's rounding and the offset's: `|g|·(C +
//!   |d_j|)·ulp(p_j) + ulp(ρ_j) + ½ulp(g·ε/N)`;
//! - at the target, `g·(−(1 − ε)(1 − p_t) + ε(p_t − 1/N))` from the state in
//!   f64 (`1 − p_t` as the other terms over `Σ`): `1 − p_t` within
//!   `2((1 − p_t)·C·2^-23 + K)`, `p_t` within `p_t(C·2^-23 + K)`, so
//!   `ulp(ρ_t) + |g|·(2(1 − ε)((1 − p_t)·C·2^-23 + K) + ε·p_t·(C·2^-23 + K))`.

mod common;

use common::{C_ULPS, EPS, Family, MIN_NORMAL, bits, gen_row, quick, rng, row_max, ulp_f32};
use half::{bf16, f16};
use rand::RngExt;
use simd_softmax::{CrossEntropyOptions, Error, Softmax};

fn opts(ignore: Option<u32>, eps: f32) -> CrossEntropyOptions {
    CrossEntropyOptions {
        ignore_index: ignore,
        label_smoothing: eps,
    }
}

/// The f64 reference of one ordinary row (finite max, no NaN): the loss,
/// the gradient `p − q` (for `g = 1`), the softmax, `w` and `K`.
struct Ref {
    loss: f64,
    grad: Vec<f64>,
    p: Vec<f64>,
    w: f64,
    k_sub: f64,
}

fn reference(x: &[f32], t: usize, eps: f64) -> Ref {
    let n = x.len() as f64;
    let m = row_max(x) as f64;
    let k = x.iter().filter(|&&v| v as f64 == m).count() as f64;
    let rest: f64 = x
        .iter()
        .filter(|&&v| v as f64 != m)
        .map(|&v| (v as f64 - m).exp())
        .sum();
    let total = k + rest;
    let ln_sum = k.ln() + (rest / k).ln_1p();
    let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mut loss = ln_sum;
    if eps < 1.0 {
        loss += (1.0 - eps) * (m - x[t] as f64);
    }
    if eps > 0.0 {
        loss += eps * (m - mean);
    }
    let p: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp() / total).collect();
    let mut grad: Vec<f64> = p.iter().map(|&pj| pj - eps / n).collect();
    // 1 − p_t without cancellation where x_t is a max.
    let one_minus_pt = if x[t] as f64 == m {
        ((k - 1.0) + rest) / total
    } else {
        1.0 - p[t]
    };
    grad[t] = -(1.0 - eps) * one_minus_pt + eps * (p[t] - 1.0 / n);
    let k_sub = x
        .iter()
        .zip(&p)
        .filter(|(_, pj)| **pj > 0.0)
        .map(|(&v, pj)| pj * ulp_f32(v as f64 - m))
        .sum();
    Ref {
        loss,
        grad,
        p,
        w: rest / total,
        k_sub,
    }
}

/// The f64 loss of an f64 row (for finite differences).
fn loss_f64(x: &[f64], t: usize, eps: f64) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    let mean = x.iter().sum::<f64>() / n;
    lse - (1.0 - eps) * x[t] - eps * mean
}

/// Largest error / bound seen, per quantity.
#[derive(Default, Debug)]
struct Worst {
    loss: f64,
    loss_ulps: f64,
    grad: f64,
    target: f64,
}

/// Checks one backend's loss and gradient of one row against the
/// reference; returns the ratios error / bound.
fn check_row(sm: &Softmax, x: &[f32], t: usize, eps: f32, g: f32, worst: &mut Worst, what: &str) {
    let n = x.len();
    let o = opts(None, eps);
    let mut y = vec![f32::NAN; n];
    let loss = sm
        .cross_entropy_with_grad(x, n, &[t as u32], o, g, &mut y)
        .unwrap();
    let r = reference(x, t, eps as f64);
    let m = row_max(x);
    if r.loss.is_infinite() {
        assert_eq!(loss as f64, r.loss, "{what}: loss");
    } else {
        let bound = ulp_f32(r.loss) + C_ULPS * EPS * r.w + r.k_sub;
        let err = (loss as f64 - r.loss).abs();
        assert!(
            err <= bound,
            "{what}: loss {loss} vs {} (err {err:e} > bound {bound:e})",
            r.loss
        );
        worst.loss = worst.loss.max(err / bound);
        worst.loss_ulps = worst.loss_ulps.max(err / ulp_f32(r.loss));
    }
    let (gd, e) = (g as f64, eps as f64);
    let offset_ulp = if eps > 0.0 {
        0.5 * ulp_f32(gd * e / n as f64)
    } else {
        0.0
    };
    for j in 0..n {
        let rho = gd * r.grad[j];
        let err = (y[j] as f64 - rho).abs();
        let bound = if j == t {
            let pt = r.p[t];
            ulp_f32(rho)
                + gd.abs()
                    * (2.0 * (1.0 - e) * ((1.0 - pt) * C_ULPS * EPS + r.k_sub)
                        + e * pt * (C_ULPS * EPS + r.k_sub))
        } else {
            let pj = r.p[j];
            let soft = if pj < MIN_NORMAL {
                MIN_NORMAL
            } else {
                (C_ULPS + (x[j] as f64 - m as f64).abs()) * ulp_f32(pj)
            };
            gd.abs() * soft + ulp_f32(rho) + offset_ulp
        };
        assert!(
            err <= bound,
            "{what}: grad[{j}] (target {t}) {} vs {rho} (err {err:e} > bound {bound:e})",
            y[j]
        );
        let ratio = err / bound;
        if j == t {
            worst.target = worst.target.max(ratio);
        } else {
            worst.grad = worst.grad.max(ratio);
        }
    }
}

const FAMILIES: [Family; 8] = [
    Family::Uniform,
    Family::NormalS0_1,
    Family::NormalS1,
    Family::NormalS10,
    Family::NormalS100,
    Family::Dominant,
    Family::AllEqual,
    Family::PartialMask,
];

fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=70).collect();
    v.extend([100, 255, 256, 257, 1000, 4096, 32_000]);
    if !quick() {
        v.push(128_256);
    }
    v
}

/// The error for a label smoothing outside [0, 1].
fn smoothing(e: f32) -> Error {
    Error::InvalidParameter {
        name: "label_smoothing",
        value: e.into(),
        expected: "ε in [0, 1]",
    }
}

/// Asserts that `r` is the error `e`, compared through `Debug` so that a
/// NaN parameter value matches itself.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(r: Result<T, Error>, e: &Error) {
    assert_eq!(
        format!("{:?}", r.map(|_| ())),
        format!("{:?}", Err::<(), _>(e))
    );
}

#[test]
fn loss_and_gradient_within_bounds_on_every_backend() {
    for sm in common::dispatched("loss_and_gradient_within_bounds_on_every_backend") {
        let mut worst = Worst::default();
        for &n in &lengths() {
            for fam in FAMILIES {
                let x = gen_row(fam, n, 11);
                let argmax = (0..n).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
                let mut g = rng(n as u64 ^ fam as u64);
                let other = g.random_range(0..n);
                for (t, eps, gs) in [(argmax, 0.0, 1.0), (other, 0.0, 0.37), (argmax, 0.1, -2.0)] {
                    // A masked target makes the loss +∞ (checked); with
                    // smoothing any −∞ logit does.
                    let what = format!("{} {fam:?} n={n} t={t} ε={eps}", sm.backend());
                    check_row(&sm, &x, t, eps, gs, &mut worst, &what);
                }
            }
        }
        println!("{}: worst error/bound {worst:?}", sm.backend());
    }
}

#[test]
fn dominant_target_keeps_its_digits() {
    // p_t ≈ 1 − 1e-9: the loss is ≈ 1e-9 and the target's gradient
    // ≈ −1e-9; `−ln fl(p_t)` or `fl(p_t) − 1` would give 0.
    let x = [0.0f32, -21.0, -22.0, -23.0];
    let r = reference(&x, 0, 0.0);
    for sm in common::dispatched("dominant_target_keeps_its_digits") {
        let mut y = [0.0f32; 4];
        let o = CrossEntropyOptions::default();
        let loss = sm
            .cross_entropy_with_grad(&x, 4, &[0], o, 1.0, &mut y)
            .unwrap();
        assert!(
            ((loss as f64 - r.loss) / r.loss).abs() < 4.0 * EPS,
            "{loss} vs {}",
            r.loss
        );
        assert!(
            ((y[0] as f64 - r.grad[0]) / r.grad[0]).abs() < 4.0 * EPS,
            "{}",
            y[0]
        );
    }
}

#[test]
fn reference_gradient_is_the_derivative_of_the_loss() {
    for (n, eps) in [
        (2usize, 0.0),
        (7, 0.0),
        (50, 0.0),
        (50, 0.1),
        (300, 0.25),
        (9, 1.0),
    ] {
        let x = gen_row(Family::NormalS1, n, 3);
        for t in [0, n / 2, n - 1] {
            let r = reference(&x, t, eps);
            let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            assert!((loss_f64(&xd, t, eps) - r.loss).abs() < 1e-12);
            for j in 0..n {
                let h = 1e-5;
                let (mut a, mut b) = (xd.clone(), xd.clone());
                a[j] += h;
                b[j] -= h;
                let fd = (loss_f64(&a, t, eps) - loss_f64(&b, t, eps)) / (2.0 * h);
                assert!(
                    (fd - r.grad[j]).abs() < 1e-8,
                    "n={n} ε={eps} t={t} j={j}: fd {fd} vs {}",
                    r.grad[j]
                );
            }
        }
    }
}

#[test]
fn ignore_index_and_all_ignored() {
    let (n, rows) = (33usize, 6usize);
    let x: Vec<f32> = (0..rows)
        .flat_map(|r| gen_row(Family::Uniform, n, r as u64))
        .collect();
    let t = [3u32, 99, 0, 32, 99, 7];
    for sm in common::dispatched("ignore_index_and_all_ignored") {
        for eps in [0.0, 0.2] {
            let o = opts(Some(99), eps);
            let mut y = vec![5.0f32; x.len()];
            let loss = sm
                .cross_entropy_with_grad(&x, n, &t, o, 1.0, &mut y)
                .unwrap();
            // The mean of the kept rows, each alone.
            let kept: Vec<usize> = (0..rows).filter(|&r| t[r] != 99).collect();
            let mut sum = 0.0f64;
            for &r in &kept {
                let row = &x[r * n..][..n];
                let mut l = [0.0f32];
                sm.cross_entropy_rows(row, n, &t[r..r + 1], o, &mut l)
                    .unwrap();
                sum += reference(row, t[r] as usize, eps as f64).loss;
                let mut yr = vec![0.0f32; n];
                sm.cross_entropy_backward(row, n, &t[r..r + 1], o, 1.0, &mut yr)
                    .unwrap();
                assert_eq!(bits(&yr), bits(&y[r * n..][..n]), "row {r} alone");
            }
            let want = sum / kept.len() as f64;
            assert!(
                (loss as f64 - want).abs() < 8.0 * ulp_f32(want),
                "{loss} vs {want}"
            );
            for r in [1, 4] {
                assert!(y[r * n..][..n].iter().all(|&v| v.to_bits() == 0), "row {r}");
            }
            let mut per = vec![7.0f32; rows];
            sm.cross_entropy_rows(&x, n, &t, o, &mut per).unwrap();
            assert_eq!((per[1], per[4]), (0.0, 0.0));
            assert!(per[0] > 0.0);
            // All ignored: NaN, zero gradient.
            let all = [99u32; 6];
            let mut y = vec![5.0f32; x.len()];
            assert!(sm.cross_entropy(&x, n, &all, o).unwrap().is_nan());
            assert!(
                sm.cross_entropy_with_grad(&x, n, &all, o, 1.0, &mut y)
                    .unwrap()
                    .is_nan()
            );
            assert!(y.iter().all(|&v| v.to_bits() == 0));
            // An ignore_index below row_len ignores that class.
            let o0 = opts(Some(0), eps);
            let l0 = sm.cross_entropy(&x, n, &[0, 1, 0, 1, 0, 1], o0).unwrap();
            let l1 = sm
                .cross_entropy(&x, n, &[5, 1, 5, 1, 5, 1], opts(Some(5), eps))
                .unwrap();
            assert_eq!(l0, l1);
        }
        // No rows at all: NaN.
        let empty: [f32; 0] = [];
        let o = CrossEntropyOptions::default();
        assert!(sm.cross_entropy(&empty, 4, &[], o).unwrap().is_nan());
    }
}

#[test]
fn special_rows() {
    let inf = f32::INFINITY;
    let ninf = f32::NEG_INFINITY;
    for sm in common::dispatched("special_rows") {
        let run = |x: &[f32], t: u32, eps: f32| {
            let mut y = vec![9.0f32; x.len()];
            let o = opts(None, eps);
            let l = sm
                .cross_entropy_with_grad(x, x.len(), &[t], o, 2.0, &mut y)
                .unwrap();
            (l, y)
        };
        // NaN: loss and every gradient entry NaN.
        let (l, y) = run(&[1.0, f32::NAN, 2.0], 0, 0.0);
        assert!(l.is_nan() && y.iter().all(|v| v.is_nan()));
        let (l, y) = run(&[inf, f32::NAN, 2.0], 0, 0.0);
        assert!(l.is_nan() && y.iter().all(|v| v.is_nan()));
        // +∞ target among k = 2 +∞ entries: ln 2; S = ½ on them.
        let (l, y) = run(&[inf, 1.0, inf, 3.0], 2, 0.0);
        assert_eq!(l, std::f32::consts::LN_2);
        assert_eq!(y, [1.0, 0.0, -1.0, 0.0]);
        // Finite target beside +∞: +∞; smoothing with finite entries: +∞.
        assert_eq!(run(&[inf, 1.0], 1, 0.0).0, inf);
        assert_eq!(run(&[inf, 1.0], 0, 0.1).0, inf);
        // Every entry +∞ and smoothing: ln N.
        assert_eq!(run(&[inf; 4], 1, 0.5).0, 4f32.ln());
        // Masked target in a finite row: +∞, gradient −g at it.
        let (l, y) = run(&[0.0, ninf, 0.0], 1, 0.0);
        assert_eq!(l, inf);
        assert_eq!(y, [1.0, -2.0, 1.0]);
        // Smoothing with a masked entry: +∞.
        assert_eq!(run(&[0.0, ninf, 0.0], 0, 0.1).0, inf);
        // Fully masked row: +∞, gradient −g·q.
        let (l, y) = run(&[ninf; 4], 3, 0.0);
        assert_eq!(l, inf);
        assert_eq!(y, [0.0, 0.0, 0.0, -2.0]);
        let (l, y) = run(&[ninf; 4], 3, 0.5);
        assert_eq!(l, inf);
        assert_eq!(y, [-0.25, -0.25, -0.25, -1.25]);
        // A special row does not disturb its neighbours.
        let x = [1.0, 2.0, f32::NAN, 0.0, 3.0, 1.0];
        let o = CrossEntropyOptions::default();
        let mut l = [0.0f32; 3];
        sm.cross_entropy_rows(&x, 2, &[0, 1, 1], o, &mut l).unwrap();
        assert!(l[1].is_nan() && l[0].is_finite() && l[2].is_finite());
        assert!(sm.cross_entropy(&x, 2, &[0, 1, 1], o).unwrap().is_nan());
    }
}

#[test]
fn label_smoothing_edges() {
    // ε = 1: q is uniform, the loss is lse − mean, whatever the target.
    let x = gen_row(Family::NormalS1, 40, 5);
    for sm in common::dispatched("label_smoothing_edges") {
        let a = sm.cross_entropy(&x, 40, &[0], opts(None, 1.0)).unwrap();
        let b = sm.cross_entropy(&x, 40, &[39], opts(None, 1.0)).unwrap();
        assert_eq!(a, b);
        let r = reference(&x, 0, 1.0).loss;
        assert!((a as f64 - r).abs() <= 2.0 * ulp_f32(r) + C_ULPS * EPS);
        // The gradient of each row sums to 0 (within the roundings).
        let mut y = vec![0.0f32; 40];
        let o = opts(None, 0.3);
        sm.cross_entropy_backward(&x, 40, &[7], o, 1.0, &mut y)
            .unwrap();
        assert!(y.iter().map(|&v| v as f64).sum::<f64>().abs() < 1e-6);
    }
}

#[test]
fn errors_leave_outputs_untouched() {
    let x = vec![0.5f32; 12];
    let o = CrossEntropyOptions::default();
    for sm in common::dispatched("errors_leave_outputs_untouched") {
        let canary = 7.25f32;
        let mut y = vec![canary; 12];
        let mut l = vec![canary; 3];
        let cases: Vec<(usize, Vec<u32>, CrossEntropyOptions, Error)> = vec![
            (
                0,
                vec![0, 0, 0],
                o,
                Error::InvalidRowLen {
                    len: 12,
                    row_len: 0,
                },
            ),
            (
                5,
                vec![0, 0, 0],
                o,
                Error::InvalidRowLen {
                    len: 12,
                    row_len: 5,
                },
            ),
            (
                4,
                vec![0, 0],
                o,
                Error::TargetsLength {
                    rows: 3,
                    targets: 2,
                },
            ),
            (
                4,
                vec![0, 4, 0],
                o,
                Error::TargetOutOfRange {
                    row: 1,
                    target: 4,
                    row_len: 4,
                },
            ),
            (
                4,
                vec![0, 1, 9],
                opts(Some(4), 0.0),
                Error::TargetOutOfRange {
                    row: 2,
                    target: 9,
                    row_len: 4,
                },
            ),
            (4, vec![0, 0, 0], opts(None, -0.1), smoothing(-0.1)),
            (4, vec![0, 0, 0], opts(None, 1.5), smoothing(1.5)),
            (4, vec![0, 0, 0], opts(None, f32::NAN), smoothing(f32::NAN)),
        ];
        for (row_len, t, o, e) in cases {
            assert_refused(sm.cross_entropy(&x, row_len, &t, o), &e);
            assert_refused(sm.cross_entropy_rows(&x, row_len, &t, o, &mut l), &e);
            assert_refused(
                sm.cross_entropy_backward(&x, row_len, &t, o, 1.0, &mut y),
                &e,
            );
            assert_refused(
                sm.cross_entropy_with_grad(&x, row_len, &t, o, 1.0, &mut y),
                &e,
            );
            #[cfg(feature = "rayon")]
            {
                assert_refused(sm.par_cross_entropy(&x, row_len, &t, o), &e);
                assert_refused(sm.par_cross_entropy_rows(&x, row_len, &t, o, &mut l), &e);
                assert_refused(
                    sm.par_cross_entropy_backward(&x, row_len, &t, o, 1.0, &mut y),
                    &e,
                );
                assert_refused(
                    sm.par_cross_entropy_with_grad(&x, row_len, &t, o, 1.0, &mut y),
                    &e,
                );
            }
            assert!(y.iter().chain(&l).all(|&v| v == canary));
        }
        // Output lengths.
        let t = [0u32, 1, 2];
        let short = Error::LengthMismatch {
            input: 12,
            output: 11,
        };
        assert_eq!(
            sm.cross_entropy_backward(&x, 4, &t, o, 1.0, &mut y[..11]),
            Err(short.clone())
        );
        assert_eq!(
            sm.cross_entropy_with_grad(&x, 4, &t, o, 1.0, &mut y[..11]),
            Err(short)
        );
        let losses = Error::LossesLength { rows: 3, losses: 2 };
        assert_eq!(
            sm.cross_entropy_rows(&x, 4, &t, o, &mut l[..2]),
            Err(losses)
        );
        assert!(y.iter().chain(&l).all(|&v| v == canary));
        let msg = Error::TargetOutOfRange {
            row: 1,
            target: 4,
            row_len: 4,
        }
        .to_string();
        assert!(msg.contains("row 1") && msg.contains("target 4"), "{msg}");
    }
}

#[test]
fn with_grad_is_forward_plus_backward() {
    let (rows, n) = (9usize, 517usize);
    let x: Vec<f32> = (0..rows)
        .flat_map(|r| gen_row(Family::NormalS10, n, r as u64))
        .collect();
    let t: Vec<u32> = (0..rows as u32).map(|r| (r * 57) % n as u32).collect();
    for sm in common::dispatched("with_grad_is_forward_plus_backward") {
        for o in [opts(None, 0.0), opts(Some(57), 0.1)] {
            let (mut a, mut b) = (vec![0.0f32; x.len()], vec![1.0f32; x.len()]);
            let l = sm
                .cross_entropy_with_grad(&x, n, &t, o, 0.25, &mut a)
                .unwrap();
            sm.cross_entropy_backward(&x, n, &t, o, 0.25, &mut b)
                .unwrap();
            assert_eq!(
                l.to_bits(),
                sm.cross_entropy(&x, n, &t, o).unwrap().to_bits()
            );
            assert_eq!(bits(&a), bits(&b));
        }
    }
}

#[test]
fn half_logits_and_gradients() {
    half_case(&[0, 299, 17, 99, 150], 300);
    // Rows longer than a tile (4096) and than a state chunk (65536): the
    // half rows go through the stack tiles piece by piece, the targets in
    // the first, a middle and the last piece.
    let n = if quick() { 9000 } else { 70_000 };
    half_case(&[5, n as u32 - 1, 4096], n);
}

/// Half logits give their widened logits' bits, half gradients the f32
/// gradient rounded once: rows of `n`, one per target.
fn half_case(t: &[u32], n: usize) {
    let rows = t.len();
    let x: Vec<f32> = (0..rows)
        .flat_map(|r| gen_row(Family::NormalS1, n, r as u64))
        .collect();
    let o = opts(Some(99), 0.05);
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let xh32: Vec<f32> = xh.iter().map(|v| v.to_f32()).collect();
    let xb32: Vec<f32> = xb.iter().map(|v| v.to_f32()).collect();
    for sm in common::dispatched("half_logits_and_gradients") {
        // Half in, f32 out: the widened logits' bits.
        for (xw, name) in [(&xh32, "f16"), (&xb32, "bf16")] {
            let mut want = vec![0.0f32; x.len()];
            let lw = sm
                .cross_entropy_with_grad(xw, n, t, o, 0.5, &mut want)
                .unwrap();
            let mut got = vec![0.0f32; x.len()];
            let lg = match name {
                "f16" => sm.cross_entropy_with_grad(&xh, n, t, o, 0.5, &mut got),
                _ => sm.cross_entropy_with_grad(&xb, n, t, o, 0.5, &mut got),
            }
            .unwrap();
            assert_eq!(lg.to_bits(), lw.to_bits(), "{name} loss");
            assert_eq!(bits(&got), bits(&want), "{name} gradient");
        }
        // f32 in, half out: the f32 gradient rounded once.
        let mut g32 = vec![0.0f32; x.len()];
        let l32 = sm
            .cross_entropy_with_grad(&x, n, t, o, 0.5, &mut g32)
            .unwrap();
        let mut gh = vec![f16::ZERO; x.len()];
        let mut gb = vec![bf16::ZERO; x.len()];
        assert_eq!(
            sm.cross_entropy_with_grad(&x, n, t, o, 0.5, &mut gh)
                .unwrap(),
            l32
        );
        sm.cross_entropy_backward(&x, n, t, o, 0.5, &mut gb)
            .unwrap();
        for i in 0..x.len() {
            assert_eq!(
                gh[i].to_bits(),
                f16::from_f32(g32[i]).to_bits(),
                "f16 [{i}]"
            );
            assert_eq!(
                gb[i].to_bits(),
                bf16::from_f32(g32[i]).to_bits(),
                "bf16 [{i}]"
            );
        }
        // Half in and out.
        let mut gbb = vec![bf16::ZERO; x.len()];
        let mut gw = vec![0.0f32; x.len()];
        sm.cross_entropy_backward(&xb, n, t, o, 0.5, &mut gbb)
            .unwrap();
        sm.cross_entropy_backward(&xb32, n, t, o, 0.5, &mut gw)
            .unwrap();
        assert!(
            gbb.iter()
                .zip(&gw)
                .all(|(a, b)| a.to_bits() == bf16::from_f32(*b).to_bits())
        );
    }
}

#[cfg(feature = "rayon")]
#[test]
fn par_forms_are_the_serial_bits() {
    let (rows, n) = if quick() {
        (70usize, 1000usize)
    } else {
        (300, 1000)
    };
    let mut x: Vec<f32> = (0..rows)
        .flat_map(|r| gen_row(Family::Uniform, n, r as u64))
        .collect();
    x[5 * n + 3] = f32::NAN;
    x[9 * n..10 * n].fill(f32::NEG_INFINITY);
    let t: Vec<u32> = (0..rows as u32)
        .map(|r| {
            if r % 11 == 4 {
                u32::MAX
            } else {
                r * 7 % n as u32
            }
        })
        .collect();
    for sm in common::dispatched("par_forms_are_the_serial_bits") {
        for o in [opts(Some(u32::MAX), 0.0), opts(Some(u32::MAX), 0.1)] {
            let nan_free: Vec<u32> = t
                .iter()
                .enumerate()
                .map(|(r, &v)| if r == 5 || r == 9 { u32::MAX } else { v })
                .collect();
            let s = sm.cross_entropy(&x, n, &nan_free, o).unwrap();
            let p = sm.par_cross_entropy(&x, n, &nan_free, o).unwrap();
            assert_eq!(s.to_bits(), p.to_bits());
            let (mut ls, mut lp) = (vec![0.0f32; rows], vec![1.0f32; rows]);
            sm.cross_entropy_rows(&x, n, &t, o, &mut ls).unwrap();
            sm.par_cross_entropy_rows(&x, n, &t, o, &mut lp).unwrap();
            assert_eq!(bits(&ls), bits(&lp));
            let (mut ys, mut yp) = (vec![0.0f32; x.len()], vec![1.0f32; x.len()]);
            let s = sm
                .cross_entropy_with_grad(&x, n, &nan_free, o, 0.1, &mut ys)
                .unwrap();
            let p = sm
                .par_cross_entropy_with_grad(&x, n, &nan_free, o, 0.1, &mut yp)
                .unwrap();
            assert_eq!((s.to_bits(), bits(&ys)), (p.to_bits(), bits(&yp)));
            let mut yb = vec![bf16::ONE; x.len()];
            let mut ybs = vec![bf16::ZERO; x.len()];
            sm.par_cross_entropy_backward(&x, n, &t, o, 0.1, &mut yb)
                .unwrap();
            sm.cross_entropy_backward(&x, n, &t, o, 0.1, &mut ybs)
                .unwrap();
            assert!(yb.iter().zip(&ybs).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
