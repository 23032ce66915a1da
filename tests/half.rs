//! The half-precision edge (`f16`/`bf16` inputs and outputs), end to end:
//!
//! 1. Widening, exhaustively: all 65 536 patterns of each format through
//!    every target's conversion loop at every level the CPU runs, and the
//!    scalar `convert` functions, bit for bit against the `half` crate.
//! 2. Narrowing, exhaustively: all 2^32 f32 patterns through our scalar
//!    conversions (against `half`) and every target's hardware levels
//!    (against the scalar), plain and streaming, aligned and not; the
//!    portable level 0 (the scalar code itself) on a sample with the edge
//!    cases. In quick mode only the sample.
//! 3. Accuracy against the f64 reference of the widened input, for every
//!    (input, output) pair but f32 → f32, on every backend and the
//!    portable 16-lane kernel: the f32 bound plus one rounding to the
//!    output type, with a table of the max errors.
//! 4. Special rows (NaN, `+∞`, masks, finite extremes), exactly right in
//!    every pair.
//! 5. Batch invariance: a row's output is the same, bit for bit, alone, in
//!    a batch beside special rows, in place and at an unaligned offset.
//! 6. No access outside the slices: inputs and outputs flush against
//!    inaccessible pages.
//! 7. With `rayon`: the parallel functions give the single-thread bits.
//!
//! Why: the half paths add conversion loops per instruction set (F16C,
//! AVX-512 conversions, `vcvtne2ps2bf16`, NEON), tile-by-tile plumbing and
//! streaming stores, each with its own heads and tails; the f32 tests do
//! not reach any of it.

mod common;
#[macro_use]
mod half_support;

use half::{bf16, f16};
use half_support::{Engine, Rep, Table, Ty, engines, pair_name};
use simd_softmax::reference;
use simd_softmax_kernels::convert::{self, Format};
use simd_softmax_kernels::testing::Target;
use std::time::{Duration, Instant};

const HALVES: [Format; 2] = [Format::F16, Format::Bf16];

/// `half`'s widening of pattern `b` of format `f`, as f32 bits.
fn half_widen(f: Format, b: u16) -> u32 {
    match f {
        Format::F16 => f16::from_bits(b).to_f32().to_bits(),
        _ => bf16::from_bits(b).to_f32().to_bits(),
    }
}

/// Our scalar narrowing.
fn scalar_narrow(f: Format, x: f32) -> u16 {
    match f {
        Format::F16 => convert::f32_to_f16(x),
        _ => convert::f32_to_bf16(x),
    }
}

// ---------------------------------------------------------------------------
// 1. Widening
// ---------------------------------------------------------------------------

/// Written into outputs before a conversion: a pattern no widening makes
/// (a NaN with low bits set), so an unwritten element shows.
const WIDEN_POISON: u32 = 0x7fc0_1234;

#[test]
fn widening_every_pattern_is_exact_on_every_target_and_level() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut checked = 0usize;
    for f in HALVES {
        let want: Vec<u32> = all.iter().map(|&b| half_widen(f, b)).collect();
        for (&b, &w) in all.iter().zip(&want) {
            let got = match f {
                Format::F16 => convert::f16_to_f32(b),
                _ => convert::bf16_to_f32(b),
            };
            assert_eq!(got.to_bits(), w, "scalar {} widen {b:#06x}", f.name());
        }
        for t in common::targets("widening") {
            let max = t.convert_level(f).expect("available target");
            for level in 0..=max {
                // Whole range, then sub-slices starting 1..=7 elements in (the
                // heads and every tail length), then short slices.
                let mut cases: Vec<(usize, usize)> = (0..8).map(|o| (o, all.len() - o)).collect();
                cases.extend((1..=40).map(|n| (n * 977 % 60_000 + n % 8, n)));
                for (start, n) in cases {
                    let mut out = vec![f32::from_bits(WIDEN_POISON); n];
                    assert!(t.widen(f, level, &all[start..start + n], &mut out));
                    for (i, v) in out.iter().enumerate() {
                        let b = all[start + i];
                        assert_eq!(
                            v.to_bits(),
                            want[start + i],
                            "{} level {level} widen {} {b:#06x} (slice start {start}, len {n})",
                            t.name(),
                            f.name()
                        );
                    }
                    checked += n;
                }
                eprintln!(
                    "widen {} {} level {level}: all patterns exact",
                    t.name(),
                    f.name()
                );
            }
        }
    }
    eprintln!("widening: {checked} conversions checked");
}

// ---------------------------------------------------------------------------
// 2. Narrowing
// ---------------------------------------------------------------------------

/// Values per chunk of the 2^32 sweep.
const CHUNK: usize = 1 << 16;

/// The edge cases of narrowing: for every f32 exponent and both signs, the
/// mantissas at and around the round-to-nearest ties of both formats
/// (bf16 drops 16 bits, f16 13, more in its subnormal range), the extremes
/// and the quiet bit of NaN payloads; plus f16's overflow boundary 65520
/// and bf16's (2 − 2^-8)·2^127.
fn narrowing_edges() -> Vec<u32> {
    const MANT: [u32; 24] = [
        0, 1, 2, 0x0fff, 0x1000, 0x1001, 0x2000, 0x3000, 0x3001, 0x7fff, 0x8000, 0x8001, 0x1_8000,
        0x1_7fff, 0x20_0000, 0x3f_ffff, 0x40_0000, 0x40_0001, 0x7f_e000, 0x7f_efff, 0x7f_f000,
        0x7f_f001, 0x7f_8000, 0x7f_ffff,
    ];
    let mut v = vec![];
    for sign in [0, 0x8000_0000u32] {
        for e in 0..=255u32 {
            for m in MANT {
                v.push(sign | e << 23 | m);
            }
        }
        for b in [
            0x477f_f000u32,
            0x477f_efff,
            0x477f_f001,
            0x477f_e000,
            0x7f7f_8000,
            0x7f7f_7fff,
        ] {
            v.push(sign | b);
        }
        // Every subnormal-f16 exponent's ties: q·2^-24 + 2^-25 for small q.
        for q in 0..64u32 {
            let x = (q as f64 + 0.5) * 2f64.powi(-24);
            let b = (x as f32).to_bits();
            v.extend([sign | b, sign | (b - 1), sign | (b + 1)]);
        }
    }
    v
}

/// Per (target, format, level): elements and time of the narrowing loop.
type Timings = std::collections::BTreeMap<(&'static str, &'static str, u8), (usize, Duration)>;

/// Narrows `x` with `t` at `level` into `y` (plain or streaming), at the
/// sub-slice `[off..]` and then the head `[..off]`, and compares with
/// `want`; returns the first mismatch.
#[allow(clippy::too_many_arguments)]
fn narrow_and_compare(
    t: Target,
    f: Format,
    level: u8,
    x: &[f32],
    want: &[u16],
    y: &mut [u16],
    off: usize,
    stream: bool,
) -> Option<String> {
    y.fill(0x7e5a);
    assert!(t.narrow(f, level, &x[off..], &mut y[off..], stream));
    assert!(t.narrow(f, level, &x[..off], &mut y[..off], stream));
    let i = y.iter().zip(want).position(|(a, b)| a != b)?;
    Some(format!(
        "{} {} level {level} (stream {stream}, offset {off}): narrow {:#010x} ({:e}) gave {:#06x}, scalar {:#06x}",
        t.name(),
        f.name(),
        x[i].to_bits(),
        x[i],
        y[i],
        want[i]
    ))
}

#[test]
fn narrowing_every_pattern_matches_half_and_the_hardware_matches_the_scalar() {
    let ts = common::targets("narrowing");
    let quick = common::quick();

    // The sample: every 4099th pattern and the edge cases, at every level
    // (level 0 only here), plain and streaming, at offsets 0..=7.
    let mut sample: Vec<u32> = (0..=u32::MAX).step_by(4099).collect();
    sample.extend(narrowing_edges());
    let xs: Vec<f32> = sample.iter().map(|&b| f32::from_bits(b)).collect();
    for f in HALVES {
        let want: Vec<u16> = xs.iter().map(|&x| scalar_narrow(f, x)).collect();
        for (&x, &w) in xs.iter().zip(&want) {
            let h = match f {
                Format::F16 => f16::from_f32(x).to_bits(),
                _ => bf16::from_f32(x).to_bits(),
            };
            assert_eq!(
                w,
                h,
                "scalar {} narrow {:#010x} vs half",
                f.name(),
                x.to_bits()
            );
        }
        let mut y = vec![0u16; xs.len()];
        for &t in &ts {
            for level in 0..=t.convert_level(f).unwrap() {
                for (k, stream) in [false, true].into_iter().enumerate() {
                    for off in [0, 1 + k, 3 + 2 * k, 7] {
                        if let Some(e) =
                            narrow_and_compare(t, f, level, &xs, &want, &mut y, off, stream)
                        {
                            panic!("sample: {e}");
                        }
                    }
                }
            }
        }
        eprintln!(
            "narrowing sample ({} patterns) {}: every target and level equal to the scalar, scalar equal to half",
            xs.len(),
            f.name()
        );
    }

    if quick {
        eprintln!(
            "narrowing: 2^32 sweep skipped ({} is set, quick mode: it takes minutes under emulation)",
            common::QUICK_ENV
        );
        return;
    }

    // The sweep: chunk c holds patterns c·2^16 .. (c+1)·2^16; two threads
    // take alternate chunks. Hardware levels run on every chunk, streaming
    // on every fourth, at an offset (head and tail) on half of them.
    let hw: Vec<(Target, Format, u8)> = ts
        .iter()
        .flat_map(|&t| {
            HALVES
                .into_iter()
                .flat_map(move |f| (1..=t.convert_level(f).unwrap()).map(move |l| (t, f, l)))
        })
        .collect();
    for (t, f, l) in &hw {
        eprintln!("sweep: {} {} level {l}", t.name(), f.name());
    }
    let start = Instant::now();
    let chunks = (1usize << 32) / CHUNK;
    let results: Vec<(Timings, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|tid| {
                let hw = &hw;
                s.spawn(move || {
                    let mut timings = Timings::new();
                    let mut fails = vec![];
                    let mut x = vec![0f32; CHUNK];
                    let mut want = [vec![0u16; CHUNK], vec![0u16; CHUNK]];
                    let mut y = vec![0u16; CHUNK];
                    for c in (tid..chunks).step_by(2) {
                        let base = (c * CHUNK) as u32;
                        for (i, v) in x.iter_mut().enumerate() {
                            *v = f32::from_bits(base + i as u32);
                        }
                        let t0 = Instant::now();
                        for (k, f) in HALVES.into_iter().enumerate() {
                            for (w, &v) in want[k].iter_mut().zip(&x) {
                                *w = scalar_narrow(f, v);
                            }
                        }
                        let t1 = Instant::now();
                        for (i, &v) in x.iter().enumerate() {
                            let (a, b) = (f16::from_f32(v).to_bits(), bf16::from_f32(v).to_bits());
                            if (a != want[0][i] || b != want[1][i]) && fails.len() < 8 {
                                fails.push(format!(
                                    "scalar vs half at {:#010x}: f16 {:#06x}/{a:#06x}, bf16 {:#06x}/{b:#06x}",
                                    v.to_bits(),
                                    want[0][i],
                                    want[1][i]
                                ));
                            }
                        }
                        let t2 = Instant::now();
                        let e = timings.entry(("scalar", "f16+bf16", 0)).or_default();
                        *e = (e.0 + 2 * CHUNK, e.1 + (t1 - t0));
                        let e = timings.entry(("half crate", "f16+bf16", 0)).or_default();
                        *e = (e.0 + 2 * CHUNK, e.1 + (t2 - t1));
                        let stream = c % 4 == 1;
                        let off = if c % 2 == 1 { 1 + c / 2 % 7 } else { 0 };
                        for &(t, f, level) in hw {
                            let k = (f == Format::Bf16) as usize;
                            let t0 = Instant::now();
                            let r = narrow_and_compare(t, f, level, &x, &want[k], &mut y, off, stream);
                            let e = timings.entry((t.name(), f.name(), level)).or_default();
                            *e = (e.0 + CHUNK, e.1 + t0.elapsed());
                            if let Some(m) = r
                                && fails.len() < 8
                            {
                                fails.push(m);
                            }
                        }
                    }
                    (timings, fails)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = Timings::new();
    let mut fails = vec![];
    for (t, f) in results {
        for (k, (n, d)) in t {
            let e = total.entry(k).or_default();
            *e = (e.0 + n, e.1 + d);
        }
        fails.extend(f);
    }
    for ((t, f, l), (n, d)) in &total {
        eprintln!(
            "sweep {t:<11} {f:<8} level {l}: {n} elements, {:.2} s (summed over both threads)",
            d.as_secs_f64()
        );
    }
    eprintln!(
        "sweep: 2^32 patterns, {:.1} s wall",
        start.elapsed().as_secs_f64()
    );
    assert!(
        fails.is_empty(),
        "narrowing sweep mismatches:\n{}",
        fails.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 3. Accuracy against the f64 reference
// ---------------------------------------------------------------------------

/// `x` copied into a fresh buffer at element offset `off`, and an output
/// buffer of the same shape poisoned with `poison`, with `GUARD` elements
/// after it.
const GUARD: usize = 4;

fn placed<T: Ty>(x: &[T], off: usize) -> Vec<T> {
    let mut b = vec![T::from_bits32(0x7e5a_7e5a); off + x.len() + GUARD];
    b[off..off + x.len()].copy_from_slice(x);
    b
}

/// Panics unless everything outside `[off, off + n)` still holds the poison.
fn assert_untouched<T: Ty>(b: &[T], off: usize, n: usize, what: &str) {
    let p = T::from_bits32(0x7e5a_7e5a).to_bits32();
    for (i, v) in b.iter().enumerate() {
        if (i < off || i >= off + n) && v.to_bits32() != p {
            panic!(
                "{what}: wrote outside its slice at {i} (slice [{off}, {}))",
                off + n
            );
        }
    }
}

/// Rows of `n` elements of `family`, `rows` of them, as the input type.
fn input_rows<I: Ty>(family: common::Family, n: usize, rows: usize) -> (Vec<I>, Vec<f32>) {
    let raw = common::gen_row(family, n * rows, 0x4a1f ^ n as u64);
    let x: Vec<I> = raw.iter().map(|&v| I::from_f32(v)).collect();
    let w = x.iter().map(|v| v.to_f32()).collect();
    (x, w)
}

fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=70).collect();
    v.extend([100, 255, 256, 257, 1000, 4095, 4096, 4097, 10_000]);
    if !common::quick() {
        v.extend([32_000, 128_256]);
    }
    v
}

fn differential_pair<I: Ty, O: Ty>(engines: &[Engine], table: &mut Table) {
    let pair = pair_name::<I, O>();
    let same = I::FORMAT == O::FORMAT;
    for n in lengths() {
        let families: &[common::Family] = if n <= 4097 {
            &common::Family::ALL
        } else {
            use common::Family::*;
            &[
                Uniform,
                NormalS1,
                NormalS100,
                Dominant,
                PartialMask,
                Extremes,
            ]
        };
        for (fi, &fam) in families.iter().enumerate() {
            let rows = if n <= 300 { 3 } else { 2 - (n > 4097) as usize };
            let (x, xw) = input_rows::<I>(fam, n, rows);
            let rs: Vec<Vec<f64>> = xw.chunks(n).map(reference::softmax).collect();
            let rl: Vec<Vec<f64>> = xw.chunks(n).map(common::log_softmax_ref).collect();
            let off = 1 + (n + fi) % 3;
            let ctx = format!("n={n} {} rows={rows} off={off}", fam.name());
            for e in engines {
                if matches!(e.eng, half_support::Eng::Tgt(_))
                    && n > 32_000
                    && !matches!(fam, common::Family::Uniform | common::Family::PartialMask)
                {
                    continue;
                }
                for log in [false, true] {
                    let (what1, whatr, whati) = match log {
                        false => ("softmax", "softmax_rows", "softmax(_rows)_in_place"),
                        true => ("log_softmax", "log_softmax_rows", "log_(rows)_in_place"),
                    };
                    let check = |y: &[O], r: usize| -> Rep {
                        let xr = &xw[r * n..(r + 1) * n];
                        match log {
                            false => half_support::check_softmax(xr, &rs[r], y),
                            true => half_support::check_log_softmax(xr, &rl[r], y),
                        }
                    };
                    // One row, at an unaligned offset.
                    let xb = placed(&x[..n], off);
                    let mut yb = placed(&vec![O::default(); n], off);
                    yb[off..off + n].fill(O::from_bits32(0x7fc0_1234));
                    e.single(&xb[off..off + n], &mut yb[off..off + n], log);
                    assert_untouched(&yb, off, n, &format!("{} {pair} {what1} {ctx}", e.name));
                    table.add(&e.name, &pair, what1, &ctx, &check(&yb[off..off + n], 0));
                    // Every row through the rows form.
                    let xb = placed(&x, off);
                    let mut yb = placed(&vec![O::default(); n * rows], off);
                    e.rows(
                        &xb[off..off + n * rows],
                        &mut yb[off..off + n * rows],
                        n,
                        log,
                    );
                    assert_untouched(&yb, off, n * rows, &format!("{} {pair} {whatr}", e.name));
                    for r in 0..rows {
                        let y = &yb[off + r * n..off + (r + 1) * n];
                        table.add(&e.name, &pair, whatr, &ctx, &check(y, r));
                    }
                    // In place, for the same-type pairs: one row, then the rows.
                    if same {
                        let conv = |d: &[I]| -> Vec<O> {
                            d.iter().map(|v| O::from_bits32(v.to_bits32())).collect()
                        };
                        let mut d = placed(&x[..n], off);
                        if e.in_place(&mut d[off..off + n], None, log) {
                            let y = conv(&d[off..off + n]);
                            table.add(&e.name, &pair, whati, &ctx, &check(&y, 0));
                            let mut d = placed(&x, off);
                            e.in_place(&mut d[off..off + n * rows], Some(n), log);
                            for r in 0..rows {
                                let y = conv(&d[off + r * n..off + (r + 1) * n]);
                                table.add(&e.name, &pair, whati, &ctx, &check(&y, r));
                            }
                        }
                    }
                }
                // logsumexp of the half inputs, once per input type.
                if I::FORMAT != Format::F32 && O::FORMAT == Format::F32 {
                    for r in 0..rows {
                        let xr = &xw[r * n..(r + 1) * n];
                        let Some(got) = e.logsumexp(&x[r * n..(r + 1) * n]) else {
                            break;
                        };
                        let rep =
                            common::check_logsumexp(xr, reference::logsumexp(xr), &rs[r], got);
                        let mut h = Rep {
                            elems: 1,
                            max_ulp: rep.max_ulp,
                            max_ratio: rep.max_ratio,
                            ..Rep::default()
                        };
                        for m in rep.first {
                            h.fail(m);
                        }
                        let what = "logsumexp (ULP_f32)";
                        table.add(&e.name, I::FORMAT.name(), what, &ctx, &h);
                    }
                }
            }
        }
    }
}

#[test]
fn half_pairs_match_the_f64_reference_on_every_backend() {
    let engines = engines("differential");
    for e in &engines {
        if matches!(e.eng, half_support::Eng::Tgt(_)) {
            eprintln!(
                "  {}: through Target::softmax_rows_elems (no in-place or logsumexp entry; \
                 rows of 128256 for two families)",
                e.name
            );
        }
    }
    if common::quick() {
        eprintln!("  quick mode: lengths 32000 and 128256 skipped");
    }
    let t0 = Instant::now();
    let mut table = Table::default();
    each_pair!(differential_pair(&engines, &mut table));
    table.print("half pairs vs the f64 reference");
    eprintln!("differential: {:.1} s", t0.elapsed().as_secs_f64());
    table.assert_clean("half pairs vs the f64 reference");
}

// ---------------------------------------------------------------------------
// 4. Special rows
// ---------------------------------------------------------------------------

/// NaN patterns of the input type: quiet, negative, signalling with a
/// payload, all payload bits.
fn nans<I: Ty>() -> [I; 4] {
    let b: [u32; 4] = match I::FORMAT {
        Format::F32 => [0x7fc0_0000, 0xffc0_0000, 0x7f80_0001, 0xffbf_ffff],
        Format::F16 => [0x7e00, 0xfe00, 0x7c01, 0xfdff],
        Format::Bf16 => [0x7fc0, 0xffc0, 0x7f81, 0xffbf],
    };
    b.map(I::from_bits32)
}

/// The special rows of the input type, with names: NaN anywhere (with a
/// `+∞` beside it too), 1..=3 `+∞` entries, full and partial `−∞` masks,
/// and finite extremes (± the type's max and mixes).
fn special_rows<I: Ty>() -> Vec<(String, Vec<I>)> {
    let v = |x: f32| I::from_f32(x);
    let (inf, ninf, max) = (v(f32::INFINITY), v(f32::NEG_INFINITY), v(I::MAX));
    let nmax = v(-I::MAX);
    let mut out = vec![];
    for n in [1usize, 2, 3, 8, 17, 33, 100, 4097] {
        let base: Vec<I> = (0..n).map(|i| v((i % 13) as f32 * 0.75 - 4.0)).collect();
        let spots = [0, n / 2, n - 1];
        for (k, nan) in nans::<I>().into_iter().enumerate() {
            let mut x = base.clone();
            x[spots[k % 3]] = nan;
            out.push((
                format!("NaN {:#x} at {} (n={n})", nan.to_bits32(), spots[k % 3]),
                x,
            ));
        }
        if n > 1 {
            let mut x = base.clone();
            x[0] = inf;
            x[n - 1] = nans::<I>()[2];
            out.push((format!("+inf and NaN (n={n})"), x));
        }
        for k in 1..=3.min(n) {
            let mut x = base.clone();
            for j in 0..k {
                x[(j * 7 + 1) % n] = inf;
            }
            for j in (0..n).step_by(5) {
                if x[j].to_f32() != f32::INFINITY {
                    x[j] = ninf;
                }
            }
            let k = x.iter().filter(|v| v.to_f32() == f32::INFINITY).count();
            out.push((format!("{k} x +inf (n={n})"), x));
        }
        out.push((format!("full mask (n={n})"), vec![ninf; n]));
        let mut x = base.clone();
        for j in (0..n).filter(|j| j % 2 == 1 || *j == n - 1) {
            x[j] = ninf;
        }
        if n > 1 {
            x[0] = base[0];
            out.push((format!("partial mask (n={n})"), x));
        }
        out.push((format!("all max (n={n})"), vec![max; n]));
        let mix: Vec<I> = (0..n)
            .map(|i| [max, nmax, v(0.0), v(1.0), nmax][i % 5])
            .collect();
        out.push((format!("±max mix (n={n})"), mix));
        let mut x = vec![nmax; n];
        x[n / 2] = v(-I::MAX * 0.5);
        out.push((format!("-max row (n={n})"), x));
        let mut x = base.clone();
        x[n - 1] = max;
        out.push((format!("one max (n={n})"), x));
    }
    out
}

fn special_pair<I: Ty, O: Ty>(engines: &[Engine], table: &mut Table) {
    let pair = pair_name::<I, O>();
    for (name, x) in special_rows::<I>() {
        let n = x.len();
        let xw: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
        let (rs, rl) = (reference::softmax(&xw), common::log_softmax_ref(&xw));
        for e in engines {
            for log in [false, true] {
                let check = |y: &[O]| match log {
                    false => half_support::check_softmax(&xw, &rs, y),
                    true => half_support::check_log_softmax(&xw, &rl, y),
                };
                let what = if log { "log_softmax" } else { "softmax" };
                let mut y = vec![O::from_bits32(0x7fc0_1234); n];
                e.single(&x, &mut y, log);
                table.add(&e.name, &pair, what, &name, &check(&y));
                let mut y2 = vec![O::default(); n];
                e.rows(&x, &mut y2, n, log);
                table.add(&e.name, &pair, what, &name, &check(&y2));
                if I::FORMAT == O::FORMAT {
                    let mut d = x.clone();
                    if e.in_place(&mut d, None, log) {
                        let y: Vec<O> = d.iter().map(|v| O::from_bits32(v.to_bits32())).collect();
                        table.add(&e.name, &pair, what, &name, &check(&y));
                    }
                }
            }
            if O::FORMAT == Format::F32
                && let Some(got) = e.logsumexp(&x)
            {
                let r = reference::logsumexp(&xw);
                let rep = common::check_logsumexp(&xw, r, &rs, got);
                let mut h = Rep {
                    elems: 1,
                    ..Rep::default()
                };
                for m in rep.first {
                    h.fail(m);
                }
                table.add(&e.name, I::FORMAT.name(), "logsumexp", &name, &h);
            }
        }
    }
}

#[test]
fn special_rows_are_exact_in_every_pair() {
    let engines = engines("special rows");
    let mut table = Table::default();
    each_pair!(special_pair(&engines, &mut table));
    table.print("special rows");
    table.assert_clean("special rows");
}

// ---------------------------------------------------------------------------
// 5. Batch invariance
// ---------------------------------------------------------------------------

fn invariance_pair<I: Ty, O: Ty>(engines: &[Engine], checked: &mut usize) {
    let pair = pair_name::<I, O>();
    let mut lens = vec![8usize, 32, 64, 100, 4096, 5000];
    if !common::quick() {
        lens.push(32_000);
    }
    let bits = |y: &[O]| -> Vec<u32> { y.iter().map(|v| v.to_bits32()).collect() };
    for w in lens {
        let (t, _) = input_rows::<I>(common::Family::NormalS10, w, 1);
        let (a, _) = input_rows::<I>(common::Family::Dominant, w, 1);
        let (nan, _) = input_rows::<I>(common::Family::Nan, w, 1);
        let (pinf, _) = input_rows::<I>(common::Family::PosInf, w, 1);
        let mask = vec![I::from_f32(f32::NEG_INFINITY); w];
        let (pm, _) = input_rows::<I>(common::Family::PartialMask, w, 1);
        let neighbours = [a, nan, mask, pinf, pm];
        for e in engines {
            for log in [false, true] {
                let alone = |x: &[I]| -> Vec<u32> {
                    let mut y = vec![O::default(); w];
                    e.single(x, &mut y, log);
                    bits(&y)
                };
                let want_t = alone(&t);
                let want_n: Vec<Vec<u32>> = neighbours.iter().map(|x| alone(x)).collect();
                for pos in [0, 2, neighbours.len()] {
                    let mut rows: Vec<&[I]> = neighbours.iter().map(|v| v.as_slice()).collect();
                    rows.insert(pos, &t);
                    let batch: Vec<I> = rows.concat();
                    let mut wants = want_n.clone();
                    wants.insert(pos, want_t.clone());
                    let ctx = |how: &str| {
                        format!(
                            "{} {pair} log={log} w={w}: row at {pos} of a batch, {how}",
                            e.name
                        )
                    };
                    for off in [0, 1 + pos % 3] {
                        let xb = placed(&batch, off);
                        let mut yb = placed(&vec![O::default(); batch.len()], off);
                        e.rows(
                            &xb[off..off + batch.len()],
                            &mut yb[off..off + batch.len()],
                            w,
                            log,
                        );
                        assert_untouched(&yb, off, batch.len(), &ctx("bounds"));
                        for (r, want) in wants.iter().enumerate() {
                            let got = bits(&yb[off + r * w..off + (r + 1) * w]);
                            assert!(
                                got == *want,
                                "{}",
                                ctx(&format!("offset {off}: row {r} differs from alone"))
                            );
                            *checked += w;
                        }
                    }
                    if I::FORMAT == O::FORMAT {
                        let mut d = placed(&batch, 1);
                        if e.in_place(&mut d[1..1 + batch.len()], Some(w), log) {
                            for (r, want) in wants.iter().enumerate() {
                                let got: Vec<u32> = d[1 + r * w..1 + (r + 1) * w]
                                    .iter()
                                    .map(|v| v.to_bits32())
                                    .collect();
                                assert!(
                                    got == *want,
                                    "{}",
                                    ctx(&format!("in place: row {r} differs"))
                                );
                            }
                            let mut d = t.clone();
                            e.in_place(&mut d, None, log);
                            let got: Vec<u32> = d.iter().map(|v| v.to_bits32()).collect();
                            assert!(got == want_t, "{}", ctx("single in place differs"));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn half_rows_are_batch_invariant_bit_for_bit() {
    let engines = engines("batch invariance");
    if common::quick() {
        eprintln!("  quick mode: rows of 32000 skipped");
    }
    let mut checked = 0;
    each_pair!(invariance_pair(&engines, &mut checked));
    eprintln!("batch invariance: {checked} elements equal to the row alone");
}

// ---------------------------------------------------------------------------
// 6. Guard pages
// ---------------------------------------------------------------------------

#[cfg(target_os = "linux")]
mod fenced {
    use std::ffi::c_void;

    // SAFETY: the C library's `mmap`, `mprotect`, `munmap` and `sysconf`,
    // with their Linux signatures on 64-bit targets.
    unsafe extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: i32,
            flags: i32,
            fd: i32,
            off: i64,
        ) -> *mut c_void;
        fn mprotect(addr: *mut c_void, len: usize, prot: i32) -> i32;
        fn munmap(addr: *mut c_void, len: usize) -> i32;
        fn sysconf(name: i32) -> i64;
    }

    /// `[guard page][data pages][guard page]`, both guards `PROT_NONE`
    /// (the mechanism of `tests/guard_pages.rs`, for any element size).
    pub struct Fenced {
        base: *mut u8,
        total: usize,
        data: *mut u8,
        bytes: usize,
    }

    impl Fenced {
        pub fn new(bytes: usize) -> Fenced {
            // SAFETY: no preconditions (_SC_PAGESIZE = 30).
            let page = unsafe { sysconf(30) };
            assert!(page > 0);
            let page = page as usize;
            let data_bytes = bytes.div_ceil(page).max(1) * page;
            let total = data_bytes + 2 * page;
            // SAFETY: a fresh private anonymous mapping (PROT_READ|WRITE,
            // MAP_PRIVATE|MAP_ANONYMOUS), checked against MAP_FAILED.
            let base = unsafe { mmap(std::ptr::null_mut(), total, 3, 0x22, -1, 0) };
            assert!(base as isize != -1 && !base.is_null(), "mmap failed");
            let base = base as *mut u8;
            // SAFETY: whole pages inside the mapping just made.
            unsafe {
                assert_eq!(mprotect(base as *mut c_void, page, 0), 0);
                assert_eq!(
                    mprotect(base.add(page + data_bytes) as *mut c_void, page, 0),
                    0
                );
            }
            Fenced {
                base,
                total,
                // SAFETY: inside the mapping, page-aligned.
                data: unsafe { base.add(page) },
                bytes: data_bytes,
            }
        }

        /// `values` copied to end flush against the trailing guard page
        /// (`at_end`) or to start right after the leading one.
        pub fn place<T: Copy>(&mut self, values: &[T], at_end: bool) -> &mut [T] {
            let size = std::mem::size_of::<T>();
            let cap = self.bytes / size;
            let n = values.len();
            assert!(n <= cap);
            let start = if at_end { cap - n } else { 0 };
            // SAFETY: `start..start + n` elements lie in the data pages, which
            // only this `Fenced` owns (page-aligned, so `T`-aligned); the
            // borrow of `self` keeps the slice unique and alive.
            let s = unsafe { std::slice::from_raw_parts_mut((self.data as *mut T).add(start), n) };
            s.copy_from_slice(values);
            s
        }
    }

    impl Drop for Fenced {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { munmap(self.base as *mut c_void, self.total) };
        }
    }
}

#[cfg(target_os = "linux")]
fn guard_pair<I: Ty, O: Ty>(engines: &[Engine], lens: &[usize], calls: &mut usize) {
    use fenced::Fenced;
    let (mut fx, mut fy) = (Fenced::new(4 * 8200), Fenced::new(4 * 8200));
    for &n in lens {
        let (x, _) = input_rows::<I>(common::Family::Uniform, n.max(1), 1);
        let x = &x[..n];
        let w = (1..=n.min(7)).rev().find(|d| n % d == 0).unwrap_or(1);
        for e in engines {
            for (ax, ay) in [(true, true), (false, false), (true, false), (false, true)] {
                for log in [false, true] {
                    let xs = fx.place(x, ax);
                    let ys = fy.place(&vec![O::default(); n], ay);
                    e.single::<I, O>(xs, ys, log);
                    if n > 0 {
                        e.rows::<I, O>(xs, ys, w, log);
                        e.rows::<I, O>(xs, ys, n, log);
                    }
                    *calls += 3;
                    if ax == ay {
                        let d = fx.place(x, ax);
                        e.in_place(d, None, log);
                        if n > 0 {
                            e.in_place(d, Some(w), log);
                        }
                    }
                }
                std::hint::black_box(e.logsumexp::<I>(fx.place(x, ax)));
            }
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn half_pairs_stay_inside_their_slices() {
    let engines = engines("guard pages");
    let mut lens: Vec<usize> = (0..=40).collect();
    lens.extend([4095, 4096, 4097, 8193]);
    let mut calls = 0;
    each_pair!(guard_pair(&engines, &lens, &mut calls));
    eprintln!("guard pages: {calls} calls with the slices flush against PROT_NONE pages");
}

// ---------------------------------------------------------------------------
// 7. Parallel
// ---------------------------------------------------------------------------

#[cfg(feature = "rayon")]
fn parallel_pair<I: Ty, O: Ty>(engines: &[Engine], checked: &mut usize) {
    let pair = pair_name::<I, O>();
    let bits = |y: &[O]| -> Vec<u32> { y.iter().map(|v| v.to_bits32()).collect() };
    for e in engines {
        let half_support::Eng::Api(sm) = &e.eng else {
            continue;
        };
        for (w, rows) in [(100usize, 1000usize), (4096, 40), (5000, 3)] {
            let (mut x, _) = input_rows::<I>(common::Family::NormalS10, w, rows);
            x[w / 2] = I::from_bits32(0x7fc0_7fc0);
            x[w..2 * w].fill(I::from_f32(f32::NEG_INFINITY));
            let (mut a, mut b) = (vec![O::default(); x.len()], vec![O::default(); x.len()]);
            sm.softmax_rows(&x, &mut a, w).unwrap();
            sm.par_softmax_rows(&x, &mut b, w).unwrap();
            assert!(
                bits(&a) == bits(&b),
                "{} {pair} par_softmax_rows w={w}",
                e.name
            );
            sm.log_softmax_rows(&x, &mut a, w).unwrap();
            sm.par_log_softmax_rows(&x, &mut b, w).unwrap();
            assert!(
                bits(&a) == bits(&b),
                "{} {pair} par_log_softmax_rows w={w}",
                e.name
            );
            *checked += 2 * x.len();
        }
        let mut ns = vec![1000usize, 70_000];
        if !common::quick() {
            ns.push((1 << 21) + 5);
        }
        for n in ns {
            let (x, _) = input_rows::<I>(common::Family::NormalS10, n, 1);
            let (mut a, mut b) = (vec![O::default(); n], vec![O::default(); n]);
            sm.softmax(&x, &mut a).unwrap();
            sm.par_softmax(&x, &mut b).unwrap();
            assert!(bits(&a) == bits(&b), "{} {pair} par_softmax n={n}", e.name);
            *checked += n;
        }
    }
}

#[cfg(feature = "rayon")]
#[test]
fn parallel_half_pairs_equal_the_single_thread_bits() {
    let engines = engines("parallel");
    if common::quick() {
        eprintln!("  quick mode: par_softmax at 2^21 + 5 skipped");
    }
    let mut checked = 0;
    each_pair!(parallel_pair(&engines, &mut checked));
    eprintln!("parallel: {checked} elements equal to the single-thread call");
}
