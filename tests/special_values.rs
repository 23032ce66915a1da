//! The special values, exactly, on every engine: NaN rows, `+∞` limits,
//! fully and partially masked rows, finite extremes, subnormal inputs (also
//! under FTZ/DAZ on x86-64), and the same class of result on every engine.

mod common;

use common::*;
use simd_softmax::reference;

/// All outputs of one engine for one row: softmax and log-softmax, out of
/// place and in place, and logsumexp.
struct Outputs {
    sm: Vec<f32>,
    sm_ip: Vec<f32>,
    lsm: Vec<f32>,
    lsm_ip: Vec<f32>,
    lse: f32,
}

fn outputs(e: &Engine, x: &[f32]) -> Outputs {
    let n = x.len();
    let poison = f32::from_bits(POISON_BITS);
    let mut sm = vec![poison; n];
    e.ops.softmax(x, &mut sm);
    let mut sm_ip = x.to_vec();
    e.ops.softmax_in_place(&mut sm_ip);
    let mut lsm = vec![poison; n];
    e.ops.log_softmax(x, &mut lsm);
    let mut lsm_ip = x.to_vec();
    e.ops.log_softmax_in_place(&mut lsm_ip);
    Outputs {
        sm,
        sm_ip,
        lsm,
        lsm_ip,
        lse: e.ops.logsumexp(x),
    }
}

/// Asserts `got[i] == want(i)` (NaN matches NaN; ±0 match each other).
fn expect(e: &Engine, what: &str, x: &[f32], got: &[f32], want: impl Fn(usize) -> f32) {
    for (i, &g) in got.iter().enumerate() {
        let w = want(i);
        let same = if w.is_nan() { g.is_nan() } else { g == w };
        assert!(
            same,
            "{} {what}: x = {x:?}\n  y[{i}] = {g:e} (bits {:#010x}), want {w:e}\n  y = {got:?}",
            e.name,
            g.to_bits()
        );
    }
}

/// A NaN anywhere (every position, every length 1..=40 and a few long
/// rows, beside +∞, −∞ and extremes, with any payload) makes every output
/// of the row NaN, and logsumexp NaN.
#[test]
fn nan_anywhere_makes_the_row_nan() {
    let roster = Roster::all();
    roster.announce("nan_anywhere_makes_the_row_nan");
    let nans = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001),
        f32::from_bits(0xFFC0_0ABC),
    ];
    let mut cases: Vec<Vec<f32>> = Vec::new();
    for n in (1..=40).chain([100, 1000, 4097]) {
        let positions: Vec<usize> = if n <= 40 {
            (0..n).collect()
        } else {
            vec![0, n / 2, n - 17, n - 1]
        };
        for &p in &positions {
            let mut x = gen_row(Family::Uniform, n, p as u64);
            x[p] = nans[p % nans.len()];
            cases.push(x.clone());
            if n > 1 {
                // beside a +∞ (which would otherwise take all the mass) ...
                let mut y = x.clone();
                y[(p + 1) % n] = f32::INFINITY;
                cases.push(y);
                // ... in an otherwise fully masked row ...
                let mut z = vec![f32::NEG_INFINITY; n];
                z[p] = x[p];
                cases.push(z);
                // ... and beside finite extremes.
                let mut w = x.clone();
                w[(p + 1) % n] = f32::MAX;
                w[(p + n - 1) % n] = f32::MIN;
                w[p] = x[p];
                cases.push(w);
            }
        }
    }
    for e in &roster.ran {
        for x in &cases {
            let o = outputs(e, x);
            for (what, y) in [
                ("softmax", &o.sm),
                ("softmax_in_place", &o.sm_ip),
                ("log_softmax", &o.lsm),
                ("log_softmax_in_place", &o.lsm_ip),
            ] {
                assert!(
                    y.iter().all(|v| v.is_nan()),
                    "{} {what} of a row with NaN (n={}): {y:?}",
                    e.name,
                    x.len()
                );
            }
            assert!(
                o.lse.is_nan(),
                "{} logsumexp of a row with NaN (n={}) = {}",
                e.name,
                x.len(),
                o.lse
            );
        }
    }
}

/// `+∞` entries take the limit: the k of them get `1/k` (log `−ln k`),
/// every other entry exactly 0 (log −∞), logsumexp `+∞`.
#[test]
fn pos_inf_entries_share_the_mass() {
    let roster = Roster::all();
    roster.announce("pos_inf_entries_share_the_mass");
    for e in &roster.ran {
        for n in (1..=40).chain([255, 4096]) {
            for k in [1, 2, 3, n].into_iter().filter(|&k| k <= n) {
                let mut x = gen_row(Family::Extremes, n, (n * 7 + k) as u64);
                if n > 3 {
                    x[1] = f32::NEG_INFINITY;
                }
                // k +∞ entries, spread so they land in body and tail lanes.
                let pos: Vec<usize> = (0..k).map(|j| (j * 37 + n / 2) % n).collect();
                let mut pos = pos;
                pos.sort_unstable();
                pos.dedup();
                let mut j = 0;
                while pos.len() < k {
                    if !pos.contains(&j) {
                        pos.push(j);
                    }
                    j += 1;
                }
                for &p in &pos {
                    x[p] = f32::INFINITY;
                }
                let o = outputs(e, &x);
                let share = (1.0 / k as f64) as f32;
                let lshare = -(k as f64).ln();
                let is_inf = |i: usize| x[i] == f32::INFINITY;
                for (what, y) in [("softmax", &o.sm), ("softmax_in_place", &o.sm_ip)] {
                    for (i, &v) in y.iter().enumerate() {
                        if is_inf(i) {
                            assert!(
                                ulp_err(v, 1.0 / k as f64) <= C_ULPS,
                                "{} {what} n={n} k={k}: y[{i}] = {v}, want {share}",
                                e.name
                            );
                        } else {
                            assert_eq!(
                                v, 0.0,
                                "{} {what} n={n} k={k}: y[{i}] (x = {}) = {v}, want 0",
                                e.name, x[i]
                            );
                        }
                    }
                }
                for (what, y) in [("log_softmax", &o.lsm), ("log_softmax_in_place", &o.lsm_ip)] {
                    for (i, &v) in y.iter().enumerate() {
                        if is_inf(i) {
                            assert!(
                                (v as f64 - lshare).abs() <= C_ULPS * ulp_f32(lshare),
                                "{} {what} n={n} k={k}: y[{i}] = {v}, want -ln k = {lshare}",
                                e.name
                            );
                        } else {
                            assert_eq!(
                                v,
                                f32::NEG_INFINITY,
                                "{} {what} n={n} k={k}: y[{i}] = {v}, want -inf",
                                e.name
                            );
                        }
                    }
                }
                assert_eq!(o.lse, f32::INFINITY, "{} logsumexp n={n} k={k}", e.name);
            }
        }
    }
}

/// A fully masked row (all −∞): softmax all 0, log-softmax all −∞,
/// logsumexp −∞; in place too, and through the rows API.
#[test]
fn fully_masked_rows() {
    let roster = Roster::all();
    roster.announce("fully_masked_rows");
    for e in &roster.ran {
        for n in (1..=40).chain([1000, 4096]) {
            let x = vec![f32::NEG_INFINITY; n];
            let o = outputs(e, &x);
            expect(e, "softmax", &x, &o.sm, |_| 0.0);
            expect(e, "softmax_in_place", &x, &o.sm_ip, |_| 0.0);
            expect(e, "log_softmax", &x, &o.lsm, |_| f32::NEG_INFINITY);
            expect(e, "log_softmax_in_place", &x, &o.lsm_ip, |_| {
                f32::NEG_INFINITY
            });
            assert_eq!(
                o.lse,
                f32::NEG_INFINITY,
                "{} logsumexp of {n} × -inf",
                e.name
            );
        }
        let rows = vec![f32::NEG_INFINITY; 9 * 17];
        let mut y = vec![1.0; rows.len()];
        e.ops.softmax_rows(&rows, &mut y, 17);
        expect(e, "softmax_rows", &rows, &y, |_| 0.0);
        e.ops.log_softmax_rows(&rows, &mut y, 17);
        expect(e, "log_softmax_rows", &rows, &y, |_| f32::NEG_INFINITY);
    }
}

/// A partial mask: exactly 0 (log −∞) at the −∞ entries, and the rest a
/// normal softmax — that of the unmasked entries alone, within the bound.
#[test]
fn partial_masks_are_exact_zeros() {
    let roster = Roster::all();
    roster.announce("partial_masks_are_exact_zeros");
    let mut checked = 0;
    for e in &roster.ran {
        for n in (2..=70).chain([513, 4099]) {
            for variant in 0..3u64 {
                let mut x = gen_row(Family::Uniform, n, 100 + variant);
                // mask all but one entry / every other entry / a random third
                for (i, v) in x.iter_mut().enumerate() {
                    let masked = match variant {
                        0 => i != n / 3,
                        1 => i % 2 == 1,
                        _ => (i * 7919 + n) % 3 == 0 && i != 0,
                    };
                    if masked {
                        *v = f32::NEG_INFINITY;
                    }
                }
                let kept: Vec<f32> = x.iter().copied().filter(|v| v.is_finite()).collect();
                let r_kept = reference::softmax(&kept);
                let rl_kept = log_softmax_ref(&kept);
                let o = outputs(e, &x);
                for (what, y, log) in [
                    ("softmax", &o.sm, false),
                    ("softmax_in_place", &o.sm_ip, false),
                    ("log_softmax", &o.lsm, true),
                    ("log_softmax_in_place", &o.lsm_ip, true),
                ] {
                    let masked_val = if log { f32::NEG_INFINITY } else { 0.0 };
                    let mut rest = Vec::new();
                    for (i, &v) in y.iter().enumerate() {
                        if x[i] == f32::NEG_INFINITY {
                            assert_eq!(
                                v, masked_val,
                                "{} {what} n={n}: masked y[{i}] = {v:e}",
                                e.name
                            );
                        } else {
                            rest.push(v);
                        }
                    }
                    let rep = if log {
                        check_log_softmax_row_with(&kept, &rl_kept, &rest, LN_SUM_SLACK)
                    } else {
                        check_softmax_row(&kept, &r_kept, &rest)
                    };
                    assert!(
                        rep.ok(),
                        "{} {what} n={n} variant {variant}: unmasked part: {:?}",
                        e.name,
                        rep.first
                    );
                    checked += 1;
                }
                let rl = reference::logsumexp(&kept);
                let rep = check_logsumexp(&kept, rl, &r_kept, o.lse);
                assert!(rep.ok(), "{} logsumexp n={n}: {:?}", e.name, rep.first);
            }
        }
    }
    assert!(checked > 0);
}

/// Finite extremes (±3.4e38, f32::MAX/MIN, mixed): no NaN, no overflow in
/// softmax (`x − max` overflowing to −∞ gives 0), outputs within the bound;
/// logsumexp finite. Hand cases first, then random mixes at every length
/// 1..=64.
#[test]
fn finite_extremes_do_not_overflow() {
    let roster = Roster::all();
    roster.announce("finite_extremes_do_not_overflow");
    let big = 3.4e38f32;
    let third = (1.0f64 / 3.0) as f32;
    let hand: [(Vec<f32>, Vec<f32>); 7] = [
        (vec![big, -big], vec![1.0, 0.0]),
        (vec![-big, big], vec![0.0, 1.0]),
        (vec![f32::MAX, f32::MIN, 0.0], vec![1.0, 0.0, 0.0]),
        (vec![f32::MAX; 3], vec![third; 3]),
        (vec![f32::MIN; 4], vec![0.25; 4]),
        (vec![-big, -big, f32::MIN], vec![0.5, 0.5, 0.0]),
        (
            vec![big, 1e30, -1e30, 0.0, -big],
            vec![1.0, 0.0, 0.0, 0.0, 0.0],
        ),
    ];
    for e in &roster.ran {
        for (x, want) in &hand {
            let o = outputs(e, x);
            expect(e, "softmax", x, &o.sm, |i| want[i]);
            expect(e, "softmax_in_place", x, &o.sm_ip, |i| want[i]);
            let rl = log_softmax_ref(x);
            for (what, y) in [("log_softmax", &o.lsm), ("log_softmax_in_place", &o.lsm_ip)] {
                assert!(
                    y.iter().all(|v| !v.is_nan() && *v != f32::INFINITY),
                    "{} {what} {x:?} = {y:?}",
                    e.name
                );
                let rep = check_log_softmax_row_with(x, &rl, y, LN_SUM_SLACK);
                assert!(rep.ok(), "{} {what} {x:?}: {:?}", e.name, rep.first);
            }
            assert!(o.lse.is_finite(), "{} logsumexp({x:?}) = {}", e.name, o.lse);
            let rep = check_logsumexp(x, reference::logsumexp(x), &reference::softmax(x), o.lse);
            assert!(rep.ok(), "{} logsumexp({x:?}): {:?}", e.name, rep.first);
        }
        for n in 1..=64 {
            for salt in 0..4 {
                let x = gen_row(Family::Extremes, n, 50 + salt);
                let o = outputs(e, &x);
                for (what, y) in [("softmax", &o.sm), ("softmax_in_place", &o.sm_ip)] {
                    assert!(
                        y.iter().all(|v| (0.0..=1.0).contains(v)),
                        "{} {what} {x:?} = {y:?}",
                        e.name
                    );
                    let rep = check_softmax_row(&x, &reference::softmax(&x), y);
                    assert!(rep.ok(), "{} {what} {x:?}: {:?}", e.name, rep.first);
                }
                for y in [&o.lsm, &o.lsm_ip] {
                    assert!(
                        y.iter().all(|v| !v.is_nan() && *v <= 0.0),
                        "{} log_softmax {x:?} = {y:?}",
                        e.name
                    );
                }
                assert!(o.lse.is_finite(), "{} logsumexp {x:?} = {}", e.name, o.lse);
            }
        }
    }
}

/// Subnormal inputs behave like the tiny numbers they are: a row of
/// subnormals and zeros is uniform within the bound.
#[test]
fn subnormal_inputs() {
    let roster = Roster::all();
    roster.announce("subnormal_inputs");
    for e in &roster.ran {
        for n in 1..=64 {
            let x = gen_row(Family::Subnormal, n, 9);
            let o = outputs(e, &x);
            let want = 1.0 / n as f64;
            for (what, y) in [("softmax", &o.sm), ("softmax_in_place", &o.sm_ip)] {
                for (i, &v) in y.iter().enumerate() {
                    assert!(
                        ulp_err(v, want) <= C_ULPS,
                        "{} {what} n={n}: y[{i}] = {v:e}, want ≈ 1/{n}",
                        e.name
                    );
                }
            }
            let lwant = -(n as f64).ln();
            for (what, y) in [("log_softmax", &o.lsm), ("log_softmax_in_place", &o.lsm_ip)] {
                for (i, &v) in y.iter().enumerate() {
                    assert!(
                        (v as f64 - lwant).abs() <= C_ULPS * ulp_f32(lwant) + LN_SUM_SLACK,
                        "{} {what} n={n}: y[{i}] = {v:e}, want ≈ -ln {n}",
                        e.name
                    );
                }
            }
            assert!(
                (o.lse as f64 - (n as f64).ln()).abs() <= ulp_f32((n as f64).ln()) + LN_SUM_SLACK,
                "{} lse n={n}",
                e.name
            );
        }
    }
}

/// The class of every output (NaN, ±∞, zero, positive, negative) is the
/// same on every engine for rows whose results are limits or exact zeros.
#[test]
fn special_results_have_the_same_class_on_every_engine() {
    fn class(v: f32) -> &'static str {
        if v.is_nan() {
            "NaN"
        } else if v == f32::INFINITY {
            "+inf"
        } else if v == f32::NEG_INFINITY {
            "-inf"
        } else if v == 0.0 {
            "0"
        } else if v > 0.0 {
            "+"
        } else {
            "-"
        }
    }
    let roster = Roster::all();
    roster.announce("special_results_have_the_same_class_on_every_engine");
    assert!(
        roster.ran.len() >= 2,
        "needs at least two engines to compare"
    );
    let base = &roster.ran[0];
    let mut compared = 0;
    for fam in [
        Family::Nan,
        Family::PosInf,
        Family::FullMask,
        Family::PartialMask,
        Family::Extremes,
    ] {
        for n in (1..=64).chain([1000]) {
            let x = gen_row(fam, n, 77);
            let want = outputs(base, &x);
            for e in &roster.ran[1..] {
                let got = outputs(e, &x);
                for (what, a, b) in [
                    ("softmax", &want.sm, &got.sm),
                    ("log_softmax", &want.lsm, &got.lsm),
                    ("softmax_in_place", &want.sm_ip, &got.sm_ip),
                    ("log_softmax_in_place", &want.lsm_ip, &got.lsm_ip),
                ] {
                    let ca: Vec<_> = a.iter().map(|&v| class(v)).collect();
                    let cb: Vec<_> = b.iter().map(|&v| class(v)).collect();
                    assert_eq!(
                        ca,
                        cb,
                        "{what} {} n={n}: {} vs {}",
                        fam.name(),
                        base.name,
                        e.name
                    );
                }
                assert_eq!(
                    class(want.lse),
                    class(got.lse),
                    "logsumexp {} n={n}: {} vs {}",
                    fam.name(),
                    base.name,
                    e.name
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 0);
}

/// Kernels give correct results when the caller has set
/// flush-to-zero and denormals-are-zero (MXCSR FTZ|DAZ). The reference is
/// computed before, and the outputs checked after, restoring MXCSR (the
/// f64 reference and the checker must not run under FTZ/DAZ themselves).
#[cfg(target_arch = "x86_64")]
#[test]
fn correct_under_ftz_daz() {
    #[allow(deprecated)]
    fn with_ftz_daz<T>(f: impl FnOnce() -> T) -> T {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        const FTZ: u32 = 1 << 15;
        const DAZ: u32 = 1 << 6;
        // SAFETY: MXCSR is per-thread state; we only set the FTZ and DAZ
        // control bits (no exception unmasking) and restore the saved value.
        let saved = unsafe { _mm_getcsr() };
        unsafe { _mm_setcsr(saved | FTZ | DAZ) };
        // Checks that the mode is really on: a subnormal product flushes.
        let flushed = std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5f32) == 0.0;
        let out = f();
        unsafe { _mm_setcsr(saved) };
        assert!(flushed, "FTZ did not take effect");
        out
    }
    let roster = Roster::all();
    roster.announce("correct_under_ftz_daz");
    let fams = [
        Family::Uniform,
        Family::NormalS10,
        Family::Subnormal,
        Family::Dominant,
        Family::PartialMask,
        Family::Extremes,
    ];
    for n in (1..=64).chain([4096]) {
        for fam in fams {
            let x = gen_row(fam, n, 31);
            let r = reference::softmax(&x);
            let rl = log_softmax_ref(&x);
            let rs = reference::logsumexp(&x);
            for e in &roster.ran {
                let (sm, lsm, lse) = with_ftz_daz(|| {
                    let mut sm = vec![0.0; n];
                    e.ops.softmax(&x, &mut sm);
                    let mut lsm = vec![0.0; n];
                    e.ops.log_softmax(&x, &mut lsm);
                    (sm, lsm, e.ops.logsumexp(&x))
                });
                // Under DAZ the subnormal inputs read as 0: the exact result
                // for those inputs differs from the reference by less than
                // the bound anyway (e^{±2^-126} = 1 in f32).
                let rep = check_softmax_row(&x, &r, &sm);
                assert!(
                    rep.ok(),
                    "{} softmax under FTZ/DAZ, {} n={n}: {:?}",
                    e.name,
                    fam.name(),
                    rep.first
                );
                let rep = check_log_softmax_row_with(&x, &rl, &lsm, LN_SUM_SLACK);
                assert!(
                    rep.ok(),
                    "{} log_softmax under FTZ/DAZ, {} n={n}: {:?}",
                    e.name,
                    fam.name(),
                    rep.first
                );
                let rep = check_logsumexp(&x, rs, &r, lse);
                assert!(
                    rep.ok(),
                    "{} logsumexp under FTZ/DAZ, {} n={n}: {:?}",
                    e.name,
                    fam.name(),
                    rep.first
                );
            }
        }
    }
}

/// Checks softmax and log-softmax of each case against hand-computed f64
/// values with the documented bounds.
fn check_hand_cases(cases: &[(Vec<f32>, Vec<f64>, Vec<f64>)]) {
    let roster = Roster::all();
    roster.announce("hand-computed cases");
    let mut failures = Vec::new();
    for e in &roster.ran {
        for (x, sm, lsm) in cases {
            let o = outputs(e, x);
            for (i, (&y, &r)) in o.sm.iter().zip(sm).enumerate() {
                let err = ulp_err(y, r);
                if err.is_nan() || err > softmax_bound_ulps(x[i], row_max(x)) {
                    failures.push(format!(
                        "{} softmax({x:?})[{i}] = {y:e}, want {r:e}",
                        e.name
                    ));
                }
            }
            let inherited = inherited_subtraction_error(x, sm.iter().copied());
            for (i, (&y, &r)) in o.lsm.iter().zip(lsm).enumerate() {
                let bound = log_softmax_bound(r, x[i], row_max(x)) + inherited;
                let ok = if r.is_infinite() {
                    y as f64 == r
                } else {
                    (y as f64 - r).abs() <= bound
                };
                if !ok {
                    failures.push(format!(
                        "{} log_softmax({x:?})[{i}] = {y:e}, want {r:e}: off by {:e} = {:.0} ULP of the result (bound 4·ulp(r) + ulp(x-m) + Σp·ulp(x-m) = {bound:e})",
                        e.name,
                        (y as f64 - r).abs(),
                        (y as f64 - r).abs() / ulp_f32(r)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Hand-computed values every engine must reproduce (documented bounds).
#[test]
fn hand_computed_values() {
    let e1 = std::f64::consts::E;
    let ln2 = std::f64::consts::LN_2;
    check_hand_cases(&[
        (vec![0.0, 0.0], vec![0.5, 0.5], vec![-ln2; 2]),
        (
            vec![1.0, 0.0],
            vec![e1 / (e1 + 1.0), 1.0 / (e1 + 1.0)],
            vec![-(1.0 + 1.0 / e1).ln(), -(1.0 + e1).ln()],
        ),
        (vec![0.0; 4], vec![0.25; 4], vec![-(4f64).ln(); 4]),
        (vec![2.0; 9], vec![1.0 / 9.0; 9], vec![-(9f64).ln(); 9]),
        (
            vec![-7.5, -7.5, f32::NEG_INFINITY],
            vec![0.5, 0.5, 0.0],
            vec![-ln2, -ln2, f64::NEG_INFINITY],
        ),
        (
            vec![3.0, 1.0, 3.0, 1.0],
            vec![
                e1 * e1 / (2.0 * e1 * e1 + 2.0),
                1.0 / (2.0 * e1 * e1 + 2.0),
                e1 * e1 / (2.0 * e1 * e1 + 2.0),
                1.0 / (2.0 * e1 * e1 + 2.0),
            ],
            vec![
                -(2.0 + 2.0 / (e1 * e1)).ln(),
                -2.0 - (2.0 + 2.0 / (e1 * e1)).ln(),
                -(2.0 + 2.0 / (e1 * e1)).ln(),
                -2.0 - (2.0 + 2.0 / (e1 * e1)).ln(),
            ],
        ),
    ]);
}

/// Rows whose `Σ e^{x−m}` is close to 1: log-softmax of the max entry is
/// the small number `−ln(1 + ε)`, and the documented bound `4·ulp(r) + ulp(x − m)`
/// (with `x − m = 0`) measures it in its own, tiny, ULPs. Computing `ln`
/// of a rounded `1 + ε` loses the rounding of that sum *absolutely*: about
/// 2^-24 for an f32 sum, 2^-53 for an f64 one, which is thousands to
/// millions of those ULPs once `ε ≲ 1e-8`; `ln k + log1p(ε/k)` (k tied
/// maxima) is what meets the bound.
#[test]
fn log_softmax_of_the_max_when_the_sum_is_close_to_one() {
    let l8 = (-8f64).exp().ln_1p();
    let l16 = (-16f64).exp().ln_1p();
    let t = (-30f64).exp() + (-31f64).exp();
    let l3 = t.ln_1p();
    let s3 = 1.0 + t;
    let l23 = (-23f64).exp().ln_1p();
    let l40 = (-40f64).exp().ln_1p();
    check_hand_cases(&[
        // Σ = 1 + e^-23: ≈ [−1.026e-10, −23]; f64 ln(1 + ε) is ~16 ULPs off.
        (
            vec![0.0, -23.0],
            vec![1.0 / (1.0 + (-23f64).exp()), 1.0 / (1.0 + 23f64.exp())],
            vec![-l23, -23.0 - l23],
        ),
        // Σ = 1 + e^-40: ≈ [−4.248e-18, −40]; 1 + ε rounds to 1 even in f64.
        (
            vec![7.0, -33.0],
            vec![1.0 / (1.0 + (-40f64).exp()), 1.0 / (1.0 + 40f64.exp())],
            vec![-l40, -40.0 - l40],
        ),
        // Σ = 1 + e^-8: log_softmax = [−ln(1 + e^-8), −8 − ln(1 + e^-8)] ≈ [−3.354e-4, −8.000335].
        (
            vec![5.0, -3.0],
            vec![1.0 / (1.0 + (-8f64).exp()), 1.0 / (1.0 + 8f64.exp())],
            vec![-l8, -8.0 - l8],
        ),
        // Σ = 1 + e^-16: ≈ [−1.125e-7, −16.0000001].
        (
            vec![0.0, -16.0],
            vec![1.0 / (1.0 + (-16f64).exp()), 1.0 / (1.0 + 16f64.exp())],
            vec![-l16, -16.0 - l16],
        ),
        // Σ = 1 + e^-30 + e^-31: ≈ [−1.28e-13, −30, −31].
        (
            vec![0.0, -30.0, -31.0],
            vec![1.0 / s3, (-30f64).exp() / s3, (-31f64).exp() / s3],
            vec![-l3, -30.0 - l3, -31.0 - l3],
        ),
    ]);
}
