//! The f64 reference is the oracle of every differential test, so it is
//! tested on its own: hand-computed cases (2-element rows against the
//! logistic function), identities of ln Σ e^x, shift invariance, and the
//! row classes.

use simd_softmax::reference::{log_softmax, logistic, logsumexp, softmax};

/// `|a − b| ≤ tol·max(|b|, tiny)`.
fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * b.abs().max(1e-300)
}

/// `|a − b| ≤ tol·|b| + 4·2^-53`: for values computed through `ln Σ` with
/// `Σ ≥ 1`, whose f64 rounding leaves an absolute error of about 2^-53
/// that is large relative to a tiny result (identity tests; the f32
/// fitness of the reference is `log_softmax_is_accurate_to_f32_ulps`).
#[track_caller]
fn assert_close_abs(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs() + 4.0 * f64::EPSILON / 2.0,
        "{what}: {a:e} vs {b:e}"
    );
}

#[track_caller]
fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        close(a, b, tol),
        "{what}: {a:e} vs {b:e} (rel {:e})",
        ((a - b) / b).abs()
    );
}

#[test]
fn logistic_hand_values() {
    assert_eq!(logistic(0.0), 0.5);
    // 1 / (1 + e^-1), e = 2.718281828459045
    assert_close(logistic(1.0), 0.731_058_578_630_004_9, 1e-15, "logistic(1)");
    assert_close(
        logistic(-1.0),
        0.268_941_421_369_995_1,
        1e-15,
        "logistic(-1)",
    );
    // ln 3: 3 / (3 + 1)
    assert_close(logistic(3f64.ln()), 0.75, 1e-15, "logistic(ln 3)");
    // e^-40 / (1 + e^-40) = 4.248354255291589e-18 (relative accuracy kept for large |z|)
    assert_close(
        logistic(-40.0),
        4.248_354_255_291_589e-18,
        1e-13,
        "logistic(-40)",
    );
    assert_eq!(logistic(800.0), 1.0);
    assert_eq!(logistic(-800.0), 0.0);
    for z in [-30.0, -5.5, -0.25, 0.125, 2.0, 17.0] {
        assert_close(
            logistic(z) + logistic(-z),
            1.0,
            1e-15,
            "logistic(z) + logistic(-z)",
        );
        assert_close(
            logistic(z),
            1.0 / (1.0 + (-z).exp()),
            1e-14,
            "logistic vs 1/(1+e^-z)",
        );
    }
}

/// `softmax([z1, z2]) = [σ(z1 − z2), σ(z2 − z1)]`, `log_softmax` their logs,
/// `logsumexp = max + ln(1 + e^{−|z1−z2|})`.
#[test]
fn two_element_rows_are_the_logistic_function() {
    assert_eq!(softmax(&[0.0, 0.0]), vec![0.5, 0.5]);
    assert_eq!(softmax(&[-7.0, -7.0]), vec![0.5, 0.5]);
    let pairs: [(f32, f32); 9] = [
        (1.0, 0.0),
        (0.0, 1.0),
        (3.5, -2.25),
        (-10.0, 10.0),
        (100.0, 99.0),
        (1e-3, -1e-3),
        (30.0, 0.0),
        (-80.0, 0.0),
        (88.0, -88.0),
    ];
    for (z1, z2) in pairs {
        let d = z1 as f64 - z2 as f64;
        let s = softmax(&[z1, z2]);
        assert_close(
            s[0],
            logistic(d),
            1e-15,
            &format!("softmax([{z1}, {z2}])[0]"),
        );
        assert_close(
            s[1],
            logistic(-d),
            1e-15,
            &format!("softmax([{z1}, {z2}])[1]"),
        );
        // By hand: e^{z1} / (e^{z1} + e^{z2}) = 1 / (1 + e^{z2 − z1})
        assert_close(s[0], 1.0 / (1.0 + (-d).exp()), 1e-14, "by hand");
        let l = log_softmax(&[z1, z2]);
        assert_close_abs(l[0], logistic(d).ln(), 1e-13, "log_softmax[0] = ln σ(d)");
        assert_close_abs(l[1], logistic(-d).ln(), 1e-13, "log_softmax[1] = ln σ(-d)");
        let m = (z1.max(z2)) as f64;
        assert_close_abs(
            logsumexp(&[z1, z2]),
            m + (-(d.abs())).exp().ln_1p(),
            1e-15,
            "logsumexp pair",
        );
    }
}

#[test]
fn hand_computed_rows() {
    assert_eq!(softmax(&[0.0; 4]), vec![0.25; 4]);
    assert_eq!(softmax(&[5.0]), vec![1.0]);
    assert_eq!(log_softmax(&[5.0]), vec![0.0]);
    assert_eq!(logsumexp(&[5.0]), 5.0);
    let e = std::f64::consts::E;
    // [1, 0, -1]: e, 1, 1/e over (e + 1 + 1/e)
    let s = softmax(&[1.0, 0.0, -1.0]);
    let z = e + 1.0 + 1.0 / e;
    for (got, want) in s.iter().zip([e / z, 1.0 / z, 1.0 / e / z]) {
        assert_close(*got, want, 1e-15, "softmax([1,0,-1])");
    }
    assert_close(
        logsumexp(&[1.0, 0.0, -1.0]),
        z.ln(),
        1e-15,
        "logsumexp([1,0,-1])",
    );
    // n equal entries a: logsumexp = a + ln n, log_softmax = −ln n
    for n in [1usize, 2, 3, 10, 1000] {
        let x = vec![2.5f32; n];
        assert_close(logsumexp(&x), 2.5 + (n as f64).ln(), 1e-15, "a + ln n");
        for v in log_softmax(&x) {
            assert_close(v, -(n as f64).ln(), 1e-15, "-ln n");
        }
    }
}

/// ln-sum identities: `logsumexp(x) = ln Σ e^x` (direct, where it does not
/// overflow), `log_softmax_i = x_i − logsumexp(x)`, and
/// `logsumexp(x ∪ y) = ln(e^{lse x} + e^{lse y})`.
#[test]
fn ln_sum_identities() {
    let x: Vec<f32> = (0..50)
        .map(|i| ((i * 37) % 23) as f32 * 0.5 - 5.0)
        .collect();
    let y: Vec<f32> = (0..31).map(|i| ((i * 11) % 7) as f32 - 2.0).collect();
    let direct = x.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
    assert_close(logsumexp(&x), direct, 1e-15, "logsumexp vs direct ln Σ e^x");
    let lse = logsumexp(&x);
    for (v, l) in x.iter().zip(log_softmax(&x)) {
        assert_close(l, *v as f64 - lse, 1e-14, "x_i - lse");
    }
    let xy: Vec<f32> = x.iter().chain(&y).copied().collect();
    let (a, b) = (logsumexp(&x), logsumexp(&y));
    assert_close(
        logsumexp(&xy),
        (a.exp() + b.exp()).ln(),
        1e-15,
        "lse of a union",
    );
    // Σ softmax = 1, and e^{log_softmax} = softmax
    assert_close(softmax(&x).iter().sum(), 1.0, 1e-15, "Σ softmax");
    for (s, l) in softmax(&x).iter().zip(log_softmax(&x)) {
        assert_close(l.exp(), *s, 1e-14, "e^log_softmax = softmax");
    }
}

/// `log_softmax == ln(softmax)` on moderate inputs (no underflow).
#[test]
fn log_softmax_is_ln_softmax() {
    for (k, n) in [2usize, 7, 64, 1000].into_iter().enumerate() {
        let x: Vec<f32> = (0..n)
            .map(|i| (((i * 7919 + k * 13) % 2001) as f32 - 1000.0) / 100.0)
            .collect();
        for (l, s) in log_softmax(&x).iter().zip(softmax(&x)) {
            assert_close_abs(*l, s.ln(), 1e-13, &format!("n={n}"));
        }
    }
}

/// Shift invariance in f64: `softmax(x + c) = softmax(x)` and
/// `logsumexp(x + c) = logsumexp(x) + c`, with `c` chosen so `x + c` is
/// exact in f32 (small dyadic values plus a power of two).
#[test]
fn shift_invariance() {
    let x: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) * 0.25).collect();
    for c in [1.0f32, 64.0, -128.0, 1024.0] {
        let xc: Vec<f32> = x.iter().map(|&v| v + c).collect();
        assert!(
            x.iter().zip(&xc).all(|(&a, &b)| (b - c) == a),
            "shift not exact"
        );
        for (a, b) in softmax(&x).iter().zip(softmax(&xc)) {
            assert_close(b, *a, 1e-14, &format!("softmax(x + {c})"));
        }
        assert_close(
            logsumexp(&xc),
            logsumexp(&x) + c as f64,
            1e-15,
            "lse(x + c)",
        );
        for (a, b) in log_softmax(&x).iter().zip(log_softmax(&xc)) {
            assert_close(b, *a, 1e-13, "log_softmax(x + c)");
        }
    }
    // Stable where the naive formula overflows: shift by 3e38.
    let big: Vec<f32> = [0.0f32, -1.0, -2.0].iter().map(|v| v + 3e38).collect();
    let s = softmax(&big);
    assert!(s.iter().all(|v| v.is_finite()) && close(s.iter().sum(), 1.0, 1e-15));
}

/// The row classes, in the reference itself.
#[test]
fn special_classes() {
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let ninf = f32::NEG_INFINITY;
    assert!(softmax(&[1.0, nan, inf]).iter().all(|v| v.is_nan()));
    assert!(log_softmax(&[1.0, nan]).iter().all(|v| v.is_nan()));
    assert!(logsumexp(&[nan, ninf]).is_nan());
    assert_eq!(softmax(&[inf, 1.0, inf, ninf]), vec![0.5, 0.0, 0.5, 0.0]);
    assert_eq!(softmax(&[1.0, inf, 3e38]), vec![0.0, 1.0, 0.0]);
    let l = log_softmax(&[inf, 1.0, inf]);
    assert_eq!(l[1], f64::NEG_INFINITY);
    assert_close(l[0], -std::f64::consts::LN_2, 1e-16, "-ln 2");
    assert_eq!(logsumexp(&[inf, 0.0]), f64::INFINITY);
    assert_eq!(softmax(&[ninf; 3]), vec![0.0; 3]);
    assert_eq!(log_softmax(&[ninf; 3]), vec![f64::NEG_INFINITY; 3]);
    assert_eq!(logsumexp(&[ninf; 3]), f64::NEG_INFINITY);
    assert_eq!(softmax(&[ninf, 0.0, ninf]), vec![0.0, 1.0, 0.0]);
    assert_eq!(log_softmax(&[ninf, 0.0]), vec![f64::NEG_INFINITY, 0.0]);
    assert!(softmax(&[]).is_empty() && log_softmax(&[]).is_empty());
    assert_eq!(logsumexp(&[]), f64::NEG_INFINITY);
    // Finite extremes: x − m = −6.8e38 is finite in f64, its exp is 0.
    assert_eq!(softmax(&[3.4e38, -3.4e38]), vec![1.0, 0.0]);
    assert_close(
        logsumexp(&[f32::MAX, f32::MAX]),
        f32::MAX as f64 + std::f64::consts::LN_2,
        1e-16,
        "lse(MAX, MAX)",
    );
}

/// The reference sums to 1 at 2^20 elements (it is the yardstick of the
/// long-row tests).
#[test]
fn long_rows_sum_to_one() {
    let n = 1 << 20;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i as u64 * 2_654_435_761 % 20_001) as f32 - 10_000.0) / 1000.0)
        .collect();
    let s: f64 = softmax(&x).iter().sum();
    assert!((s - 1.0).abs() < 1e-12, "Σ = {s}");
    let direct = x.iter().map(|&v| (v as f64).exp()).sum::<f64>().ln();
    // The direct f64 sum of 2^20 terms carries up to ~2^20·2^-53 relative error.
    assert_close(logsumexp(&x), direct, 1e-10, "lse at 2^20");
}

/// The reference must be accurate to a small fraction of an f32 ULP of its
/// own result, or it cannot judge a 4-ULP bound. Log-softmax of a row's max
/// entry is `−ln Σ` with `Σ = 1 + ε` (ε the other terms): `ln` of the f64
/// sum loses about 2^-53 absolute, which is thousands of f32 ULPs once
/// `ε < 1e-9`. Computed as `−log1p(ε)` it is exact to f64 precision.
#[test]
fn log_softmax_is_accurate_to_f32_ulps() {
    fn ulp_f32(r: f64) -> f64 {
        let a = (r as f32).abs();
        if a < f32::MIN_POSITIVE {
            2f64.powi(-149)
        } else {
            2f64.powi((a.to_bits() >> 23) as i32 - 127 - 23)
        }
    }
    let mut failures = Vec::new();
    for x in [
        vec![0.0f32, -16.0],
        vec![5.0, -3.0],
        vec![0.0, -30.0],
        vec![30.0, 0.0, -1.0],
        vec![0.0, -50.0, -60.0],
    ] {
        // Exact to f64 precision: the max is unique, ε = Σ_{j≠max} e^{x_j − m}.
        let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let eps: f64 = x
            .iter()
            .map(|&v| v as f64 - m)
            .filter(|&d| d < 0.0)
            .map(f64::exp)
            .sum();
        let ln_sum = eps.ln_1p();
        for (i, (&v, got)) in x.iter().zip(log_softmax(&x)).enumerate() {
            let want = (v as f64 - m) - ln_sum;
            let err = (got - want).abs() / ulp_f32(want);
            if err > 0.25 {
                failures.push(format!("reference::log_softmax({x:?})[{i}] = {got:e}, exact {want:e}: {err:.1} f32 ULPs off"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the reference is too coarse to judge f32 ULPs:\n{}",
        failures.join("\n")
    );
}
