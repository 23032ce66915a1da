//! Differential tests: every engine of the roster (each dispatched backend
//! the CPU runs, plus the portable 16-lane kernel on x86-64) against the f64
//! reference, with the docs/ACCURACY.md bounds of `common` — every length 1..=300 and
//! 4096, 32000, 128256, 2^20; every input family; out-of-place at unaligned
//! offsets (with canaries), in place, and the rows API.
//!
//! `cargo test --test differential -- --nocapture` prints which engines ran
//! and which were skipped, and one accuracy table per function.

mod common;

use common::*;
use simd_softmax::{Backend, reference};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Softmax,
    LogSoftmax,
}

impl Func {
    fn name(self) -> &'static str {
        match self {
            Func::Softmax => "softmax",
            Func::LogSoftmax => "log_softmax",
        }
    }

    fn reference(self, x: &[f32]) -> Vec<f64> {
        match self {
            Func::Softmax => reference::softmax(x),
            Func::LogSoftmax => log_softmax_ref(x),
        }
    }

    /// The documented-bound check (`strict`), or for log-softmax the plumbing check
    /// with [`LN_SUM_SLACK`] (softmax has a single check, the documented bound).
    fn check(self, x: &[f32], r: &[f64], y: &[f32], strict: bool) -> RowReport {
        match self {
            Func::Softmax => check_softmax_row(x, r, y),
            Func::LogSoftmax if strict => check_log_softmax_row(x, r, y),
            Func::LogSoftmax => check_log_softmax_row_with(x, r, y, LN_SUM_SLACK),
        }
    }
}

/// How an engine is called.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Input at element offset `input`, output at offset `output` of larger,
    /// canary-guarded buffers (so neither is 16/32/64-byte aligned in general).
    OutOfPlace { input: usize, output: usize },
    /// In place, at element offset `off` of a canary-guarded buffer.
    InPlace { off: usize },
}

/// The modes of the unaligned/in-place tests: offsets 1..=3 for input and
/// output (in different combinations), and in place at offsets 0..=3.
const MODES: [Mode; 7] = [
    Mode::OutOfPlace {
        input: 1,
        output: 2,
    },
    Mode::OutOfPlace {
        input: 2,
        output: 3,
    },
    Mode::OutOfPlace {
        input: 3,
        output: 1,
    },
    Mode::InPlace { off: 0 },
    Mode::InPlace { off: 1 },
    Mode::InPlace { off: 2 },
    Mode::InPlace { off: 3 },
];

/// Runs `func` of `engine` on `x` in `mode`; checks the canaries around the
/// output slice and that an out-of-place input is left bit-for-bit intact.
fn run(engine: &Engine, func: Func, mode: Mode, x: &[f32]) -> Vec<f32> {
    let n = x.len();
    let what = format!("{} {} {mode:?} n={n}", engine.name, func.name());
    match mode {
        Mode::OutOfPlace { input, output } => {
            let ibuf = guarded(x, input);
            let mut obuf = guarded(&vec![f32::from_bits(POISON_BITS); n], output);
            let (xs, ys) = (&ibuf[input..input + n], &mut obuf[output..output + n]);
            match func {
                Func::Softmax => engine.ops.softmax(xs, ys),
                Func::LogSoftmax => engine.ops.log_softmax(xs, ys),
            }
            assert_canaries(&obuf, output, n, &what);
            assert!(
                ibuf[input..input + n]
                    .iter()
                    .zip(x)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{what}: modified its input"
            );
            obuf[output..output + n].to_vec()
        }
        Mode::InPlace { off } => {
            let mut buf = guarded(x, off);
            match func {
                Func::Softmax => engine.ops.softmax_in_place(&mut buf[off..off + n]),
                Func::LogSoftmax => engine.ops.log_softmax_in_place(&mut buf[off..off + n]),
            }
            assert_canaries(&buf, off, n, &what);
            buf[off..off + n].to_vec()
        }
    }
}

/// The sweep behind every differential test: for each length and family,
/// the reference once, then every engine (that [`Engine::runs`] it) in every
/// mode, each output checked against the reference.
fn sweep(
    test: &str,
    func: Func,
    lengths: impl Iterator<Item = usize>,
    families: &[Family],
    modes: &[Mode],
    strict: bool,
    mut slack: Option<&mut Stats>,
) -> Stats {
    let roster = Roster::all();
    roster.announce(test);
    let mut stats = Stats::default();
    for n in lengths {
        for &fam in families {
            let x = gen_row(fam, n, 1);
            let r = func.reference(&x);
            for e in roster.ran.iter().filter(|e| e.runs(fam, n)) {
                for &mode in modes {
                    let y = run(e, func, mode, &x);
                    let what = format!("{} {mode:?}", fam.name());
                    stats.add(&e.name, n, &what, &func.check(&x, &r, &y, strict));
                    if let Some(s) = slack.as_deref_mut() {
                        s.add(&e.name, n, &what, &func.check(&x, &r, &y, false));
                    }
                }
            }
        }
    }
    // Every engine that ran was checked: no silent pass through a skip.
    for name in roster.names() {
        assert!(
            stats.engines().contains(&name),
            "{test}: engine {name} ran but was never checked"
        );
    }
    stats
}

// ---------------------------------------------------------------------------
// Roster and harness self-checks
// ---------------------------------------------------------------------------

/// Prints which engines ran and which were skipped (and why), and checks
/// the roster against the CPU's own feature report, so SIMD backends cannot
/// be skipped silently.
#[test]
fn backends_report() {
    let roster = Roster::all();
    let detected = Backend::detect();
    eprintln!(
        "simd-softmax backends (detected: {detected})\n{}",
        roster.describe()
    );

    // Every backend is either run or skipped with the library's reason.
    for &b in Backend::ALL {
        let ran = roster.ran.iter().any(|e| e.backend == Some(b));
        let skipped = roster.skipped.iter().any(|(n, _)| n == b.name());
        assert!(ran != skipped, "{b}: ran {ran}, skipped {skipped}");
        assert_eq!(ran, b.is_available(), "{b}");
    }
    assert!(roster.names().contains(&"scalar"), "scalar must always run");
    assert!(
        roster.ran.iter().any(|e| e.backend == Some(detected)),
        "detected backend {detected} did not run"
    );
    for (p, _) in PORTABLE_NOT_BUILT {
        assert!(roster.skipped.iter().any(|(n, _)| n == p), "{p} not listed");
    }
    let p = "portable16";
    let ran = roster.names().iter().any(|n| n.starts_with(p));
    if quick() || cfg!(not(target_arch = "x86_64")) {
        assert!(!ran && roster.skipped.iter().any(|(n, _)| n.starts_with(p)));
    } else {
        assert!(ran, "{p} did not run");
    }

    let simd_ran = roster
        .ran
        .iter()
        .any(|e| matches!(e.backend, Some(b) if b != Backend::Scalar));
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(
            simd_ran,
            "no SIMD backend ran on a SIMD target:\n{}",
            roster.describe()
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!(detected, Backend::Neon);
        assert!(roster.names().contains(&"neon"));
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        let avx512 = avx2
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512cd")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl");
        assert_eq!(
            roster.names().contains(&"avx2"),
            avx2,
            "avx2 ran iff the CPU has avx2+fma"
        );
        assert_eq!(
            roster.names().contains(&"avx512"),
            avx512,
            "avx512 ran iff the CPU has AVX-512 F/BW/CD/DQ/VL"
        );
        if avx512 {
            assert_eq!(detected, Backend::Avx512);
        } else if avx2 {
            assert_eq!(detected, Backend::Avx2);
        }
        assert!(!roster.names().contains(&"neon"));
    }
}

/// The metric and the checkers themselves: a correct answer passes, a wrong
/// one fails (so a green differential test means something).
#[test]
fn harness_checks_what_it_claims() {
    // ULP of the f32 nearest r.
    assert_eq!(ulp_f32(1.0), 2f64.powi(-23));
    assert_eq!(ulp_f32(0.75), 2f64.powi(-24));
    assert_eq!(ulp_f32(-3.0), 2f64.powi(-22));
    assert_eq!(ulp_f32(0.0), 2f64.powi(-149));
    assert_eq!(ulp_f32(1e-40), 2f64.powi(-149));
    assert_eq!(ulp_f32(f32::MIN_POSITIVE as f64), 2f64.powi(-149));
    assert_eq!(ulp_f32(f32::MAX as f64), 2f64.powi(104));
    assert_eq!(TINY_ULP, 2f64.powi(-149));
    assert_eq!(MIN_NORMAL, 2f64.powi(-126));

    let x = [1.0f32, 2.0, 3.0, -4.0];
    let r = reference::softmax(&x);
    let good: Vec<f32> = r.iter().map(|&v| v as f32).collect();
    assert!(check_softmax_row(&x, &r, &good).ok());
    // 6 ULP off at the max entry (|x − m| = 0, bound 4): rejected.
    let mut bad = good.clone();
    bad[2] = f32::from_bits(bad[2].to_bits() + 6);
    assert!(!check_softmax_row(&x, &r, &bad).ok());
    // 3 ULP off at the max entry: accepted, and reported as 3 ULP.
    let mut ok3 = good.clone();
    ok3[2] = f32::from_bits(ok3[2].to_bits() + 3);
    let rep = check_softmax_row(&x, &r, &ok3);
    assert!(rep.ok() && (rep.max_ulp - 3.0).abs() < 0.6, "{rep:?}");
    // A NaN in an ordinary row, or a leftover poison value, is rejected.
    let mut nan = good.clone();
    nan[0] = f32::from_bits(POISON_BITS);
    assert!(!check_softmax_row(&x, &r, &nan).ok());
    // A masked entry must be exactly 0; a NaN row all NaN.
    let xm = [0.0f32, f32::NEG_INFINITY];
    assert!(!check_softmax_row(&xm, &reference::softmax(&xm), &[1.0, 1e-45]).ok());
    assert!(check_softmax_row(&xm, &reference::softmax(&xm), &[1.0, 0.0]).ok());
    let xn = [0.0f32, f32::NAN];
    assert!(!check_softmax_row(&xn, &reference::softmax(&xn), &[0.5, f32::NAN]).ok());
    // Flushing is allowed only below 2^-126.
    let xf = [0.0f32, -90.0]; // e^-90 ≈ 8e-40 < 2^-126
    assert!(check_softmax_row(&xf, &reference::softmax(&xf), &[1.0, 0.0]).ok());
    let xk = [0.0f32, -80.0]; // e^-80 ≈ 1.8e-35 > 2^-126
    assert!(!check_softmax_row(&xk, &reference::softmax(&xk), &[1.0, 0.0]).ok());

    let rl = log_softmax_ref(&x);
    let goodl: Vec<f32> = rl.iter().map(|&v| v as f32).collect();
    assert!(check_log_softmax_row(&x, &rl, &goodl).ok());
    let mut badl = goodl.clone();
    badl[0] = f32::from_bits(badl[0].to_bits() + 8); // 8 ULP > 4 ULP + ulp(x−m)/ulp(r)
    assert!(!check_log_softmax_row(&x, &rl, &badl).ok());

    let lse = reference::logsumexp(&x);
    assert!(check_logsumexp(&x, lse, &r, lse as f32).ok());
    assert!(!check_logsumexp(&x, lse, &r, lse as f32 + 1e-5).ok());
}

// ---------------------------------------------------------------------------
// Accuracy sweeps (out of place, aligned): the tables
// ---------------------------------------------------------------------------

/// Softmax, every engine × every length × every family, out of place.
#[test]
fn softmax_matches_reference() {
    let modes = [Mode::OutOfPlace {
        input: 0,
        output: 0,
    }];
    let stats = sweep(
        "softmax_matches_reference",
        Func::Softmax,
        all_lengths(),
        &Family::ALL,
        &modes,
        true,
        None,
    );
    eprintln!(
        "{}",
        stats.table(
            "softmax (err = |y-r|/ulp(r); bound C + |x-m|, C = 4)",
            Some("max ULP-|x-m|")
        )
    );
    stats.assert_clean("softmax");
}

/// Log-softmax, every engine × every length × every family, out of place,
/// against the documented bound `4·ulp(r) + ulp(x − m)` plus the error inherited
/// through `ln Σ` (see `common::inherited_subtraction_error`). Also prints
/// the same outputs against the looser plumbing bound.
#[test]
fn log_softmax_matches_reference() {
    let modes = [Mode::OutOfPlace {
        input: 0,
        output: 0,
    }];
    let mut slack = Stats::default();
    let t = "log_softmax_matches_reference";
    let stats = sweep(
        t,
        Func::LogSoftmax,
        all_lengths(),
        &Family::ALL,
        &modes,
        true,
        Some(&mut slack),
    );
    eprintln!(
        "{}",
        stats.table(
            "log_softmax (bound 4·ulp(r) + ulp(x-m) + Σ_j p_j·ulp(x_j-m))",
            Some("ULP, |r|>=1")
        )
    );
    eprintln!(
        "{}",
        slack.table(
            "log_softmax, same outputs, plumbing bound (+ 4·2^-23)",
            Some("ULP, |r|>=1")
        )
    );
    stats.assert_clean("log_softmax");
}

/// logsumexp, every engine × every length × every family.
#[test]
fn logsumexp_matches_reference() {
    let roster = Roster::all();
    roster.announce("logsumexp_matches_reference");
    let mut stats = Stats::default();
    for n in all_lengths() {
        for fam in Family::ALL {
            let x = gen_row(fam, n, 2);
            let r = reference::logsumexp(&x);
            let w = reference::softmax(&x);
            for e in roster.ran.iter().filter(|e| e.runs(fam, n)) {
                let y = e.ops.logsumexp(&x);
                stats.add(&e.name, n, fam.name(), &check_logsumexp(&x, r, &w, y));
            }
        }
    }
    eprintln!(
        "{}",
        stats.table(
            "logsumexp (bound ulp(r) + 4·2^-23 + Σ r_j·ulp(x_j-m))",
            None
        )
    );
    stats.assert_clean("logsumexp");
}

// ---------------------------------------------------------------------------
// Unaligned offsets and in place
// ---------------------------------------------------------------------------

/// The families the mode tests sweep at every length: ordinary, masked and
/// special rows (the special rows take the scalar path, which must honour
/// offsets and aliasing too).
const MODE_FAMILIES: [Family; 6] = [
    Family::Uniform,
    Family::NormalS10,
    Family::PartialMask,
    Family::PosInf,
    Family::Nan,
    Family::FullMask,
];

#[test]
fn softmax_unaligned_and_in_place() {
    let t = "softmax_unaligned_and_in_place";
    let stats = sweep(
        t,
        Func::Softmax,
        1..=300,
        &MODE_FAMILIES,
        &MODES,
        false,
        None,
    );
    let long = sweep(
        t,
        Func::Softmax,
        LONG_LENGTHS.into_iter(),
        &[Family::Uniform, Family::PartialMask],
        &MODES,
        false,
        None,
    );
    eprintln!(
        "{}",
        long.table(
            "softmax, unaligned + in place, long rows",
            Some("max ULP-|x-m|")
        )
    );
    stats.assert_clean(t);
    long.assert_clean(t);
}

#[test]
fn log_softmax_unaligned_and_in_place() {
    let t = "log_softmax_unaligned_and_in_place";
    let stats = sweep(
        t,
        Func::LogSoftmax,
        1..=300,
        &MODE_FAMILIES,
        &MODES,
        false,
        None,
    );
    let long = sweep(
        t,
        Func::LogSoftmax,
        LONG_LENGTHS.into_iter(),
        &[Family::Uniform, Family::PartialMask],
        &MODES,
        false,
        None,
    );
    eprintln!(
        "{}",
        stats.table(
            "log_softmax, unaligned + in place, 1..=300",
            Some("ULP, |r|>=1")
        )
    );
    stats.assert_clean(t);
    long.assert_clean(t);
}

// ---------------------------------------------------------------------------
// Rows API
// ---------------------------------------------------------------------------

/// A batch of `rows` rows of `row_len`, each from a family cycling through
/// all of them (so NaN, +∞ and fully masked rows sit between ordinary ones).
fn batch(rows: usize, row_len: usize, salt: u64) -> Vec<f32> {
    (0..rows)
        .flat_map(|i| {
            gen_row(
                Family::ALL[(i + salt as usize) % Family::ALL.len()],
                row_len,
                salt * 1000 + i as u64,
            )
        })
        .collect()
}

fn rows_test(func: Func) {
    let test = format!("{}_rows", func.name());
    let roster = Roster::all();
    roster.announce(&test);
    let mut stats = Stats::default();
    for (row_len, rows) in [
        (1, 70),
        (3, 40),
        (7, 45),
        (8, 43),
        (16, 41),
        (17, 39),
        (64, 30),
        (1000, 29),
        (4099, 14),
    ] {
        let x = batch(rows, row_len, row_len as u64);
        let refs: Vec<Vec<f64>> = x.chunks(row_len).map(|row| func.reference(row)).collect();
        for e in &roster.ran {
            for (k, &(ioff, ooff)) in [(0usize, 0usize), (1, 3), (3, 2), (2, 1)]
                .iter()
                .enumerate()
            {
                let what = format!(
                    "{} {test} row_len={row_len} offsets ({ioff},{ooff})",
                    e.name
                );
                let n = x.len();
                let y = if k % 2 == 0 {
                    // out of place
                    let ibuf = guarded(&x, ioff);
                    let mut obuf = guarded(&vec![f32::from_bits(POISON_BITS); n], ooff);
                    let (xs, ys) = (&ibuf[ioff..ioff + n], &mut obuf[ooff..ooff + n]);
                    match func {
                        Func::Softmax => e.ops.softmax_rows(xs, ys, row_len),
                        Func::LogSoftmax => e.ops.log_softmax_rows(xs, ys, row_len),
                    }
                    assert_canaries(&obuf, ooff, n, &what);
                    obuf[ooff..ooff + n].to_vec()
                } else {
                    let mut buf = guarded(&x, ioff);
                    match func {
                        Func::Softmax => e
                            .ops
                            .softmax_rows_in_place(&mut buf[ioff..ioff + n], row_len),
                        Func::LogSoftmax => e
                            .ops
                            .log_softmax_rows_in_place(&mut buf[ioff..ioff + n], row_len),
                    }
                    assert_canaries(&buf, ioff, n, &what);
                    buf[ioff..ioff + n].to_vec()
                };
                for (i, ((xr, yr), r)) in x
                    .chunks(row_len)
                    .zip(y.chunks(row_len))
                    .zip(&refs)
                    .enumerate()
                {
                    let mut rep = func.check(xr, r, yr, false);
                    rep.first
                        .iter_mut()
                        .for_each(|m| *m = format!("{what}, row {i}: {m}"));
                    stats.add(&e.name, row_len, "rows", &rep);
                }
            }
        }
    }
    stats.assert_clean(&test);
}

#[test]
fn softmax_rows_match_reference_per_row() {
    rows_test(Func::Softmax);
}

#[test]
fn log_softmax_rows_match_reference_per_row() {
    rows_test(Func::LogSoftmax);
}

/// A NaN row, a +∞ row and a fully masked row in a batch change only
/// themselves: their neighbours equal the same rows computed alone, bit for
/// bit, on every engine and for every row length (tails included). Eleven
/// rows with the special one first, inside or last: the short-row paths
/// take rows in groups of 2 to 8 (one group's maxima reduced while the
/// previous one is finished, on AVX-512), so this covers a special row in
/// a full group, in the leftover rows, and next to a group in flight.
#[test]
fn special_rows_do_not_leak_into_neighbours() {
    const ROWS: usize = 11;
    let roster = Roster::all();
    roster.announce("special_rows_do_not_leak_into_neighbours");
    for row_len in [1, 2, 5, 8, 15, 16, 17, 24, 32, 33, 48, 64, 100] {
        let normal: Vec<Vec<f32>> = (0..ROWS)
            .map(|r| gen_row(Family::Uniform, row_len, 7 + r as u64))
            .collect();
        let specials = [
            vec![f32::NAN; row_len],
            {
                let mut v = normal[0].clone();
                v[row_len / 2] = f32::NAN;
                v
            },
            {
                let mut v = normal[0].clone();
                v[row_len - 1] = f32::INFINITY;
                v
            },
            vec![f32::NEG_INFINITY; row_len],
        ];
        for e in &roster.ran {
            let alone: Vec<[Vec<f32>; 2]> = normal
                .iter()
                .map(|x| {
                    let (mut y, mut ly) = (vec![0.0; row_len], vec![0.0; row_len]);
                    e.ops.softmax(x, &mut y);
                    e.ops.log_softmax(x, &mut ly);
                    [y, ly]
                })
                .collect();
            for special in &specials {
                for at in [0, 5, ROWS - 1] {
                    let mut x = Vec::with_capacity(ROWS * row_len);
                    for (r, row) in normal.iter().enumerate() {
                        x.extend_from_slice(if r == at { special } else { row });
                    }
                    let mut y = vec![0.0; ROWS * row_len];
                    e.ops.softmax_rows(&x, &mut y, row_len);
                    let mut ly = vec![0.0; ROWS * row_len];
                    e.ops.log_softmax_rows(&x, &mut ly, row_len);
                    for (k, (out, what)) in [(&y, "softmax_rows"), (&ly, "log_softmax_rows")]
                        .into_iter()
                        .enumerate()
                    {
                        for row in (0..ROWS).filter(|&r| r != at) {
                            let got = &out[row * row_len..(row + 1) * row_len];
                            let want = &alone[row][k];
                            assert!(
                                got.iter()
                                    .zip(want.iter())
                                    .all(|(g, w)| g.to_bits() == w.to_bits()),
                                "{} {what} row_len={row_len}: special row {at} {special:?} changed neighbour row {row}: {got:?} vs {want:?}",
                                e.name
                            );
                        }
                    }
                    let mid = &y[at * row_len..(at + 1) * row_len];
                    if special.iter().any(|v| v.is_nan()) {
                        assert!(
                            mid.iter().all(|v| v.is_nan()),
                            "{}: NaN row gave {mid:?}",
                            e.name
                        );
                    } else {
                        assert!(
                            mid.iter().all(|v| !v.is_nan()),
                            "{}: row {special:?} gave {mid:?}",
                            e.name
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Sum to one
// ---------------------------------------------------------------------------

/// `|Σ y − 1| ≤ 1e-6` (summed in f64) at every length 1..=300 and the long
/// lengths, on every engine, for the ordinary families. For these inputs
/// the documented bound implies it: `Σ|y_i − r_i| ≤ 2^-23·Σ r_i(4 + |x_i − m|)`,
/// and the softmax-weighted mean of `|x − m|` is at most about 1 here, so
/// the bound is ≤ 5·2^-23 ≈ 6e-7.
#[test]
fn softmax_sums_to_one_at_every_length() {
    let roster = Roster::all();
    roster.announce("softmax_sums_to_one_at_every_length");
    let fams = [
        Family::Uniform,
        Family::NormalS1,
        Family::NormalS100,
        Family::AllEqual,
        Family::Dominant,
        Family::PartialMask,
    ];
    let mut worst = (0.0f64, String::new());
    let mut checked = 0;
    for n in all_lengths() {
        for fam in fams {
            let x = gen_row(fam, n, 3);
            for e in roster.ran.iter().filter(|e| e.runs(fam, n)) {
                let mut y = vec![0.0; n];
                e.ops.softmax(&x, &mut y);
                let dev = (y.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs();
                assert!(
                    dev <= 1e-6,
                    "{} {} n={n}: |Σy − 1| = {dev:e} > 1e-6",
                    e.name,
                    fam.name()
                );
                if dev > worst.0 {
                    worst = (dev, format!("{} {} n={n}", e.name, fam.name()));
                }
                checked += 1;
            }
        }
    }
    eprintln!(
        "sum to one: {checked} rows, worst |Σy − 1| = {:e} ({})",
        worst.0, worst.1
    );
    assert!(checked > 0);
}

/// One 2^24-element row on the fastest backend only (docs/ACCURACY.md: C ≤ 4 up to
/// 2^24): softmax within the bound everywhere and summing to 1 within 1e-6,
/// and logsumexp within its bound.
#[test]
fn row_of_2_pow_24_on_fastest_backend() {
    let roster = Roster::all();
    let e = roster.fastest();
    eprintln!("[row_of_2_pow_24_on_fastest_backend] engine: {}", e.name);
    let n = 1 << 24;
    let x = gen_row(Family::Uniform, n, 24);
    let r = reference::softmax(&x);
    let mut y = vec![f32::from_bits(POISON_BITS); n];
    e.ops.softmax(&x, &mut y);
    let rep = check_softmax_row(&x, &r, &y);
    let dev = (y.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs();
    eprintln!(
        "2^24 row on {}: softmax max {:.3} ULP (excess over |x-m| {:.3}), |Σy − 1| = {dev:e}",
        e.name, rep.max_ulp, rep.max_aux
    );
    assert!(rep.ok(), "2^24 softmax on {}: {:?}", e.name, rep.first);
    assert!(
        dev <= 1e-6,
        "2^24 softmax on {}: |Σy − 1| = {dev:e}",
        e.name
    );
    let lse = e.ops.logsumexp(&x);
    let rl = check_logsumexp(&x, reference::logsumexp(&x), &r, lse);
    assert!(rl.ok(), "2^24 logsumexp on {}: {:?}", e.name, rl.first);
}

/// A batch at the streaming size (`simd_softmax_kernels::plan::STREAM_MIN`
/// elements and more: every sweep recomputes the exp and writes with
/// non-temporal stores on AVX2) of rows shorter than the two-pass length:
/// each row within the bound, and bit-identical (NaN for NaN) to the same
/// row computed alone (which takes the plain, in-cache form). 1024 rows of 4099 (odd
/// tail) cycle through every input family, special rows included; in place
/// too. Every dispatched backend (quick mode: the fastest).
#[test]
fn streaming_batch_matches_rows_alone() {
    let roster = Roster::all();
    roster.announce("streaming_batch_matches_rows_alone");
    let mut stats = Stats::default();
    // 4093: the scratch form (rows of at most 4096 keep their exps in a
    // stack buffer); 4099: the recomputing form.
    for row_len in [4093, 4099] {
        streaming_batch(&roster, row_len, &mut stats);
    }
    stats.assert_clean("streaming_batch_matches_rows_alone");
}

fn streaming_batch(roster: &Roster, row_len: usize, stats: &mut Stats) {
    use simd_softmax_kernels::plan::{STREAM_MIN, TWO_PASS_MIN};
    let rows = STREAM_MIN.div_ceil(row_len);
    assert!(row_len < TWO_PASS_MIN && rows * row_len >= STREAM_MIN);
    let x = batch(rows, row_len, 7);
    // Quick mode (qemu, valgrind): the fastest backend only.
    let fastest = roster.fastest().name.clone();
    let engines = roster
        .ran
        .iter()
        .filter(|e| e.backend.is_some() && (!quick() || e.name == fastest));
    for e in engines {
        eprintln!(
            "[streaming_batch_matches_rows_alone] {} row_len={row_len}",
            e.name
        );
        let mut y = vec![f32::from_bits(POISON_BITS); x.len()];
        e.ops.softmax_rows(&x, &mut y, row_len);
        let mut inplace = x.clone();
        e.ops.softmax_rows_in_place(&mut inplace, row_len);
        let mut alone = vec![0.0f32; row_len];
        for (i, (xr, yr)) in x.chunks(row_len).zip(y.chunks(row_len)).enumerate() {
            e.ops.softmax(xr, &mut alone);
            // Bit-identical (a NaN's payload may differ: which NaN operand an
            // instruction propagates depends on the operand order LLVM chose).
            let eq = |p: &f32, q: &f32| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan());
            let same = |a: &[f32]| a.iter().zip(&alone).all(|(p, q)| eq(p, q));
            let first = |a: &[f32]| {
                a.iter()
                    .zip(&alone)
                    .position(|(p, q)| !eq(p, q))
                    .map(|j| (j, a[j], alone[j], xr[j]))
            };
            assert!(
                same(yr) && same(&inplace[i * row_len..(i + 1) * row_len]),
                "{}: streaming batch row {i} differs from the row alone: (index, batch, alone, x) \
                 out of place {:?}, in place {:?}",
                e.name,
                first(yr),
                first(&inplace[i * row_len..(i + 1) * row_len])
            );
            // The reference of every 16th row (the bound; identity covers the rest).
            if i % 16 == 0 {
                let r = Func::Softmax.reference(xr);
                let mut rep = Func::Softmax.check(xr, &r, yr, false);
                rep.first
                    .iter_mut()
                    .for_each(|m| *m = format!("{} streaming row {i}: {m}", e.name));
                stats.add(&e.name, row_len, "stream", &rep);
            }
        }
    }
}
