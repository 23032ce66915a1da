//! One row, one answer (batch invariance): on one backend, a row's result is
//! bit-for-bit the same whatever the call that computes it. For every
//! engine and every regime a row can take (short rows of 1 to 4 vectors
//! and AVX-512's narrow rows, the pipeline, its streaming form, two-pass
//! rows), each row computed alone is compared with the same row
//!
//! - in batches of several sizes, at every position, beside special rows
//!   (NaN, `+∞`, fully masked, partly masked);
//! - in place, and with the input and the output offset by 1..3 floats;
//! - through the family functions that compute the same math:
//!   `softmax_scaled(x, 1.0)`, `softmax_of_combination(&[(1.0, x)])`;
//! - split over threads (`par_*`, feature `rayon`);
//!
//! and the stages: a test-only input stage (bf16 bit patterns) through every
//! regime equals the f32 softmax of the widened values, the scaled stage at
//! `α = 1` equals plain softmax, and the AVX2 `asm!` loop equals its
//! intrinsics twin bit for bit.

mod common;

use common::{Family, bits, gen_row, quick};
use simd_softmax::{Backend, Softmax};
use simd_softmax_kernels::plan::{Regime, STREAM_MIN, TWO_PASS_MIN};
use simd_softmax_kernels::testing::Target;
use std::collections::BTreeSet;

/// The functions compared, on one engine.
trait Engine {
    fn name(&self) -> String;
    fn target(&self) -> Target;
    fn rows(&self, log: bool, x: &[f32], y: &mut [f32], w: usize);
    fn rows_in_place(&self, log: bool, x: &mut [f32], w: usize);
    fn scaled_rows(&self, x: &[f32], y: &mut [f32], w: usize, alpha: f32);
    fn combination(&self, terms: &[(f32, &[f32])], y: &mut [f32]);
}

impl Engine for Softmax {
    fn name(&self) -> String {
        self.backend().name().to_string()
    }
    fn target(&self) -> Target {
        match self.backend() {
            Backend::Scalar => Target::Scalar,
            Backend::Avx2 => Target::Avx2,
            Backend::Avx512 => Target::Avx512,
            Backend::Neon => Target::Neon,
            b => unreachable!("no test target for backend {b}"),
        }
    }
    fn rows(&self, log: bool, x: &[f32], y: &mut [f32], w: usize) {
        match log {
            false => self.softmax_rows(x, y, w).unwrap(),
            true => self.log_softmax_rows(x, y, w).unwrap(),
        }
    }
    fn rows_in_place(&self, log: bool, x: &mut [f32], w: usize) {
        match log {
            false => self.softmax_rows_in_place(x, w).unwrap(),
            true => self.log_softmax_rows_in_place(x, w).unwrap(),
        }
    }
    fn scaled_rows(&self, x: &[f32], y: &mut [f32], w: usize, alpha: f32) {
        self.softmax_scaled_rows(x, y, w, alpha).unwrap()
    }
    fn combination(&self, terms: &[(f32, &[f32])], y: &mut [f32]) {
        self.softmax_of_combination(terms, y).unwrap()
    }
}

#[cfg(target_arch = "x86_64")]
impl Engine for &'static dyn simd_softmax_kernels::portable::DynKernel {
    fn name(&self) -> String {
        "portable16".to_string()
    }
    fn target(&self) -> Target {
        Target::Portable16
    }
    fn rows(&self, log: bool, x: &[f32], y: &mut [f32], w: usize) {
        match log {
            false => self.softmax_rows(x, y, w),
            true => self.log_softmax_rows(x, y, w),
        }
    }
    fn rows_in_place(&self, log: bool, x: &mut [f32], w: usize) {
        match log {
            false => self.softmax_rows_in_place(x, w),
            true => self.log_softmax_rows_in_place(x, w),
        }
    }
    fn scaled_rows(&self, x: &[f32], y: &mut [f32], w: usize, alpha: f32) {
        self.softmax_scaled_rows(x, y, w, alpha)
    }
    fn combination(&self, terms: &[(f32, &[f32])], y: &mut [f32]) {
        self.softmax_of_combination(terms, y)
    }
}

/// Every engine this build and CPU run; prints the ones skipped.
fn engines(test: &str) -> Vec<Box<dyn Engine>> {
    let mut out: Vec<Box<dyn Engine>> = Vec::new();
    for &b in Backend::ALL {
        match Softmax::with_backend(b) {
            Ok(sm) => out.push(Box::new(sm)),
            Err(_) => println!(
                "[{test}] {}: skipped, {}",
                b.name(),
                b.unavailable_reason().unwrap()
            ),
        }
    }
    #[cfg(target_arch = "x86_64")]
    if quick() {
        println!("[{test}] portable16: skipped, quick mode");
    } else {
        out.push(Box::new(simd_softmax_kernels::portable::lanes16_dyn()));
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("[{test}] portable16: skipped, built on x86-64 only");
    let names: Vec<String> = out.iter().map(|e| e.name()).collect();
    println!("[{test}] ran: {}", names.join(", "));
    out
}

/// Asserts `got` is bit-identical to `want`, naming the first difference.
#[track_caller]
fn same(got: &[f32], want: &[f32], what: &str) {
    if bits(got) != bits(want) {
        let i = (0..got.len())
            .find(|&i| got[i].to_bits() != want[i].to_bits())
            .unwrap();
        panic!(
            "{what}: element {i}: {:e} ({:#x}) != {:e} ({:#x})",
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}

/// Row lengths whose rows take every short regime on every lane count
/// (1 to 4 vectors of 1, 4, 8 and 16 lanes, whole and with tails, and
/// AVX-512's rows of 8 or fewer) and the pipeline.
const ROW_LENS: [usize; 22] = [
    1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65, 100, 129, 1000, 4099,
];

/// The row of a batch at `i`: ordinary rows of a few families, and the
/// special rows at some positions.
fn batch_row(i: usize, w: usize, salt: u64) -> Vec<f32> {
    let fam = match (i + salt as usize) % 9 {
        0 => Family::Nan,
        1 => Family::PosInf,
        2 => Family::FullMask,
        3 => Family::PartialMask,
        4 => Family::NormalS10,
        5 => Family::Dominant,
        6 => Family::Huge,
        _ => Family::Uniform,
    };
    gen_row(fam, w, salt ^ (i as u64) << 20)
}

fn batch(rows: usize, w: usize, salt: u64) -> Vec<f32> {
    (0..rows).flat_map(|i| batch_row(i, w, salt)).collect()
}

/// Each row of `x` through `e` alone.
fn alone(e: &dyn Engine, log: bool, x: &[f32], w: usize) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for (x, y) in x.chunks(w).zip(y.chunks_mut(w)) {
        e.rows(log, x, y, w);
    }
    y
}

/// A batch against its rows alone: out of place, in place, and with the
/// input and output at offsets 1..3 (unaligned).
fn check_batch(e: &dyn Engine, log: bool, x: &[f32], w: usize, want: &[f32], what: &str) {
    let n = x.len();
    let mut y = vec![0.0; n];
    e.rows(log, x, &mut y, w);
    same(&y, want, &format!("{what}: batch"));
    let mut z = x.to_vec();
    e.rows_in_place(log, &mut z, w);
    same(&z, want, &format!("{what}: in place"));
    for off in 1..=3 {
        let mut xs = vec![0.0; n + off];
        xs[off..].copy_from_slice(x);
        let mut ys = vec![0.0; n + 3];
        e.rows(log, &xs[off..], &mut ys[off..off + n], w);
        same(&ys[off..off + n], want, &format!("{what}: offset {off}"));
    }
}

#[test]
fn rows_in_batches_equal_rows_alone() {
    for e in engines("rows_in_batches_equal_rows_alone") {
        let mut regimes = BTreeSet::new();
        for &w in &ROW_LENS {
            regimes.insert(format!("{:?}", e.target().plan(w, w).unwrap()));
            for log in [false, true] {
                for (k, rows) in [1usize, 2, 3, 5, 8, 9, 13].into_iter().enumerate() {
                    let x = batch(rows, w, k as u64 * 7 + w as u64);
                    let want = alone(&*e, log, &x, w);
                    let what = format!("{} log={log} w={w} rows={rows}", e.name());
                    check_batch(&*e, log, &x, w, &want, &what);
                }
            }
        }
        println!("{}: regimes {regimes:?}", e.name());
    }
}

/// Batches of `STREAM_MIN` elements or more take the streaming form, where
/// the instruction set has it; their rows equal the rows alone (which take
/// the in-cache pipeline or the short regime), with the rows around the
/// stack-row limit and longer ones (written inside the next row's sweep),
/// special rows among them, the output aligned or not.
#[test]
fn streaming_batches_equal_rows_alone() {
    let lens: &[usize] = if quick() {
        &[1000, 5000]
    } else {
        &[1000, 4096, 4099, 5000, 16_411]
    };
    for e in engines("streaming_batches_equal_rows_alone") {
        for &w in lens {
            let rows = STREAM_MIN.div_ceil(w) + 1;
            let regime = e.target().plan(rows * w, w).unwrap();
            for log in [false, true] {
                let x = batch(rows, w, w as u64);
                let want = alone(&*e, log, &x, w);
                let what = format!("{} log={log} w={w} rows={rows} ({regime:?})", e.name());
                let mut y = vec![0.0; x.len() + 1];
                e.rows(log, &x, &mut y[..x.len()], w);
                same(&y[..x.len()], &want, &what);
                e.rows(log, &x, &mut y[1..], w);
                same(&y[1..], &want, &format!("{what}, output offset 1"));
            }
            println!("{}: w={w}: {regime:?}", e.name());
        }
    }
}

/// Rows of `TWO_PASS_MIN` elements or more: two-pass, alone and in a batch
/// beside a special row, in place, unaligned.
#[test]
fn two_pass_rows_equal_alone() {
    for e in engines("two_pass_rows_equal_alone") {
        if quick() && e.target() == Target::Portable16 {
            continue;
        }
        let w = TWO_PASS_MIN + 13;
        assert_eq!(e.target().plan(w, w), Some(Regime::TwoPass));
        for log in [false, true] {
            let mut x = batch_row(4, w, 1);
            x.extend(batch_row(0, w, 2)); // NaN row after it
            let want = alone(&*e, log, &x, w);
            check_batch(
                &*e,
                log,
                &x,
                w,
                &want,
                &format!("{} log={log} two-pass", e.name()),
            );
        }
    }
}

/// `softmax(x) == softmax_scaled(x, 1.0) == softmax_of_combination(&[(1.0,
/// x)])`, and `softmax_scaled_rows` at 1 equals `softmax_rows`, at every
/// row length of every regime.
#[test]
fn family_functions_equal_softmax() {
    for e in engines("family_functions_equal_softmax") {
        let lens = ROW_LENS.iter().copied().chain([5000, TWO_PASS_MIN + 1]);
        for w in lens {
            for (k, fam) in [
                Family::Uniform,
                Family::NormalS100,
                Family::PartialMask,
                Family::PosInf,
                Family::Nan,
                Family::FullMask,
                Family::Extremes,
            ]
            .into_iter()
            .enumerate()
            {
                let x = gen_row(fam, w, k as u64);
                let what = format!("{} w={w} {}", e.name(), fam.name());
                let mut want = vec![0.0; w];
                e.rows(false, &x, &mut want, w);
                let mut y = vec![0.0; w];
                e.scaled_rows(&x, &mut y, w, 1.0);
                same(&y, &want, &format!("{what}: softmax_scaled(x, 1)"));
                let mut z = vec![0.0; w];
                e.combination(&[(1.0, &x)], &mut z);
                same(
                    &z,
                    &want,
                    &format!("{what}: softmax_of_combination(&[(1, x)])"),
                );
            }
            let x = batch(3, w.min(5000), w as u64);
            let want = alone(&*e, false, &x, w.min(5000));
            let mut y = vec![0.0; x.len()];
            e.scaled_rows(&x, &mut y, w.min(5000), 1.0);
            same(
                &y,
                &want,
                &format!("{} softmax_scaled_rows(1) w={w}", e.name()),
            );
        }
    }
}

#[cfg(feature = "rayon")]
#[test]
fn parallel_equals_serial() {
    for &b in Backend::ALL {
        let Ok(sm) = Softmax::with_backend(b) else {
            continue;
        };
        // Batches split by rows: below and above the streaming size, so that
        // chunks take the in-cache pipeline while the whole batch streams.
        for (rows, w) in [
            (4096, 32),
            (1024, 1000),
            (STREAM_MIN / 4096 + 8, 4096),
            (64, 65_537),
        ] {
            for log in [false, true] {
                let x = batch(rows, w, 5);
                let (mut p, mut q) = (vec![0.0; x.len()], vec![0.0; x.len()]);
                match log {
                    false => {
                        sm.par_softmax_rows(&x, &mut p, w).unwrap();
                        sm.softmax_rows(&x, &mut q, w).unwrap();
                    }
                    true => {
                        sm.par_log_softmax_rows(&x, &mut p, w).unwrap();
                        sm.log_softmax_rows(&x, &mut q, w).unwrap();
                    }
                }
                same(&p, &q, &format!("{b} par rows={rows} w={w} log={log}"));
            }
        }
        // One row split over threads: the two-pass rows, at chunk
        // boundaries; shorter rows on the calling thread.
        for (w, fam) in [
            (TWO_PASS_MIN, Family::Uniform),
            (TWO_PASS_MIN + 5, Family::NormalS10),
            (3 << 21, Family::PartialMask),
            (1 << 20, Family::Uniform),
            (3 << 21, Family::Nan),
        ] {
            let x = gen_row(fam, w, 9);
            let (mut p, mut q) = (vec![0.0; w], vec![0.0; w]);
            sm.par_softmax(&x, &mut p).unwrap();
            sm.softmax(&x, &mut q).unwrap();
            same(&p, &q, &format!("{b} par_softmax w={w} {}", fam.name()));
        }
        println!("{b}: parallel equals serial");
    }
}

/// Row lengths (and batch sizes) that reach every regime of `t`.
fn regime_cases(t: Target) -> Vec<(usize, usize)> {
    let mut cases: Vec<(usize, usize)> = ROW_LENS.iter().map(|&w| (3, w)).collect();
    cases.push((STREAM_MIN / 1000 + 1, 1000));
    cases.push((STREAM_MIN / 5000 + 1, 5000));
    if !(quick() && t == Target::Portable16) {
        cases.push((1, TWO_PASS_MIN + 3));
    }
    cases
}

/// bf16 bit patterns in the test-only stage, through every regime, give the
/// f32 softmax of the widened values bit for bit: an input stage with an
/// element type of its own plugs into every regime.
#[test]
fn test_only_stage_through_every_regime() {
    let mut ran = Vec::new();
    for e in engines("test_only_stage_through_every_regime") {
        let t = e.target();
        let mut regimes = BTreeSet::new();
        for (rows, w) in regime_cases(t) {
            let n = rows * w;
            regimes.insert(format!("{:?}", t.plan(n, w).unwrap()));
            let bits16: Vec<u16> = batch(rows, w, w as u64)
                .iter()
                .map(|v| (v.to_bits() >> 16) as u16)
                .collect();
            let widened: Vec<f32> = bits16
                .iter()
                .map(|&b| f32::from_bits((b as u32) << 16))
                .collect();
            let mut want = vec![0.0; n];
            e.rows(false, &widened, &mut want, w);
            let mut y = vec![0.0; n];
            assert!(
                t.softmax_rows_bf16(&bits16, &mut y, w),
                "{} available",
                t.name()
            );
            same(
                &y,
                &want,
                &format!("{} bf16 stage rows={rows} w={w}", t.name()),
            );
        }
        for r in ["Pipeline", "TwoPass"] {
            assert!(
                regimes.iter().any(|x| x.starts_with(r)),
                "{}: {r} not reached: {regimes:?}",
                t.name()
            );
        }
        println!("{}: bf16 stage through {regimes:?}", t.name());
        ran.push(t.name());
    }
    assert!(!ran.is_empty());
}

/// The scaled stage at `α = 1` (which `softmax_scaled` itself sends to the
/// plain stage) gives plain softmax's bits through every regime, and at
/// `α = −1` the softmax of `−x`.
#[test]
fn scaled_stage_at_one_is_plain() {
    for e in engines("scaled_stage_at_one_is_plain") {
        let t = e.target();
        for (rows, w) in regime_cases(t) {
            let x = batch(rows, w, 3);
            let mut want = vec![0.0; x.len()];
            e.rows(false, &x, &mut want, w);
            let mut y = vec![0.0; x.len()];
            assert!(t.softmax_scaled_rows_stage(&x, &mut y, w, 1.0));
            same(
                &y,
                &want,
                &format!("{} scaled stage α=1 rows={rows} w={w}", t.name()),
            );
            let neg: Vec<f32> = x.iter().map(|v| -v).collect();
            e.rows(false, &neg, &mut want, w);
            assert!(t.softmax_scaled_rows_stage(&x, &mut y, w, -1.0));
            same(
                &y,
                &want,
                &format!("{} scaled stage α=−1 rows={rows} w={w}", t.name()),
            );
        }
    }
}

/// The AVX2 long-row loop in `asm!` and its intrinsics twin: the same bits
/// (results, sum lanes, range lanes) for every pair count up to two blocks,
/// every misalignment of the three inputs, in range and flushing, with
/// masked (`−∞`) and NaN inputs.
#[cfg(target_arch = "x86_64")]
#[test]
fn asm_loop_equals_its_twin() {
    use simd_softmax_kernels::testing::{LateState, late_pairs_both};
    /// A 32-byte-aligned buffer of `n` floats.
    fn aligned(n: usize) -> (Vec<f32>, usize) {
        let v = vec![0.0f32; n + 8];
        let off = (v.as_ptr() as usize).wrapping_neg() % 32 / 4;
        (v, off)
    }
    let start = LateState {
        h: [2.0; 8],
        err: [0.0; 8],
        hi: [f32::NEG_INFINITY; 8],
        lo: [f32::INFINITY; 8],
    };
    let mut compared = 0;
    for pairs in (1..=40).chain([255, 256, 257, 512]) {
        let n = 16 * pairs + 8;
        for mis in 0..8 {
            for (in_range, fam) in [
                (true, Family::Uniform),
                (false, Family::PartialMask),
                (false, Family::Nan),
            ] {
                let x = gen_row(fam, n, pairs as u64);
                let next = gen_row(Family::NormalS10, n, mis as u64);
                let lx = gen_row(fam, n, 77);
                let m = x
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
                    .max(10.0);
                let lm = lx
                    .iter()
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
                    .max(10.0);
                let (mut ya, oa) = aligned(16 * pairs);
                let (mut yt, ot) = aligned(16 * pairs);
                let got = late_pairs_both(
                    &x[mis..],
                    &next[(mis + 3) % 8..],
                    &lx[(mis + 5) % 8..],
                    &mut ya[oa..oa + 16 * pairs],
                    &mut yt[ot..ot + 16 * pairs],
                    pairs,
                    (m, lm, 0.25),
                    start,
                    in_range,
                );
                let Some((sa, st)) = got else {
                    println!(
                        "asm loop: skipped, {}",
                        if cfg!(feature = "asm") {
                            "the CPU lacks AVX2"
                        } else {
                            "the `asm` feature is off (the twin runs)"
                        }
                    );
                    return;
                };
                same(
                    &ya[oa..oa + 16 * pairs],
                    &yt[ot..ot + 16 * pairs],
                    &format!("pairs={pairs} mis={mis} in_range={in_range}: results"),
                );
                for (a, b, what) in [
                    (sa.h, st.h, "h"),
                    (sa.err, st.err, "err"),
                    (sa.hi, st.hi, "hi"),
                    (sa.lo, st.lo, "lo"),
                ] {
                    same(
                        &a,
                        &b,
                        &format!("pairs={pairs} mis={mis} in_range={in_range}: {what}"),
                    );
                }
                compared += 1;
            }
        }
    }
    println!("asm loop: {compared} cases bit-identical to the twin");
}
