//! The rest of the softmax family on every engine: differential
//! accuracy against f64 references with derived bounds (one report test,
//! `family_accuracy_report`, prints each function's max error per engine),
//! the exact limits of `softmax_scaled`, the special values of every
//! function, and every refused call (typed error, output untouched).
//!
//! Run `cargo test --test family -- --nocapture` to see the table.

mod family_support;

use family_support::*;
use rand::RngExt;
use simd_softmax::{Anchor, Backend, Error, Softmax};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Inverse temperatures of the sweep: identity, mild and sharp, tiny and
/// subnormal (≈ uniform), zero, and softmin.
const ALPHAS: [f32; 12] = [
    1.0, 0.5, 2.0, 1e-3, 7.3, 100.0, 1e-30, 1e-45, 0.0, -1.0, -0.25, -3.0,
];

// ---------------------------------------------------------------------------
// The accuracy report
// ---------------------------------------------------------------------------

/// The table rows, in print order, with each one's error unit.
const FUNCS: [(&str, &str); 10] = [
    ("softmax_scaled", "ulp"),
    ("softmax_scaled_rows", "ulp"),
    ("sigmoid", "ulp"),
    ("softmax_backward", "u·y(|dy|+S)"),
    ("jacobian offdiag", "ulp"),
    ("jacobian diag", "ulp"),
    ("logits Component", "ulp(|lnp|+|c|)"),
    ("logits ZeroMean", "ulp(|lnp|+M)"),
    ("combination", "ulp"),
    ("combination T=0", "ulp"),
];

/// One function's accuracy on one engine.
#[derive(Default)]
struct Acc {
    /// Max observed error in the function's unit.
    max_err: f64,
    /// Max of `err − (input-dependent part of the bound)`: the observed
    /// constant, to compare with the bound's constant.
    max_const: f64,
    checked: u64,
    failed: u64,
    repro: Vec<String>,
}

impl Acc {
    /// Records `err` against the bound `constant + term`.
    fn check(&mut self, err: f64, term: f64, constant: f64, repro: impl FnOnce() -> String) {
        self.checked += 1;
        self.max_err = self.max_err.max(err);
        self.max_const = self.max_const.max(err - term);
        let within = err <= constant + term; // false for NaN
        if !within {
            self.failed += 1;
            if self.repro.len() < 3 {
                self.repro.push(repro());
            }
        }
    }
}

type Report = BTreeMap<&'static str, Acc>;

fn offset_copy(x: &[f32], off: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; off];
    v.extend_from_slice(x);
    v
}

fn acc_softmax_scaled(e: &Engine, rep: &mut Report) {
    let acc = rep.entry("softmax_scaled").or_default();
    let mut g = rng(0x5ca1_ed01);
    for n in lengths() {
        for kind in LOGIT_KINDS {
            let x = logits(kind, &mut g, n);
            for alpha in ALPHAS {
                let r = ref_scaled(&x, alpha);
                let m = pivot(&x, alpha);
                let terms = scaled_terms(&x, alpha, &r);
                // Unaligned offsets on every length up to 64 and on the long rows.
                for off in OFFSETS {
                    let xb = offset_copy(&x, off);
                    let mut yb = sentinel(n + off);
                    e.ops.softmax_scaled(&xb[off..], &mut yb[off..], alpha);
                    let y = &yb[off..];
                    for i in 0..n {
                        let term = terms[i];
                        let err = ulps(y[i], r[i], C_SCALED + term);
                        acc.check(err, term, C_SCALED, || {
                            format!(
                                "softmax_scaled[{}] kind={kind} n={n} offset={off} alpha={alpha:e} \
                                 i={i} x_i={:e} pivot={m:e}: got {:e}, expected {:e} ({err:.2} ulp, \
                                 bound {:.2}); x={}",
                                e.name,
                                x[i],
                                y[i],
                                r[i],
                                C_SCALED + term,
                                show(&x)
                            )
                        });
                    }
                }
            }
        }
    }
}

/// Rows of `softmax_scaled_rows`: each row against the reference, and
/// bit-for-bit equal to `softmax_scaled` of that row alone (rows are
/// independent).
fn acc_softmax_scaled_rows(e: &Engine, rep: &mut Report) {
    let acc = rep.entry("softmax_scaled_rows").or_default();
    let mut g = rng(0x5ca1_ed02);
    for row_len in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 257] {
        for rows in [1, 2, 5] {
            for kind in ["uniform[-10,10]", "normal(100)", "one-dominant"] {
                let x = logits(kind, &mut g, row_len * rows);
                for alpha in [1.0f32, 0.7, -2.0, 0.0, 30.0] {
                    let mut y = sentinel(x.len());
                    e.ops.softmax_scaled_rows(&x, &mut y, row_len, alpha);
                    for (row, (xr, yr)) in x.chunks(row_len).zip(y.chunks(row_len)).enumerate() {
                        let mut single = sentinel(row_len);
                        e.ops.softmax_scaled(xr, &mut single, alpha);
                        let same = single
                            .iter()
                            .zip(yr)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        acc.check(if same { 0.0 } else { f64::INFINITY }, 0.0, 0.0, || {
                            format!(
                                "softmax_scaled_rows[{}] row_len={row_len} row={row} alpha={alpha}: \
                                 {yr:?} differs from softmax_scaled of the row alone {single:?}",
                                e.name
                            )
                        });
                        let r = ref_scaled(xr, alpha);
                        let terms = scaled_terms(xr, alpha, &r);
                        for i in 0..row_len {
                            let term = terms[i];
                            let err = ulps(yr[i], r[i], C_SCALED + term);
                            acc.check(err, term, C_SCALED, || {
                                format!(
                                    "softmax_scaled_rows[{}] row_len={row_len} row={row} \
                                     alpha={alpha} i={i}: got {:e}, expected {:e} ({err:.2} ulp)",
                                    e.name, yr[i], r[i]
                                )
                            });
                        }
                    }
                }
            }
        }
    }
}

const SIGMOID_KINDS: [&str; 6] = [
    "uniform[-20,20]",
    "normal(100)",
    "near-zero",
    "subnormal",
    "tails(80..110)",
    "any-finite",
];

fn sigmoid_inputs(kind: &str, g: &mut Rng, n: usize) -> Vec<f32> {
    match kind {
        "uniform[-20,20]" => uniform(g, n, -20.0, 20.0),
        "normal(100)" => normal(g, n, 100.0),
        "near-zero" => uniform(g, n, -1e-3, 1e-3),
        "subnormal" => logits("subnormal", g, n),
        "tails(80..110)" => (0..n)
            .map(|_| g.random_range(80.0f32..110.0) * if g.random() { 1.0 } else { -1.0 })
            .collect(),
        "any-finite" => (0..n)
            .map(|_| {
                loop {
                    let v = f32::from_bits(g.random::<u32>());
                    if v.is_finite() {
                        break v;
                    }
                }
            })
            .collect(),
        _ => unreachable!(),
    }
}

fn acc_sigmoid(e: &Engine, rep: &mut Report) {
    let acc = rep.entry("sigmoid").or_default();
    let mut g = rng(0x516_0001);
    for n in lengths() {
        for kind in SIGMOID_KINDS {
            let z = sigmoid_inputs(kind, &mut g, n);
            let r: Vec<f64> = z
                .iter()
                .map(|&v| simd_softmax::reference::logistic(v as f64))
                .collect();
            for off in OFFSETS {
                let zb = offset_copy(&z, off);
                let mut yb = sentinel(n + off);
                e.ops.sigmoid(&zb[off..], &mut yb[off..]);
                let y = &yb[off..];
                for i in 0..n {
                    let err = ulps(y[i], r[i], C_SIGMOID);
                    acc.check(err, 0.0, C_SIGMOID, || {
                        format!(
                            "sigmoid[{}] kind={kind} n={n} offset={off} i={i}: sigmoid({:e}) got \
                             {:e}, expected {:e} ({err:.2} ulp)",
                            e.name, z[i], y[i], r[i]
                        )
                    });
                }
            }
        }
    }
}

/// `(y, dy)` pairs: a softmax output with a normal gradient, the
/// cross-entropy gradient `−1/y_k` at one class, a constant gradient (the
/// bracket cancels exactly in exact arithmetic), unnormalized `y` with wide
/// gradients.
fn backward_inputs(kind: &str, g: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let probs = |g: &mut Rng, sigma: f64| -> Vec<f32> {
        let x = normal(g, n, sigma);
        simd_softmax::reference::softmax(&x)
            .iter()
            .map(|&v| v as f32)
            .collect()
    };
    match kind {
        "softmax,normal dy" => (probs(g, 2.0), normal(g, n, 1.0)),
        "cross-entropy" => {
            let y = probs(g, 3.0);
            let mut dy = vec![0.0f32; n];
            let k = g.random_range(0..n);
            dy[k] = -1.0 / y[k].max(1e-30);
            (y, dy)
        }
        "constant dy" => (probs(g, 1.0), vec![g.random_range(-3.0f32..3.0); n]),
        "raw y, wide dy" => (uniform(g, n, 0.0, 1.0), normal(g, n, 1e4)),
        _ => unreachable!(),
    }
}

const BACKWARD_KINDS: [&str; 4] = [
    "softmax,normal dy",
    "cross-entropy",
    "constant dy",
    "raw y, wide dy",
];

fn acc_backward(e: &Engine, rep: &mut Report) {
    let acc = rep.entry("softmax_backward").or_default();
    let mut g = rng(0xbac_0001);
    for n in lengths() {
        for kind in BACKWARD_KINDS {
            let (y, dy) = backward_inputs(kind, &mut g, n);
            let r = ref_backward(&y, &dy);
            let s = dot_scale(&y, &dy);
            for off in OFFSETS {
                let (yb, dyb) = (offset_copy(&y, off), offset_copy(&dy, off));
                let mut dxb = sentinel(n + off);
                e.ops
                    .softmax_backward(&yb[off..], &dyb[off..], &mut dxb[off..]);
                let dx = &dxb[off..];
                for i in 0..n {
                    let unit = U * (y[i] as f64).abs() * ((dy[i] as f64).abs() + s);
                    let diff = (dx[i] as f64 - r[i]).abs();
                    let err = if diff == 0.0 {
                        0.0
                    } else if unit > 0.0 {
                        diff / unit
                    } else {
                        f64::INFINITY
                    };
                    acc.check(err, 0.0, K_BACKWARD, || {
                        format!(
                            "softmax_backward[{}] kind={kind} n={n} offset={off} i={i}: y_i={:e} \
                             dy_i={:e} S={s:e}: got {:e}, expected {:e} ({err:.2} units); y={} dy={}",
                            e.name,
                            y[i],
                            dy[i],
                            dx[i],
                            r[i],
                            show(&y),
                            show(&dy)
                        )
                    });
                }
            }
        }
    }
}

fn acc_jacobian(e: &Engine, rep: &mut Report) {
    let mut g = rng(0x1ac_0001);
    // N² outputs: the sweep stops at N = 1000 (10^6 entries); longer rows
    // exercise no lane logic that N ≤ 1000 does not (each row is one `map1`).
    let ns = (1..=64).chain([100, 300, 1000]);
    for n in ns {
        for kind in ["softmax(normal(3))", "uniform[0,1]", "softmax(normal(30))"] {
            let y: Vec<f32> = match kind {
                "uniform[0,1]" => uniform(&mut g, n, 0.0, 1.0),
                _ => {
                    let sigma = if kind.contains("30") { 30.0 } else { 3.0 };
                    let x = normal(&mut g, n, sigma);
                    simd_softmax::reference::softmax(&x)
                        .iter()
                        .map(|&v| v as f32)
                        .collect()
                }
            };
            let mut out = sentinel(n * n);
            e.ops.jacobian(&y, &mut out);
            for i in 0..n {
                for j in 0..n {
                    let (yi, yj) = (y[i] as f64, y[j] as f64);
                    let (name, r, bound) = if i == j {
                        ("jacobian diag", yi * (1.0 - yi), JAC_DIAG)
                    } else {
                        ("jacobian offdiag", -yi * yj, JAC_OFF)
                    };
                    let got = out[i * n + j];
                    let err = ulps(got, r, bound);
                    rep.entry(name).or_default().check(err, 0.0, bound, || {
                        format!(
                            "jacobian[{}] kind={kind} n={n} ({i},{j}): y_i={:e} y_j={:e}: got {got:e}, \
                             expected {r:e} ({err:.2} ulp)",
                            e.name, y[i], y[j]
                        )
                    });
                }
            }
        }
    }
}

const PROB_KINDS: [&str; 5] = [
    "softmax(uniform[-10,10])",
    "softmax(normal(5))",
    "weights(0,100]",
    "subnormal-mix",
    "ones",
];

fn prob_inputs(kind: &str, g: &mut Rng, n: usize) -> Vec<f32> {
    let from = |x: Vec<f32>| -> Vec<f32> {
        simd_softmax::reference::softmax(&x)
            .iter()
            .map(|&v| (v as f32).max(f32::from_bits(1)))
            .collect()
    };
    match kind {
        "softmax(uniform[-10,10])" => from(uniform(g, n, -10.0, 10.0)),
        "softmax(normal(5))" => from(normal(g, n, 5.0)),
        "weights(0,100]" => (0..n)
            .map(|_| 100.0 - g.random_range(0.0f32..100.0))
            .collect(),
        "subnormal-mix" => (0..n)
            .map(|_| {
                if g.random::<bool>() {
                    f32::from_bits(g.random_range(1u32..0x0080_0000))
                } else {
                    g.random_range(1e-3f32..1.0)
                }
            })
            .collect(),
        "ones" => vec![1.0; n],
        _ => unreachable!(),
    }
}

fn acc_logits(e: &Engine, rep: &mut Report) {
    let mut g = rng(0x10_0001);
    for n in lengths() {
        for kind in PROB_KINDS {
            let p = prob_inputs(kind, &mut g, n);
            let lnp: Vec<f64> = p.iter().map(|&v| (v as f64).ln()).collect();
            let mean_abs = lnp.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
            let k_mid = g.random_range(0..n);
            for anchor in [
                Anchor::ZeroMean,
                Anchor::Component(0),
                Anchor::Component(k_mid),
                Anchor::Component(n - 1),
            ] {
                let c = ref_anchor(&p, anchor);
                let (name, k) = match anchor {
                    Anchor::ZeroMean => ("logits ZeroMean", K_LOGITS_ZERO_MEAN),
                    Anchor::Component(_) => ("logits Component", K_LOGITS_COMPONENT),
                };
                let acc = rep.entry(name).or_default();
                let mut out = sentinel(n);
                e.ops.logits_from_probs(&p, &mut out, anchor);
                for i in 0..n {
                    let r = lnp[i] + c;
                    let scale = match anchor {
                        Anchor::ZeroMean => lnp[i].abs() + mean_abs,
                        Anchor::Component(_) => lnp[i].abs() + c.abs(),
                    };
                    let diff = (out[i] as f64 - r).abs();
                    let err = if diff == 0.0 {
                        0.0
                    } else {
                        diff / ulp_f32(scale)
                    };
                    let err = if err.is_nan() { f64::INFINITY } else { err };
                    acc.check(err, 0.0, k, || {
                        format!(
                            "logits_from_probs[{}] kind={kind} n={n} {anchor:?} i={i}: p_i={:e}: \
                             got {:e}, expected {r:e} ({err:.2} units of ulp({scale:e})); p={}",
                            e.name,
                            p[i],
                            out[i],
                            show(&p)
                        )
                    });
                }
                if let Anchor::Component(k) = anchor {
                    acc.check(
                        if out[k] == 0.0 { 0.0 } else { f64::INFINITY },
                        0.0,
                        0.0,
                        || {
                            format!(
                                "logits_from_probs[{}] kind={kind} n={n}: anchored out[{k}] = {:e}, not 0",
                                e.name, out[k]
                            )
                        },
                    );
                }
            }
        }
    }
}

/// A named set of combination terms: weights and rows.
type TermSet = (&'static str, Vec<f32>, Vec<Vec<f32>>);

fn acc_combination(e: &Engine, rep: &mut Report) {
    let mut g = rng(0xc0_0001);
    for n in lengths() {
        // Term sets: one scaled term, classifier-free guidance
        // (1−g)·u + g·c, three random weights, a product of four experts
        // with one sharp (σ = 30) expert.
        let sets: Vec<TermSet> = vec![
            ("1 term", vec![-2.0], vec![uniform(&mut g, n, -10.0, 10.0)]),
            (
                "cfg g=3",
                vec![-2.0, 3.0],
                vec![normal(&mut g, n, 2.0), normal(&mut g, n, 2.0)],
            ),
            (
                "3 random",
                (0..3).map(|_| g.random_range(-2.0f32..2.0)).collect(),
                (0..3).map(|_| uniform(&mut g, n, -5.0, 5.0)).collect(),
            ),
            (
                "4 experts",
                vec![1.0, 1.0, 0.5, 1.0],
                vec![
                    normal(&mut g, n, 1.0),
                    normal(&mut g, n, 30.0),
                    uniform(&mut g, n, -1.0, 1.0),
                    logits("one-dominant", &mut g, n),
                ],
            ),
        ];
        for (set, weights, xs) in &sets {
            let terms: Vec<(f32, &[f32])> = weights
                .iter()
                .zip(xs)
                .map(|(&a, x)| (a, x.as_slice()))
                .collect();
            let z = ref_combination_logits(&terms, n);
            let r = softmax64(&z);
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let tn = terms.len() as f64;
            let big_e: Vec<f64> = (0..n)
                .map(|i| {
                    let a: f64 = terms
                        .iter()
                        .map(|&(w, x)| (w as f64 * x[i] as f64).abs())
                        .sum();
                    2.0 * tn * a + (z[i] - m).abs()
                })
                .collect();
            let mean_e: f64 = r.iter().zip(&big_e).map(|(a, b)| a * b).sum();
            let mut out = sentinel(n);
            e.ops.softmax_of_combination(&terms, &mut out);
            let acc = rep.entry("combination").or_default();
            for i in 0..n {
                let term = big_e[i] + mean_e;
                let err = ulps(out[i], r[i], C_COMBINATION + term);
                acc.check(err, term, C_COMBINATION, || {
                    format!(
                        "softmax_of_combination[{}] set={set} weights={weights:?} n={n} i={i}: \
                         z_i={:e}: got {:e}, expected {:e} ({err:.2} ulp, bound {:.2})",
                        e.name,
                        z[i],
                        out[i],
                        r[i],
                        C_COMBINATION + term
                    )
                });
            }
        }
        // No terms: the uniform distribution, 1/N correctly rounded (≤ ½ ULP).
        let mut out = sentinel(n);
        e.ops.softmax_of_combination(&[], &mut out);
        let acc = rep.entry("combination T=0").or_default();
        let r = 1.0 / n as f64;
        for (i, &v) in out.iter().enumerate() {
            let err = ulps(v, r, 0.5);
            acc.check(err, 0.0, 0.5, || {
                format!(
                    "softmax_of_combination[{}] no terms n={n} i={i}: got {v:e}, expected 1/{n}",
                    e.name
                )
            });
        }
    }
}

/// Every function of the family against its f64 reference on every engine,
/// with the bounds derived above; prints the max error per function per
/// engine (`--nocapture`), then fails with reproductions if any bound broke.
#[test]
fn family_accuracy_report() {
    let engines = engines();
    let reports: Vec<Report> = std::thread::scope(|sc| {
        let handles: Vec<_> = engines
            .iter()
            .map(|e| {
                sc.spawn(move || {
                    let mut rep = Report::new();
                    acc_softmax_scaled(e, &mut rep);
                    acc_softmax_scaled_rows(e, &mut rep);
                    acc_sigmoid(e, &mut rep);
                    acc_backward(e, &mut rep);
                    acc_jacobian(e, &mut rep);
                    acc_logits(e, &mut rep);
                    acc_combination(e, &mut rep);
                    rep
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut table = String::new();
    let _ = writeln!(
        table,
        "max error per function and engine: observed max (observed constant, i.e. max of \
         err − input-dependent term); bound constant in the last column"
    );
    let _ = write!(table, "{:<20} {:<15}", "function", "unit");
    for e in &engines {
        let _ = write!(table, " {:>14}", e.name);
    }
    let _ = writeln!(table, " {:>6}", "bound");
    let mut failures = Vec::new();
    for (f, unit) in FUNCS {
        let _ = write!(table, "{f:<20} {unit:<15}");
        for (e, rep) in engines.iter().zip(&reports) {
            let a = rep.get(f).expect("every function ran");
            assert!(a.checked > 0, "{f} checked nothing on {}", e.name);
            let cell = if a.max_const < a.max_err - 1e-9 {
                format!("{} ({})", fmt_err(a.max_err), fmt_err(a.max_const))
            } else {
                fmt_err(a.max_err)
            };
            let _ = write!(table, " {cell:>14}");
            if a.failed > 0 {
                failures.push(format!(
                    "{f} on {}: {} of {} values out of bound, e.g.\n  {}",
                    e.name,
                    a.failed,
                    a.checked,
                    a.repro.join("\n  ")
                ));
            }
        }
        let bound = match f {
            "softmax_scaled" | "softmax_scaled_rows" => C_SCALED,
            "sigmoid" => C_SIGMOID,
            "softmax_backward" => K_BACKWARD,
            "jacobian offdiag" => JAC_OFF,
            "jacobian diag" => JAC_DIAG,
            "logits Component" => K_LOGITS_COMPONENT,
            "logits ZeroMean" => K_LOGITS_ZERO_MEAN,
            "combination" => C_COMBINATION,
            _ => 0.5,
        };
        let _ = writeln!(table, " {bound:>6}");
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn fmt_err(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

// ---------------------------------------------------------------------------
// softmax_scaled: its exact limits (α → 0, ±∞) and the special values
// ---------------------------------------------------------------------------

/// `(1/k as f64) as f32`: the exact share of `k` tied winners (correctly
/// rounded 1/k).
fn share(k: usize) -> f32 {
    (1.0 / k as f64) as f32
}

fn assert_share(what: &str, x: &[f32], y: &[f32], winner: impl Fn(f32) -> bool) {
    let k = x.iter().filter(|&&v| winner(v)).count();
    assert!(k > 0, "{what}: no winner in {x:?}");
    for (i, (&xi, &yi)) in x.iter().zip(y).enumerate() {
        let want = if winner(xi) { share(k) } else { 0.0 };
        assert!(
            yi == want,
            "{what}: x={x:?} y[{i}] = {yi:e}, expected {want:e} ({k} tied winners)"
        );
    }
}

fn is_nan_row(y: &[f32]) -> bool {
    y.iter().all(|v| v.is_nan())
}

#[test]
fn scaled_exact_limits() {
    let mut g = rng(0x11_0001);
    for e in engines() {
        for n in (1..=40).chain([63, 100, 257]) {
            for _ in 0..4 {
                // Small integers: ties among the maxima and the minima.
                let x: Vec<f32> = (0..n).map(|_| g.random_range(-3i32..=3) as f32).collect();
                let (mx, mn) = (
                    x.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                    x.iter().copied().fold(f32::INFINITY, f32::min),
                );
                let mut y = sentinel(n);
                let what = format!("{} n={n}", e.name);
                e.ops.softmax_scaled(&x, &mut y, f32::INFINITY);
                assert_share(&format!("{what} alpha=+inf"), &x, &y, |v| v == mx);
                e.ops.softmax_scaled(&x, &mut y, f32::NEG_INFINITY);
                assert_share(&format!("{what} alpha=-inf"), &x, &y, |v| v == mn);
                e.ops.softmax_scaled(&x, &mut y, 0.0);
                assert_share(&format!("{what} alpha=0"), &x, &y, |_| true);
                e.ops.softmax_scaled(&x, &mut y, -0.0);
                assert_share(&format!("{what} alpha=-0"), &x, &y, |_| true);
                // alpha = 0 is uniform whatever the finite values.
                let wide = uniform(&mut g, n, -1e30, 1e30);
                e.ops.softmax_scaled(&wide, &mut y, 0.0);
                assert_share(&format!("{what} alpha=0 wide"), &wide, &y, |_| true);
                // alpha < 0 is the softmin: larger x, smaller y.
                let xs = uniform(&mut g, n, -5.0, 5.0);
                e.ops.softmax_scaled(&xs, &mut y, -1.5);
                for i in 0..n {
                    for j in 0..n {
                        if xs[i] < xs[j] {
                            assert!(
                                y[i] >= y[j],
                                "{what} softmin order: x={xs:?} y={y:?} ({i} vs {j})"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn scaled_special_values() {
    let alphas = [
        0.0f32,
        1.0,
        2.5,
        -2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-40,
        -1e-40,
    ];
    for e in engines() {
        for n in [1usize, 2, 3, 4, 5, 8, 15, 16, 17, 33] {
            let base: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
            let what = |s: &str, a: f32| format!("{} n={n} alpha={a:e}: {s}", e.name);
            // A NaN anywhere makes the whole row NaN, for every alpha.
            for pos in 0..n {
                let mut x = base.clone();
                x[pos] = f32::NAN;
                for a in alphas {
                    let mut y = sentinel(n);
                    e.ops.softmax_scaled(&x, &mut y, a);
                    assert!(
                        is_nan_row(&y),
                        "{}",
                        what(&format!("NaN at {pos}: {y:?}"), a)
                    );
                }
            }
            for a in alphas.iter().copied().filter(|a| *a != 0.0) {
                let pos_dir = a > 0.0;
                // +∞ entries: they share the mass for alpha > 0, are masked (0)
                // for alpha < 0; −∞ entries the other way round.
                for inf in [f32::INFINITY, f32::NEG_INFINITY] {
                    let mut x = base.clone();
                    let hits: Vec<usize> = (0..n).filter(|i| i % 3 == 1 || n == 1).collect();
                    for &h in &hits {
                        x[h] = inf;
                    }
                    let mut y = sentinel(n);
                    e.ops.softmax_scaled(&x, &mut y, a);
                    let dominant = (inf > 0.0) == pos_dir;
                    let tag = format!("{inf} at {hits:?}: x={x:?} y={y:?}");
                    if dominant {
                        assert_share(&what(&tag, a), &x, &y, |v| v == inf);
                    } else {
                        for &h in &hits {
                            assert_eq!(y[h], 0.0, "{}", what(&tag, a));
                        }
                        if hits.len() == n {
                            // Fully masked in this direction: all 0.
                            assert!(y.iter().all(|&v| v == 0.0), "{}", what(&tag, a));
                        } else {
                            let rest: Vec<f32> = x.iter().copied().filter(|v| *v != inf).collect();
                            let mut yr = sentinel(rest.len());
                            e.ops.softmax_scaled(&rest, &mut yr, a);
                            let got: Vec<f32> =
                                (0..n).filter(|i| !hits.contains(i)).map(|i| y[i]).collect();
                            // Same values as the unmasked row: "the rest a
                            // normal softmax" (the sum order may differ: 2×C).
                            for (u, v) in got.iter().zip(&yr) {
                                assert!(
                                    ulps(*u, *v as f64, 8.0) <= 2.0 * C_SCALED,
                                    "{}",
                                    what(&format!("{tag}; unmasked {yr:?}"), a)
                                );
                            }
                        }
                    }
                }
                // The whole row at the masking infinity: all 0; at the
                // dominant one: uniform 1/N.
                for inf in [f32::INFINITY, f32::NEG_INFINITY] {
                    let x = vec![inf; n];
                    let mut y = sentinel(n);
                    e.ops.softmax_scaled(&x, &mut y, a);
                    let want = if (inf > 0.0) == pos_dir {
                        share(n)
                    } else {
                        0.0
                    };
                    assert!(
                        y.iter().all(|&v| v == want),
                        "{}",
                        what(&format!("all {inf}: {y:?}, expected {want:e}"), a)
                    );
                }
            }
            // Finite extremes: x − pivot overflows; no NaN, no overflow, and
            // still within the bound of the reference.
            let ext: Vec<f32> = (0..n)
                .map(|i| match i % 4 {
                    0 => f32::MAX,
                    1 => -f32::MAX,
                    2 => 1.0,
                    _ => -3e38,
                })
                .collect();
            for a in [0.5f32, 1.0, 2.0, -0.5, -2.0, 1e-38, -1e-38] {
                let mut y = sentinel(n);
                e.ops.softmax_scaled(&ext, &mut y, a);
                // docs/ACCURACY.md: no intermediate overflows while `α(x − pivot)` is
                // finite, so the reference is the whole row's (`α·x` is exact
                // in f64), even where `x − pivot` overflows f32.
                let r = ref_scaled(&ext, a);
                let terms = scaled_terms(&ext, a, &r);
                for i in 0..n {
                    let b = C_SCALED + terms[i];
                    assert!(
                        y[i].is_finite() && ulps(y[i], r[i], b) <= b,
                        "{}",
                        what(
                            &format!("extremes {ext:?}: y[{i}] = {:e}, expected {:e}", y[i], r[i]),
                            a
                        )
                    );
                }
            }
        }
        // Empty rows are fine and write nothing.
        e.ops.softmax_scaled(&[], &mut [], 2.0);
        e.ops.softmax_scaled_rows(&[], &mut [], 3, 2.0);
    }
}

/// docs/ACCURACY.md: `C ≤ 4` at every row length. A row with one entry at the max and
/// many terms `e^(x_j − m)` just below half an ULP of 1 (`x_j − m = −16.7`,
/// `e^-16.7 ≈ 5.6e-8 < 2^-24`): in the blocked sum, the accumulator lane that
/// holds the max's `e^0 = 1` adds up to 15 more terms per block, and each of
/// them is rounded away, all in the same direction. The max entry is then
/// ~13 ULP high (bound 4), on every backend once a block holds 16 vectors
/// per accumulator lane (n ≥ 64 for scalar, 512 for AVX2, 1024 for AVX-512).
/// `softmax_scaled` inherits it (`α·x` with the same exponents), and so does
/// plain `softmax` (checked here too: it is the `α = 1` kernel).
#[test]
fn dominant_entry_with_sub_half_ulp_terms() {
    let mut bad = Vec::new();
    for e in engines() {
        for n in [64usize, 512, 1024, 4096] {
            for (alpha, scale) in [(1.0f32, 1.0f32), (2.0, 0.5), (0.5, 2.0), (-1.0, -1.0)] {
                let mut x = vec![-16.7 * scale; n];
                x[0] = 0.0;
                let r = ref_scaled(&x, alpha);
                let terms = scaled_terms(&x, alpha, &r);
                let mut y = sentinel(n);
                e.ops.softmax_scaled(&x, &mut y, alpha);
                let mut ys = sentinel(n);
                e.ops.softmax(&x, &mut ys);
                let rs = simd_softmax::reference::softmax(&x);
                let (err, errs) = (ulps(y[0], r[0], 0.0), ulps(ys[0], rs[0], 0.0));
                let what = format!("{} n={n}: x = [0.0, {:?} × {}]", e.name, x[1], n - 1);
                if err > C_SCALED + terms[0] {
                    bad.push(format!(
                        "{what}, softmax_scaled alpha={alpha}: y[0] = {:e}, expected {:e} \
                         ({err:.2} ulp > {:.2})",
                        y[0],
                        r[0],
                        C_SCALED + terms[0],
                    ));
                }
                if alpha == 1.0 && errs > C_SCALED {
                    bad.push(format!(
                        "{what}, softmax: y[0] = {:e}, expected {:e} ({errs:.2} ulp > 4)",
                        ys[0], rs[0]
                    ));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} cases out of bound:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Special values of the other functions
// ---------------------------------------------------------------------------

#[test]
fn sigmoid_special_values() {
    // (input, exact expected output); placed at every position of a
    // 37-long row (tails of every lane count) among ordinary values.
    let exact: [(f32, f32); 10] = [
        (f32::INFINITY, 1.0),
        (f32::NEG_INFINITY, 0.0),
        (0.0, 0.5),
        (-0.0, 0.5),
        (1e30, 1.0),
        (-1e30, 0.0),
        (f32::MAX, 1.0),
        (-f32::MAX, 0.0),
        (200.0, 1.0),
        (-200.0, 0.0),
    ];
    for e in engines() {
        let n = 37;
        for pos in [0, 1, 3, 4, 7, 8, 15, 16, 31, 32, 36] {
            for (z, want) in exact {
                let mut x: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 4.0).collect();
                x[pos] = z;
                let mut y = sentinel(n);
                e.ops.sigmoid(&x, &mut y);
                assert!(
                    y[pos] == want,
                    "{}: sigmoid({z:e}) at {pos} = {:e}, expected {want:e}",
                    e.name,
                    y[pos]
                );
                for i in (0..n).filter(|&i| i != pos) {
                    let r = simd_softmax::reference::logistic(x[i] as f64);
                    assert!(
                        ulps(y[i], r, C_SIGMOID) <= C_SIGMOID,
                        "{}: neighbour {i}",
                        e.name
                    );
                }
            }
            let mut x = vec![0.5f32; n];
            x[pos] = f32::NAN;
            x[(pos + 5) % n] = -f32::NAN;
            let mut y = sentinel(n);
            e.ops.sigmoid(&x, &mut y);
            assert!(
                y[pos].is_nan() && y[(pos + 5) % n].is_nan(),
                "{}: NaN in, NaN out",
                e.name
            );
            // The NaN does not spread: sigmoid is elementwise.
            assert_eq!(
                y.iter().filter(|v| v.is_nan()).count(),
                2,
                "{}: {y:?}",
                e.name
            );
        }
        // Stable for large |z|: outputs in [0, 1], never NaN, monotone.
        let big: Vec<f32> = [
            -1e30f32, -1e10, -100.0, -88.0, -87.0, 0.0, 87.0, 88.0, 100.0, 1e10, 1e30,
        ]
        .to_vec();
        let mut y = sentinel(big.len());
        e.ops.sigmoid(&big, &mut y);
        assert!(
            y.iter().all(|v| (0.0..=1.0).contains(v)),
            "{}: {y:?}",
            e.name
        );
        assert!(
            y.windows(2).all(|w| w[0] <= w[1]),
            "{}: not monotone {y:?}",
            e.name
        );
        e.ops.sigmoid(&[], &mut []);
    }
}

#[test]
fn backward_jacobian_special_values() {
    for e in engines() {
        // One-hot y: the gradient vanishes exactly (dot = dy_k, dx_k = 0).
        for n in [1usize, 2, 5, 16, 17, 40] {
            for k in [0, n / 2, n - 1] {
                let mut y = vec![0.0f32; n];
                y[k] = 1.0;
                let dy: Vec<f32> = (0..n).map(|i| i as f32 * 1.5 - 7.0).collect();
                let mut dx = sentinel(n);
                e.ops.softmax_backward(&y, &dy, &mut dx);
                assert!(
                    dx.iter().all(|&v| v == 0.0),
                    "{} one-hot backward: {dx:?}",
                    e.name
                );
                // Zero gradient in, zero gradient out.
                let mut dx = sentinel(n);
                e.ops.softmax_backward(&y, &vec![0.0; n], &mut dx);
                assert!(dx.iter().all(|&v| v == 0.0), "{}: {dx:?}", e.name);
                // The Jacobian at a vertex of the simplex is 0.
                let mut j = sentinel(n * n);
                e.ops.jacobian(&y, &mut j);
                assert!(
                    j.iter().all(|&v| v == 0.0),
                    "{} jacobian at one-hot: {j:?}",
                    e.name
                );
            }
        }
        let mut j = sentinel(4);
        e.ops.jacobian(&[0.5, 0.5], &mut j);
        assert_eq!(j, [0.25, -0.25, -0.25, 0.25], "{}", e.name);
        let mut j = sentinel(1);
        e.ops.jacobian(&[1.0], &mut j);
        assert_eq!(j, [0.0], "{}", e.name);
        e.ops.jacobian(&[], &mut []);
        e.ops.softmax_backward(&[], &[], &mut []);
        // NaN in y or dy: NaN out where it reaches (every entry through the dot).
        let mut dx = sentinel(3);
        e.ops
            .softmax_backward(&[0.2, 0.3, 0.5], &[1.0, f32::NAN, 0.0], &mut dx);
        assert!(is_nan_row(&dx), "{}: {dx:?}", e.name);
    }
}

#[test]
fn logits_special_values() {
    for e in engines() {
        for n in [2usize, 3, 5, 16, 17, 37] {
            // Zeros (and −0) give exactly −∞ with a Component anchor elsewhere.
            let mut p: Vec<f32> = (0..n).map(|i| 1.0 / (i + 2) as f32).collect();
            let zeros = [n - 1, n / 2];
            p[zeros[0]] = 0.0;
            p[zeros[1]] = -0.0;
            let k = (n / 2 + 1) % n;
            let k = if zeros.contains(&k) { 0 } else { k };
            let mut out = sentinel(n);
            e.ops.logits_from_probs(&p, &mut out, Anchor::Component(k));
            for i in 0..n {
                if zeros.contains(&i) {
                    assert_eq!(out[i], f32::NEG_INFINITY, "{} p={p:?} out={out:?}", e.name);
                } else {
                    assert!(out[i].is_finite(), "{} p={p:?} out={out:?}", e.name);
                }
            }
            assert_eq!(
                out[k], 0.0,
                "{}: anchored component must be exactly 0",
                e.name
            );
            // Extremes: subnormal, f32::MAX (weights need not sum to 1).
            let q: Vec<f32> = (0..n)
                .map(|i| match i % 3 {
                    0 => f32::from_bits(1),
                    1 => f32::MAX,
                    _ => 0.25,
                })
                .collect();
            for anchor in [Anchor::ZeroMean, Anchor::Component(n - 1)] {
                let mut out = sentinel(n);
                e.ops.logits_from_probs(&q, &mut out, anchor);
                let c = ref_anchor(&q, anchor);
                let mean_abs = q.iter().map(|&v| (v as f64).ln().abs()).sum::<f64>() / n as f64;
                for i in 0..n {
                    let l = (q[i] as f64).ln();
                    let r = l + c;
                    let unit = ulp_f32(l.abs() + c.abs().max(mean_abs));
                    assert!(
                        (out[i] as f64 - r).abs() <= K_LOGITS_ZERO_MEAN * unit,
                        "{} {anchor:?} q={q:?}: out[{i}] = {:e}, expected {r:e}",
                        e.name,
                        out[i]
                    );
                }
            }
        }
        // Empty input with ZeroMean: nothing to do.
        e.ops.logits_from_probs(&[], &mut [], Anchor::ZeroMean);
    }
}

#[test]
fn combination_special_values() {
    for e in engines() {
        for n in [1usize, 3, 8, 17, 40] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.3).collect();
            // A NaN in any term makes the row NaN.
            for t in 0..2 {
                let mut bn = b.clone();
                bn[n / 2] = f32::NAN;
                let terms: [(f32, &[f32]); 2] = if t == 0 {
                    [(1.0, &bn), (2.0, &a)]
                } else {
                    [(1.0, &a), (-0.5, &bn)]
                };
                let mut y = sentinel(n);
                e.ops.softmax_of_combination(&terms, &mut y);
                assert!(is_nan_row(&y), "{}: NaN term {t}: {y:?}", e.name);
            }
            // A −∞ mask in one term: exactly 0 there.
            let mut masked = a.clone();
            masked[0] = f32::NEG_INFINITY;
            let mut y = sentinel(n);
            e.ops
                .softmax_of_combination(&[(1.0, &masked), (0.5, &b)], &mut y);
            if n == 1 {
                assert_eq!(y, [0.0], "{}: fully masked", e.name);
            } else {
                assert_eq!(y[0], 0.0, "{}: masked entry {y:?}", e.name);
                let s: f64 = y.iter().map(|&v| v as f64).sum();
                assert!((s - 1.0).abs() < 1e-5, "{}: {y:?}", e.name);
            }
            // No terms: uniform.
            let mut y = sentinel(n);
            e.ops.softmax_of_combination(&[], &mut y);
            assert!(
                y.iter().all(|&v| v == share(n)),
                "{}: no terms {y:?}",
                e.name
            );
        }
        e.ops.softmax_of_combination(&[], &mut []);
        e.ops.softmax_of_combination(&[(1.0, &[])], &mut []);
    }
}

// ---------------------------------------------------------------------------
// Refused calls: typed errors, output byte-for-byte untouched
// ---------------------------------------------------------------------------

/// Asserts the call was refused with `want` and wrote nothing to `out`.
fn refused(what: &str, got: Result<(), Error>, want: Error, out: &[f32]) {
    assert_eq!(got, Err(want), "{what}");
    assert!(
        untouched(out),
        "{what}: a refused call wrote to its output: {:x?}",
        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Every error displays as a sentence.
    assert!(!got.unwrap_err().to_string().is_empty());
}

#[test]
fn refused_calls_leave_output_untouched() {
    let nans = [f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001)];
    for (b, sm) in backends() {
        let w = |s: &str| format!("{b}: {s}");
        let x = [1.0f32, 2.0, 3.0];

        // softmax_scaled / softmax_scaled_rows
        let mut out = sentinel(2);
        refused(
            &w("scaled length"),
            sm.softmax_scaled(&x, &mut out, 1.0),
            Error::LengthMismatch {
                input: 3,
                output: 2,
            },
            &out,
        );
        for a in nans {
            let mut out = sentinel(3);
            refused(
                &w("scaled NaN alpha"),
                sm.softmax_scaled(&x, &mut out, a),
                Error::NanAlpha,
                &out,
            );
            let mut out = sentinel(0);
            refused(
                &w("scaled NaN alpha, empty row"),
                sm.softmax_scaled(&[], &mut out, a),
                Error::NanAlpha,
                &out,
            );
            let mut out = sentinel(4);
            refused(
                &w("scaled_rows NaN alpha"),
                sm.softmax_scaled_rows(&[0.0; 4], &mut out, 2, a),
                Error::NanAlpha,
                &out,
            );
        }
        let mut out = sentinel(4);
        refused(
            &w("scaled_rows length"),
            sm.softmax_scaled_rows(&x, &mut out, 1, 1.0),
            Error::LengthMismatch {
                input: 3,
                output: 4,
            },
            &out,
        );
        for row_len in [0usize, 2, 4] {
            let mut out = sentinel(3);
            refused(
                &w("scaled_rows row_len"),
                sm.softmax_scaled_rows(&x, &mut out, row_len, 1.0),
                Error::InvalidRowLen { len: 3, row_len },
                &out,
            );
        }

        // softmax_backward: each of the three lengths differing
        for (ny, ndy, ndx) in [(3, 2, 3), (3, 3, 2), (2, 3, 3), (0, 0, 1)] {
            let (y, dy) = (vec![0.5f32; ny], vec![1.0f32; ndy]);
            let mut dx = sentinel(ndx);
            refused(
                &w("backward length"),
                sm.softmax_backward(&y, &dy, &mut dx),
                Error::GradientLength {
                    y: ny,
                    dy: ndy,
                    dx: ndx,
                },
                &dx,
            );
        }

        // jacobian: N·N, too short, too long, empty y with an output
        for (n, len) in [
            (3usize, 8usize),
            (3, 10),
            (3, 3),
            (3, 0),
            (0, 1),
            (1, 0),
            (17, 288),
        ] {
            let y = vec![1.0 / n.max(1) as f32; n];
            let mut out = sentinel(len);
            refused(
                &w("jacobian size"),
                sm.jacobian(&y, &mut out),
                Error::JacobianSize {
                    n,
                    expected: Some(n * n),
                    output: len,
                },
                &out,
            );
        }

        // logits_from_probs
        let mut out = sentinel(2);
        refused(
            &w("logits length"),
            sm.logits_from_probs(&[0.5; 3], &mut out, Anchor::ZeroMean),
            Error::LengthMismatch {
                input: 3,
                output: 2,
            },
            &out,
        );
        for n in [1usize, 3, 4, 8, 16, 17, 37] {
            for pos in [0, n / 2, n.saturating_sub(1)] {
                for bad in [
                    -1e-30f32,
                    -1.0,
                    f32::NEG_INFINITY,
                    f32::INFINITY,
                    f32::NAN,
                    -f32::NAN,
                    -f32::from_bits(1),
                ] {
                    for anchor in [Anchor::ZeroMean, Anchor::Component(0)] {
                        let mut p = vec![1.0 / n as f32; n];
                        p[pos] = bad;
                        // A second invalid entry later: the first is reported.
                        if pos + 2 < n {
                            p[pos + 2] = -2.0;
                        }
                        let mut out = sentinel(n);
                        refused(
                            &w(&format!(
                                "logits invalid {bad:e} at {pos} of {n}, {anchor:?}"
                            )),
                            sm.logits_from_probs(&p, &mut out, anchor),
                            Error::InvalidProbability { index: pos },
                            &out,
                        );
                    }
                }
                // ZeroMean with a zero (±0): the first zero is reported.
                for z in [0.0f32, -0.0] {
                    let mut p = vec![0.5f32; n];
                    p[pos] = z;
                    if pos + 1 < n {
                        p[pos + 1] = 0.0;
                    }
                    let mut out = sentinel(n);
                    refused(
                        &w(&format!("logits ZeroMean zero at {pos} of {n}")),
                        sm.logits_from_probs(&p, &mut out, Anchor::ZeroMean),
                        Error::ZeroProbability { index: pos },
                        &out,
                    );
                    // The anchored entry itself is zero.
                    let mut out = sentinel(n);
                    refused(
                        &w(&format!("logits Component({pos}) zero")),
                        sm.logits_from_probs(&p, &mut out, Anchor::Component(pos)),
                        Error::ZeroProbability { index: pos },
                        &out,
                    );
                }
            }
            for k in [n, n + 1, usize::MAX] {
                let mut out = sentinel(n);
                refused(
                    &w("logits anchor out of range"),
                    sm.logits_from_probs(&vec![0.5; n], &mut out, Anchor::Component(k)),
                    Error::AnchorOutOfRange { index: k, len: n },
                    &out,
                );
            }
        }
        let mut out = sentinel(0);
        refused(
            &w("logits Component(0) of nothing"),
            sm.logits_from_probs(&[], &mut out, Anchor::Component(0)),
            Error::AnchorOutOfRange { index: 0, len: 0 },
            &out,
        );

        // softmax_of_combination
        let (a, short) = ([1.0f32, 2.0, 3.0], [1.0f32, 2.0]);
        let mut out = sentinel(3);
        refused(
            &w("combination term length"),
            sm.softmax_of_combination(&[(1.0, &a), (0.5, &short)], &mut out),
            Error::TermLength {
                term: 1,
                len: 2,
                expected: 3,
            },
            &out,
        );
        let mut out = sentinel(2);
        refused(
            &w("combination term 0 length"),
            sm.softmax_of_combination(&[(1.0, &a)], &mut out),
            Error::TermLength {
                term: 0,
                len: 3,
                expected: 2,
            },
            &out,
        );
        for nan in nans {
            for t in 0..2 {
                let mut terms: [(f32, &[f32]); 2] = [(1.0, &a), (2.0, &a)];
                terms[t].0 = nan;
                let mut out = sentinel(3);
                refused(
                    &w(&format!("combination NaN weight in term {t}")),
                    sm.softmax_of_combination(&terms, &mut out),
                    Error::NanAlpha,
                    &out,
                );
            }
        }

        // sigmoid
        let mut out = sentinel(4);
        refused(
            &w("sigmoid length"),
            sm.sigmoid(&x, &mut out),
            Error::LengthMismatch {
                input: 3,
                output: 4,
            },
            &out,
        );
    }

    // The free functions check the same way.
    let mut out = sentinel(3);
    refused(
        "free softmax_scaled",
        simd_softmax::softmax_scaled(&[1.0, 2.0, 3.0], &mut out, f32::NAN),
        Error::NanAlpha,
        &out,
    );
    refused(
        "free jacobian",
        simd_softmax::jacobian(&[0.5, 0.5], &mut out),
        Error::JacobianSize {
            n: 2,
            expected: Some(4),
            output: 3,
        },
        &out,
    );
    refused(
        "free logits_from_probs",
        simd_softmax::logits_from_probs(&[0.5, 0.0, 0.5], &mut out, Anchor::ZeroMean),
        Error::ZeroProbability { index: 1 },
        &out,
    );
}

/// `jacobian` with `N·N` overflowing `usize`: `expected: None`. The `y` of
/// `2^32 + 1` floats (on 64-bit; `2^16 + 1` on 32-bit) is a zeroed
/// allocation, which the system maps lazily: the check runs before any
/// read, so no page is touched. If the allocator refuses (no overcommit),
/// the test says so and checks the small cases only.
#[test]
fn jacobian_size_overflow() {
    let n = (1usize << (usize::BITS / 2)) + 1;
    assert!(n.checked_mul(n).is_none());
    let layout = std::alloc::Layout::array::<f32>(n).expect("layout");
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f32>();
    if ptr.is_null() {
        println!("jacobian overflow branch: skipped, could not map {n} zeroed floats");
        return;
    }
    // SAFETY: `ptr` is a live allocation of `n` zero-initialized f32s.
    let y = unsafe { std::slice::from_raw_parts(ptr, n) };
    for (b, sm) in backends() {
        for len in [0usize, 4] {
            let mut out = sentinel(len);
            refused(
                &format!("{b}: jacobian overflow"),
                sm.jacobian(y, &mut out),
                Error::JacobianSize {
                    n,
                    expected: None,
                    output: len,
                },
                &out,
            );
        }
    }
    let mut out = sentinel(1);
    let err = simd_softmax::jacobian(y, &mut out).unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
    assert!(untouched(&out));
    // SAFETY: allocated above with this layout; `y` is not used past here.
    unsafe { std::alloc::dealloc(ptr.cast(), layout) };
}

/// An unsupported backend is an error (never a fallback), with the reason
/// `unavailable_reason` gives.
#[test]
fn unsupported_backends_are_errors() {
    for &b in Backend::ALL {
        match (Softmax::with_backend(b), b.unavailable_reason()) {
            (Ok(sm), None) => assert_eq!(sm.backend(), b),
            (Err(Error::UnsupportedBackend { backend, reason }), Some(why)) => {
                assert_eq!((backend, reason), (b, why));
                println!("{}: skipped, {why}", b.name());
            }
            (got, why) => panic!("{b}: with_backend gave {got:?}, unavailable_reason {why:?}"),
        }
    }
}

/// The free functions are the `Softmax::new()` methods, bit for bit.
#[test]
fn free_functions_match_default_engine() {
    let sm = Softmax::new();
    let mut g = rng(0xf2ee);
    for n in [1usize, 7, 16, 33, 1000] {
        let x = uniform(&mut g, n, -8.0, 8.0);
        let x2 = uniform(&mut g, n, -8.0, 8.0);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let (mut a, mut b) = (sentinel(n), sentinel(n));

        simd_softmax::softmax_scaled(&x, &mut a, 0.7).unwrap();
        sm.softmax_scaled(&x, &mut b, 0.7).unwrap();
        assert_eq!(bits(&a), bits(&b), "softmax_scaled n={n}");

        simd_softmax::softmax_scaled_rows(&x, &mut a, 1, -2.0).unwrap();
        sm.softmax_scaled_rows(&x, &mut b, 1, -2.0).unwrap();
        assert_eq!(bits(&a), bits(&b), "softmax_scaled_rows n={n}");

        let mut y = sentinel(n);
        sm.softmax(&x, &mut y).unwrap();
        simd_softmax::softmax_backward(&y, &x2, &mut a).unwrap();
        sm.softmax_backward(&y, &x2, &mut b).unwrap();
        assert_eq!(bits(&a), bits(&b), "softmax_backward n={n}");

        simd_softmax::logits_from_probs(&y, &mut a, Anchor::ZeroMean).unwrap();
        sm.logits_from_probs(&y, &mut b, Anchor::ZeroMean).unwrap();
        assert_eq!(bits(&a), bits(&b), "logits_from_probs n={n}");

        let terms: [(f32, &[f32]); 2] = [(0.5, &x), (-1.5, &x2)];
        simd_softmax::softmax_of_combination(&terms, &mut a).unwrap();
        sm.softmax_of_combination(&terms, &mut b).unwrap();
        assert_eq!(bits(&a), bits(&b), "softmax_of_combination n={n}");

        simd_softmax::sigmoid(&x, &mut a).unwrap();
        sm.sigmoid(&x, &mut b).unwrap();
        assert_eq!(bits(&a), bits(&b), "sigmoid n={n}");

        if n <= 33 {
            let (mut ja, mut jb) = (sentinel(n * n), sentinel(n * n));
            simd_softmax::jacobian(&y, &mut ja).unwrap();
            sm.jacobian(&y, &mut jb).unwrap();
            assert_eq!(bits(&ja), bits(&jb), "jacobian n={n}");
        }
    }
}
