//! Hostile floating-point environments ("kernels give correct
//! results when the caller has set flush-to-zero / denormals-are-zero").
//!
//! Each test sets the thread's FP control register (x86-64 MXCSR through
//! `stmxcsr`/`ldmxcsr`, aarch64 FPCR through `mrs`/`msr`), runs every
//! backend the CPU runs on inputs computed beforehand, restores the
//! register (also on panic) and checks it was restored, then checks the
//! results, computed again under the default environment for comparison.
//! References and checks always run in the default environment: the f64
//! reference itself would round differently otherwise. The register is
//! per thread, so the other tests of this binary are not affected.
//!
//! What the tests establish:
//!
//! * FTZ + DAZ (x86) / FZ (aarch64): every result stays within the bounds
//!   of the default environment. softmax, softmax_scaled and sigmoid are
//!   bit-for-bit the default results except that results below 2^-126
//!   become 0 (the flush rule allows that); log-softmax, logsumexp and the family
//!   may differ by a few ULP where an intermediate is subnormal (e.g. the
//!   compensation terms of a sum of exps near 2^-126; the test reports the
//!   count and the largest difference). Subnormal *inputs* count as zero: a subnormal
//!   probability is a zero probability to `logits_from_probs` (−∞, or
//!   `Error::ZeroProbability` with `Anchor::ZeroMean`), and a subnormal
//!   logit is the logit 0 (a difference of at most 2^-126 in the exponent,
//!   invisible in the result). The kernels' exp flushes below 2^-126 by
//!   itself, so no intermediate of softmax depends on the mode.
//! * Round toward zero, toward +∞, toward −∞ (docs/ACCURACY.md: within twice the
//!   bound under any rounding mode, at no cost to the default): every call
//!   runs in round-to-nearest whatever the caller's mode (the kernels read
//!   the control register once per call and switch only when it is not
//!   to-nearest, restoring it on the way out), so every result is
//!   bit-for-bit the default environment's, and the caller's mode is
//!   still set after the call. Without that, the exps' range reduction
//!   (the "add 1.5·2^23" rounding) followed the caller's mode and put the
//!   polynomial on twice its interval: softmax([1, 2, 3]) was 65 ULP off
//!   under round-up on the scalar backend, 249 ULP at worst.

use simd_softmax::{Anchor, Backend, Error, Softmax, reference};
use std::hint::black_box;

// ---------------------------------------------------------------------------
// The FP control register
// ---------------------------------------------------------------------------

/// An FP environment to run the kernels under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Env {
    /// FTZ + DAZ (x86-64) / FZ (aarch64).
    Flush,
    TowardZero,
    Up,
    Down,
    /// Flush and round toward zero together.
    FlushTowardZero,
}

impl Env {
    fn rounds_to_nearest(self) -> bool {
        self == Env::Flush
    }
    fn flushes(self) -> bool {
        matches!(self, Env::Flush | Env::FlushTowardZero)
    }
}

#[cfg(target_arch = "x86_64")]
mod reg {
    use super::Env;
    use std::arch::asm;

    const FTZ: u32 = 1 << 15;
    const DAZ: u32 = 1 << 6;
    const RC_MASK: u32 = 3 << 13;
    const RC_DOWN: u32 = 1 << 13;
    const RC_UP: u32 = 2 << 13;
    const RC_ZERO: u32 = 3 << 13;

    pub const SUPPORTED: bool = true;

    pub fn read() -> u32 {
        let mut v: u32 = 0;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR to the given address,
        // a valid, writable local.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
        v
    }

    pub fn write(v: u32) {
        // SAFETY: `ldmxcsr` loads MXCSR from a valid local; every value we
        // write is a previously read MXCSR with only the FTZ, DAZ and
        // rounding-control fields changed (no reserved bits set).
        unsafe { asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags)) };
    }

    pub fn with(saved: u32, env: Env) -> u32 {
        let (flush, rc) = match env {
            Env::Flush => (FTZ | DAZ, 0),
            Env::TowardZero => (0, RC_ZERO),
            Env::Up => (0, RC_UP),
            Env::Down => (0, RC_DOWN),
            Env::FlushTowardZero => (FTZ | DAZ, RC_ZERO),
        };
        (saved & !(FTZ | DAZ | RC_MASK)) | flush | rc
    }
}

#[cfg(target_arch = "aarch64")]
mod reg {
    use super::Env;
    use std::arch::asm;

    const FZ: u64 = 1 << 24;
    const RMODE_MASK: u64 = 3 << 22;
    const RP: u64 = 1 << 22; // toward +inf
    const RM: u64 = 2 << 22; // toward -inf
    const RZ: u64 = 3 << 22; // toward zero

    pub const SUPPORTED: bool = true;

    pub fn read() -> u64 {
        let v: u64;
        // SAFETY: reading FPCR has no side effects.
        unsafe { asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }

    pub fn write(v: u64) {
        // SAFETY: every value written is a previously read FPCR with only
        // the FZ and RMode fields changed.
        unsafe { asm!("msr fpcr, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
    }

    pub fn with(saved: u64, env: Env) -> u64 {
        let (flush, rm) = match env {
            Env::Flush => (FZ, 0),
            Env::TowardZero => (0, RZ),
            Env::Up => (0, RP),
            Env::Down => (0, RM),
            Env::FlushTowardZero => (FZ, RZ),
        };
        (saved & !(FZ | RMODE_MASK)) | flush | rm
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod reg {
    use super::Env;
    pub const SUPPORTED: bool = false;
    pub fn read() -> u64 {
        0
    }
    pub fn write(_: u64) {}
    pub fn with(saved: u64, _: Env) -> u64 {
        saved
    }
}

/// Restores the saved control register when dropped (also on panic).
struct Restore<T: Copy + PartialEq + std::fmt::Debug>(T, fn(T));

impl<T: Copy + PartialEq + std::fmt::Debug> Drop for Restore<T> {
    fn drop(&mut self) {
        (self.1)(self.0);
    }
}

/// Runs `f` with the thread's FP environment set to `env`, then restores
/// it and checks that it is restored. Keep `f` to kernel calls on
/// prepared buffers: anything else in it (formatting, the reference)
/// would run under `env` too.
fn under<R>(env: Env, f: impl FnOnce() -> R) -> R {
    let saved = reg::read();
    let r = {
        let _restore = Restore(saved, reg::write);
        reg::write(reg::with(saved, env));
        black_box(f())
    };
    assert_eq!(reg::read(), saved, "FP control register not restored");
    r
}

/// Whether to skip: no control register access on this architecture, or
/// running under valgrind (`SIMD_SOFTMAX_UNDER_VALGRIND`, set by
/// `scripts/memcheck.sh`), which does not emulate MXCSR's FTZ, DAZ or
/// rounding-control bits (it warns and keeps the defaults).
fn skip_unsupported(test: &str) -> bool {
    if !reg::SUPPORTED {
        println!("{test}: skipped, no FP control register access on this architecture");
        return true;
    }
    if std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some() {
        println!("{test}: skipped under valgrind, which ignores FTZ/DAZ/rounding control");
        return true;
    }
    false
}

// ---------------------------------------------------------------------------
// Engines, inputs, metric
// ---------------------------------------------------------------------------

fn engines(test: &str) -> Vec<Softmax> {
    let under_valgrind = std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some();
    let mut v = Vec::new();
    for b in Backend::ALL {
        if under_valgrind && b == Backend::Avx512 {
            println!("{test}: skipping {b}: valgrind cannot execute AVX-512");
            continue;
        }
        match Softmax::with_backend(b) {
            Ok(sm) => v.push(sm),
            Err(e) => println!("{test}: skipping {b}: {e}"),
        }
    }
    v
}

/// A small deterministic generator (xorshift64*), so the test needs nothing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f32 {
        (lo + (hi - lo) * self.unit()) as f32
    }
}

const LENGTHS: &[usize] = &[
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 257, 1000, 4096,
];

/// `SIMD_SOFTMAX_TEST_QUICK=1` (set by `scripts/test-aarch64.sh`: QEMU
/// emulates every float operation in software): lengths up to 100 only,
/// and fewer exp probes.
fn quick() -> bool {
    std::env::var("SIMD_SOFTMAX_TEST_QUICK").is_ok_and(|v| v == "1")
}

fn lengths() -> Vec<usize> {
    let max = if quick() { 100 } else { usize::MAX };
    LENGTHS.iter().copied().filter(|&n| n <= max).collect()
}

/// The input rows: ordinary families and the special rows.
fn rows() -> Vec<(String, Vec<f32>)> {
    let mut v = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in lengths() {
        v.push((
            format!("uniform[-10,10] n={n}"),
            (0..n).map(|_| rng.range(-10.0, 10.0)).collect(),
        ));
        v.push((
            format!("uniform[-100,100] n={n}"),
            (0..n).map(|_| rng.range(-100.0, 100.0)).collect(),
        ));
        v.push((
            format!("huge n={n}"),
            (0..n).map(|_| rng.range(-1e30, 1e30)).collect(),
        ));
        let mut dom = vec![0.0f32; n];
        dom[n / 2] = 7.0;
        v.push((format!("dominant n={n}"), dom));
        v.push((
            format!("subnormal n={n}"),
            (0..n)
                .map(|i| f32::from_bits((rng.next() as u32) & 0x807f_ffff) * (i % 2) as f32)
                .collect(),
        ));
        let mut masked: Vec<f32> = (0..n).map(|_| rng.range(-5.0, 5.0)).collect();
        for (i, x) in masked.iter_mut().enumerate() {
            if i % 3 == 1 {
                *x = f32::NEG_INFINITY;
            }
        }
        v.push((format!("partial mask n={n}"), masked));
        v.push((
            format!("deep tail n={n}"),
            (0..n).map(|_| rng.range(-100.0, 0.0)).collect(),
        ));
    }
    for n in [1usize, 5, 16, 17, 100] {
        let mut nan: Vec<f32> = (0..n).map(|i| i as f32).collect();
        nan[n - 1] = f32::NAN;
        v.push((format!("NaN n={n}"), nan));
        let mut inf: Vec<f32> = (0..n).map(|i| i as f32).collect();
        inf[0] = f32::INFINITY;
        inf[n - 1] = f32::INFINITY;
        v.push((format!("+inf n={n}"), inf));
        v.push((format!("all -inf n={n}"), vec![f32::NEG_INFINITY; n]));
        v.push((
            format!("extremes n={n}"),
            (0..n)
                .map(|i| if i % 2 == 0 { f32::MAX } else { -f32::MAX })
                .collect(),
        ));
    }
    v
}

const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;
const U: f64 = 1.0 / 16_777_216.0;

/// The ULP of the f32 nearest `r`; 2^-149 below 2^-126.
fn ulp_f32(r: f64) -> f64 {
    let a = r.abs();
    if a < MIN_NORMAL {
        return MIN_NORMAL * U * 2.0;
    }
    let f = (a as f32).min(f32::MAX);
    2f64.powi((f.to_bits() >> 23) as i32 - 127 - 23)
}

fn max_of(x: &[f32]) -> f32 {
    x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

// ---------------------------------------------------------------------------
// FTZ / DAZ: the same results, except subnormals
// ---------------------------------------------------------------------------

/// Default-environment result `d` against flushed-environment result `f`:
/// bit-identical, except that a subnormal result may become a zero of the
/// same sign (FTZ), and `allow_any` entries are skipped.
fn same_but_flushed(ctx: &str, d: &[f32], f: &[f32]) {
    for (i, (&a, &b)) in d.iter().zip(f).enumerate() {
        let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let flushed = a != 0.0 && a.abs() < f32::MIN_POSITIVE && b == 0.0;
        assert!(
            same || flushed,
            "{ctx}: element {i}: {a:e} ({:#010x}) by default, {b:e} ({:#010x}) with FTZ/DAZ",
            a.to_bits(),
            b.to_bits()
        );
    }
}

/// Every function on `x` with `sm`, into fresh buffers (allocated here,
/// before `under` switches the environment in the caller's closure).
struct Outs {
    soft: Vec<f32>,
    soft_ip: Vec<f32>,
    log: Vec<f32>,
    lse: f32,
    rows: Vec<f32>,
    scaled: Vec<Vec<f32>>,
    sigmoid: Vec<f32>,
    backward: Vec<f32>,
    jacobian: Vec<f32>,
    logits: Vec<f32>,
    logits_err: Result<(), Error>,
    combo: Vec<f32>,
}

const ALPHAS: [f32; 6] = [0.5, -2.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, 3.0];
const JAC_MAX: usize = 64;

/// Probabilities for backward / jacobian / logits: a softmax of `x` made
/// in the default environment, with an exact subnormal planted in it.
fn probs(x: &[f32]) -> Vec<f32> {
    let mut p = vec![0.0f32; x.len()];
    Softmax::with_backend(Backend::Scalar)
        .unwrap()
        .softmax(x, &mut p)
        .unwrap();
    p
}

fn run(sm: &Softmax, x: &[f32], p: &[f32], env: Option<Env>) -> Outs {
    let n = x.len();
    let nj = n.min(JAC_MAX);
    let row_len = (1..=n).rev().find(|d| n % d == 0 && *d <= 16).unwrap_or(1);
    let mut o = Outs {
        soft: vec![0.0; n],
        soft_ip: x.to_vec(),
        log: vec![0.0; n],
        lse: 0.0,
        rows: vec![0.0; n],
        scaled: vec![vec![0.0; n]; ALPHAS.len()],
        sigmoid: vec![0.0; n],
        backward: vec![0.0; n],
        jacobian: vec![0.0; nj * nj],
        logits: vec![0.0; n],
        logits_err: Ok(()),
        combo: vec![0.0; n],
    };
    let terms: [(f32, &[f32]); 2] = [(-1.5, x), (2.5, p)];
    let mut body = || {
        sm.softmax(x, &mut o.soft).unwrap();
        sm.softmax_in_place(&mut o.soft_ip);
        sm.log_softmax(x, &mut o.log).unwrap();
        o.lse = sm.logsumexp(x);
        sm.log_softmax_rows(x, &mut o.rows, row_len).unwrap();
        for (a, out) in ALPHAS.iter().zip(o.scaled.iter_mut()) {
            sm.softmax_scaled(x, out, *a).unwrap();
        }
        sm.sigmoid(x, &mut o.sigmoid).unwrap();
        sm.softmax_backward(p, x, &mut o.backward).unwrap();
        sm.jacobian(&p[..nj], &mut o.jacobian).unwrap();
        o.logits_err = sm.logits_from_probs(p, &mut o.logits, Anchor::ZeroMean);
        sm.softmax_of_combination(&terms, &mut o.combo).unwrap();
    };
    match env {
        Some(e) => under(e, body),
        None => body(),
    }
    o
}

#[test]
fn environment_takes_effect() {
    if skip_unsupported("environment_takes_effect") {
        return;
    }
    let third = |e| under(e, || black_box(1.0f32) / black_box(3.0f32));
    assert_eq!(third(Env::TowardZero).to_bits(), 0x3eaa_aaaa);
    assert_eq!(third(Env::Down).to_bits(), 0x3eaa_aaaa);
    assert_eq!(third(Env::Up).to_bits(), 0x3eaa_aaab);
    let two_thirds_down = under(Env::Down, || -black_box(2.0f32) / black_box(3.0f32));
    assert_eq!(two_thirds_down.to_bits(), 0xbf2a_aaab);
    let half_min = under(Env::Flush, || {
        black_box(f32::MIN_POSITIVE) * black_box(0.5f32)
    });
    assert_eq!(half_min, 0.0, "FTZ did not flush a subnormal result");
    let sub_in = under(Env::Flush, || {
        black_box(f32::from_bits(1)) * black_box(4.0f32)
    });
    assert_eq!(
        sub_in, 0.0,
        "DAZ/FZ did not treat a subnormal input as zero"
    );
    assert_eq!(
        (black_box(1.0f32) / black_box(3.0f32)).to_bits(),
        0x3eaa_aaab
    );
}

#[test]
fn flush_to_zero_and_denormals_are_zero_keep_results_within_bounds() {
    let test = "ftz_daz";
    if skip_unsupported(test) {
        return;
    }
    let rows = rows();
    for sm in engines(test) {
        let b = sm.backend();
        let (mut checked, mut differing, mut max_dev) = (0, 0usize, 0.0f64);
        for (name, x) in &rows {
            let has_sub = x.iter().any(|v| *v != 0.0 && v.abs() < f32::MIN_POSITIVE);
            let p = probs(x);
            let p_sub = p.iter().any(|v| *v != 0.0 && v.abs() < f32::MIN_POSITIVE);
            let d = run(&sm, x, &p, None);
            let f = run(&sm, x, &p, Some(Env::Flush));
            let ctx = |what: &str| format!("{test} [{b}] {name}: {what}");
            // 1. The flushed results meet the bounds (against the reference
            //    of the inputs as the kernels see them: subnormals are 0).
            let env = Env::Flush;
            let (xf, pf) = (&flushed(x, env), &flushed(&p, env));
            check_against_reference(&ctx("ftz"), xf, &f, Budget::of(env), true);
            if !overflows(xf) {
                for (a, y) in ALPHAS.iter().zip(&f.scaled) {
                    check_scaled(
                        &ctx(&format!("softmax_scaled {a}")),
                        xf,
                        *a,
                        y,
                        Budget::of(env),
                    );
                }
            }
            check_family(&ctx("ftz"), xf, pf, &f, Budget::of(env), true);
            // 2. Softmax-type results (sums S ≥ 1, no subnormal
            //    intermediate) are the default ones, up to flushed outputs.
            if !has_sub {
                same_but_flushed(&ctx("softmax"), &d.soft, &f.soft);
                same_but_flushed(&ctx("softmax_in_place"), &d.soft_ip, &f.soft_ip);
                for (a, (sd, sf)) in ALPHAS.iter().zip(d.scaled.iter().zip(&f.scaled)) {
                    same_but_flushed(&ctx(&format!("softmax_scaled {a}")), sd, sf);
                }
                same_but_flushed(&ctx("sigmoid"), &d.sigmoid, &f.sigmoid);
            }
            if !has_sub && !p_sub {
                assert_eq!(d.logits_err, f.logits_err, "{}", ctx("logits_from_probs"));
            }
            // 3. The rest may differ where a subnormal intermediate was
            //    flushed (e.g. the compensation terms of a sum of tiny
            //    exps): measured, reported.
            let inputs_flushed = has_sub || p_sub;
            for (a, bb) in [
                (&d.log, &f.log),
                (&d.rows, &f.rows),
                (&vec![d.lse], &vec![f.lse]),
                (&d.backward, &f.backward),
                (&d.jacobian, &f.jacobian),
                (&d.logits, &f.logits),
                (&d.combo, &f.combo),
            ] {
                for (&u, &v) in a.iter().zip(bb.iter()) {
                    if inputs_flushed {
                        break; // different inputs: nothing to compare
                    }
                    // Below 2^-120 a difference is a flushed subnormal.
                    let tiny = u.abs().min(v.abs()) < 7.5e-37;
                    if !tiny && u.to_bits() != v.to_bits() && !(u.is_nan() && v.is_nan()) {
                        differing += 1;
                        let dev = (u as f64 - v as f64).abs() / ulp_f32(u as f64);
                        if dev.is_finite() {
                            max_dev = max_dev.max(dev);
                        }
                    }
                }
            }
            checked += 1;
        }
        println!(
            "{test}: {b}: {checked} rows, every function within the bounds; softmax, scaled, \
             sigmoid bit-identical up to flushed outputs; {differing} other results differ \
             (subnormal intermediates), by at most {max_dev:.1} ULP"
        );
    }
}

/// A subnormal probability is a zero probability under DAZ / FZ: `−∞`
/// (anchored on another component) or `Error::ZeroProbability` (zero mean).
#[test]
fn subnormal_probabilities_are_zeros_under_daz() {
    let test = "subnormal_probabilities";
    if skip_unsupported(test) {
        return;
    }
    let sub = f32::from_bits(0x0000_1000);
    let p = [0.5f32, sub, 0.25, 0.25 - sub];
    for sm in engines(test) {
        let b = sm.backend();
        let mut out = [0.0f32; 4];
        sm.logits_from_probs(&p, &mut out, Anchor::Component(0))
            .unwrap();
        assert!(
            out[1].is_finite(),
            "[{b}] default: ln of a subnormal is finite"
        );
        let (r_comp, out_comp) = under(Env::Flush, || {
            let mut o = [0.0f32; 4];
            let r = sm.logits_from_probs(&p, &mut o, Anchor::Component(0));
            (r, o)
        });
        assert_eq!(r_comp, Ok(()), "[{b}]");
        assert_eq!(
            out_comp[1],
            f32::NEG_INFINITY,
            "[{b}] DAZ: ln(subnormal) is ln 0"
        );
        assert_eq!(out_comp[0], 0.0, "[{b}]");
        let r_mean = under(Env::Flush, || {
            let mut o = [0.0f32; 4];
            sm.logits_from_probs(&p, &mut o, Anchor::ZeroMean)
        });
        assert_eq!(r_mean, Err(Error::ZeroProbability { index: 1 }), "[{b}]");
        println!("{test}: {b}: a subnormal probability is a zero under DAZ/FZ");
    }
}

// ---------------------------------------------------------------------------
// Directed rounding
// ---------------------------------------------------------------------------

/// The relative error of the exp polynomial where directed rounding puts
/// the reduced argument, in units of 2^-24: the "add 1.5·2^23" step gives
/// The error budget of one environment: `factor` multiplies every
/// rounding term, `c` is the softmax constant. Every environment gets the
/// default's (the kernels round to nearest whatever the caller's mode).
#[derive(Clone, Copy, Debug)]
struct Budget {
    factor: f64,
    c: f64,
}

impl Budget {
    fn of(_: Env) -> Budget {
        Budget {
            factor: 1.0,
            c: 4.0,
        }
    }
}

/// Blocked-sum allowance, as in the fuzz harness: each f32 addition with a
/// non-zero addend may round by up to one ULP of a partial sum ≤ S (≤ 23
/// such additions on one chain). This goes beyond the documented `C ≤ 4`, a
/// known finding (see `fuzz/README.md`) independent of the environment; the
/// tests here are about what the environment changes.
fn sum_slack(r: &[f64]) -> f64 {
    let nz = r.iter().filter(|&&v| v > 0.0).count();
    nz.saturating_sub(1).min(23) as f64
}

/// Softmax outputs `y` of row `x` against the reference: special classes
/// exactly, ordinary entries within `c·(C_base + slack) + |x_i − m|·c` ULP
/// (`c` = 1 to nearest, 2 directed: the subtraction rounds by up to a full
/// ULP), zeros where the reference is below 2^-126 (always allowed), and
/// the sum within the budget.
fn check_softmax(ctx: &str, x: &[f32], r: &[f64], y: &[f32], bud: Budget) {
    let nan = x.iter().any(|v| v.is_nan());
    let m = max_of(x);
    let slack = sum_slack(r) * bud.factor;
    let (mut sum, mut budget) = (0.0, 0.0);
    for (i, ((&v, &ri), &xi)) in y.iter().zip(r).zip(x).enumerate() {
        if nan {
            assert!(v.is_nan(), "{ctx}: NaN row, element {i} = {v:e}");
            continue;
        }
        sum += v as f64;
        if ri == 0.0 {
            assert!(v == 0.0, "{ctx}: element {i}: reference 0, got {v:e}");
            continue;
        }
        let d = if m.is_finite() {
            (xi as f64 - m as f64).abs()
        } else {
            0.0
        };
        let c = bud.c;
        let bound = c + slack + bud.factor * d;
        budget += ri * bound * 2.0 * U + MIN_NORMAL;
        if v == 0.0 && ri * (1.0 - bound * 2.0 * U) < MIN_NORMAL {
            continue;
        }
        let err = (v as f64 - ri).abs() / ulp_f32(ri);
        assert!(
            err <= bound,
            "{ctx}: element {i}: {v:e} vs {ri:e}: {err:.2} ULP > {bound:.2}"
        );
    }
    if !nan && !y.is_empty() && r.iter().any(|&v| v > 0.0) {
        assert!(
            (sum - 1.0).abs() <= budget,
            "{ctx}: sum {sum:e} off by more than {budget:e}"
        );
    }
}

/// Log-softmax: docs/ACCURACY.md `4·ulp(r) + ulp(x − m)`, times `bud.factor`, plus the
/// error of `ln S` (relative error of `S`, with the same slack).
fn check_log_softmax(ctx: &str, x: &[f32], r: &[f64], rs: &[f64], y: &[f32], bud: Budget) {
    let m = max_of(x);
    let c = bud.c;
    let ln_s = (c + sum_slack(rs) * bud.factor) * 2.0 * U;
    for (i, ((&v, &ri), &xi)) in y.iter().zip(r).zip(x).enumerate() {
        if ri.is_nan() {
            assert!(v.is_nan(), "{ctx}: element {i}: {v:e}, reference NaN");
        } else if ri.is_infinite() || (m.is_finite() && (xi - m).is_infinite()) {
            // A masked entry, or x − m overflowing f32: −∞; an
            // overflow rounded toward zero or +∞ saturates at −f32::MAX.
            let saturated = ri.is_finite() && bud.factor > 1.0 && v == -f32::MAX;
            assert!(
                v == f32::NEG_INFINITY || saturated,
                "{ctx}: element {i}: {v:e}, reference {ri:e}"
            );
        } else {
            let d = if m.is_finite() {
                ulp_f32(xi as f64 - m as f64)
            } else {
                0.0
            };
            let bound = bud.factor * (4.0 * ulp_f32(ri) + d) + ln_s;
            let diff = (v as f64 - ri).abs();
            assert!(
                diff <= bound,
                "{ctx}: element {i}: {v:e} vs {ri:e}: |diff| {diff:e} > {bound:e}"
            );
        }
    }
}

/// The checks of the forward functions against the reference.
fn check_against_reference(ctx: &str, x: &[f32], o: &Outs, bud: Budget, ftz: bool) {
    let r = reference::softmax(x);
    let rl = reference::log_softmax(x);
    check_softmax(&format!("{ctx} softmax"), x, &r, &o.soft, bud);
    check_softmax(&format!("{ctx} softmax_in_place"), x, &r, &o.soft_ip, bud);
    check_log_softmax(&format!("{ctx} log_softmax"), x, &rl, &r, &o.log, bud);
    // logsumexp: the log-softmax bound of the max entry, plus ulp(lse).
    let lse = reference::logsumexp(x);
    if lse.is_nan() || lse.is_infinite() {
        assert!(
            o.lse.is_nan() == lse.is_nan() && (lse.is_nan() || o.lse as f64 == lse),
            "{ctx} logsumexp: {} vs {lse}",
            o.lse
        );
    } else {
        let m = max_of(x);
        let sub: f64 = x
            .iter()
            .zip(&r)
            .map(|(&v, &w)| w * ulp_f32(v as f64 - m as f64))
            .sum();
        let c = bud.c;
        let bound = bud.factor * ulp_f32(lse)
            + (c + sum_slack(&r) * bud.factor) * 2.0 * U
            + sub * bud.factor;
        let diff = (o.lse as f64 - lse).abs();
        // Round-up takes a result at f32::MAX (plus ln S) to +∞, as IEEE says.
        let overflow_up = bud.factor > 1.0 && o.lse == f32::INFINITY && lse >= f32::MAX as f64;
        assert!(
            diff <= bound || overflow_up,
            "{ctx} logsumexp: {} vs {lse:e}: {diff:e} > {bound:e}",
            o.lse
        );
    }
    // Sigmoid: 4 ULP to nearest (exp ≤ 2, three single roundings), doubled
    // plus the exp's range effect under directed rounding.
    for (i, (&z, &v)) in x.iter().zip(&o.sigmoid).enumerate() {
        let r = reference::logistic(z as f64);
        let bound = bud.c;
        if z.is_nan() {
            assert!(v.is_nan());
        } else if z.is_infinite() {
            assert_eq!(v as f64, r, "{ctx} sigmoid({z})");
        } else if !(v == 0.0 && r * (1.0 - bound * 2.0 * U) < MIN_NORMAL) {
            let err = (v as f64 - r).abs() / ulp_f32(r);
            assert!(
                err <= bound || (ftz && r < MIN_NORMAL * 2.0),
                "{ctx} sigmoid: element {i}: {v:e} vs {r:e}: {err:.2} ULP"
            );
        }
    }
}

/// Scaled softmax against `S(α·x)` in f64, with the limits.
fn check_scaled(ctx: &str, x: &[f32], alpha: f32, y: &[f32], bud: Budget) {
    let n = x.len();
    if x.iter().any(|v| v.is_nan()) {
        assert!(y.iter().all(|v| v.is_nan()), "{ctx}: NaN row");
        return;
    }
    let neg = alpha < 0.0;
    let m = if neg {
        x.iter().copied().fold(f32::INFINITY, f32::min)
    } else {
        max_of(x)
    };
    if alpha == 0.0 {
        let u = 1.0 / n as f64;
        for &v in y {
            let err = (v as f64 - u).abs() / ulp_f32(u);
            assert!(err <= bud.factor, "{ctx}: alpha 0 gives {v:e}, not 1/{n}");
        }
        return;
    }
    let masked = if neg {
        f32::INFINITY
    } else {
        f32::NEG_INFINITY
    };
    if alpha.is_infinite() || !m.is_finite() {
        if m == masked {
            assert!(y.iter().all(|&v| v == 0.0), "{ctx}: masked row");
            return;
        }
        let k = x.iter().filter(|&&v| v == m).count() as f64;
        for (&v, &xi) in y.iter().zip(x) {
            if xi == m {
                let err = (v as f64 - 1.0 / k).abs() / ulp_f32(1.0 / k);
                assert!(err <= 1.0, "{ctx}: tied extreme gets {v:e}, not 1/{k}");
            } else {
                assert_eq!(v, 0.0, "{ctx}: non-extreme entry");
            }
        }
        return;
    }
    // Finite alpha: rows whose x − m overflows f32 are not used here.
    let a = alpha as f64;
    let z: Vec<f64> = x.iter().map(|&v| a * (v as f64 - m as f64)).collect();
    let e: Vec<f64> = z.iter().map(|t| t.exp()).collect();
    let s: f64 = e.iter().sum();
    let r: Vec<f64> = e.iter().map(|v| v / s).collect();
    let spread: f64 = r
        .iter()
        .zip(&z)
        .filter(|(w, _)| **w > 0.0)
        .map(|(w, t)| w * 2.0 * t.abs())
        .sum();
    let c = bud.c;
    let slack = sum_slack(&r) * bud.factor;
    for (i, ((&v, &ri), &zi)) in y.iter().zip(&r).zip(&z).enumerate() {
        let zi = if zi.is_finite() { zi.abs() } else { 0.0 };
        let bound = c + slack + bud.factor * (2.0 * zi + spread);
        if ri == 0.0 {
            assert_eq!(v, 0.0, "{ctx}: element {i}");
        } else if !(v == 0.0 && ri * (1.0 - bound * 2.0 * U) < MIN_NORMAL) {
            let err = (v as f64 - ri).abs() / ulp_f32(ri);
            assert!(
                err <= bound,
                "{ctx}: element {i}: {v:e} vs {ri:e}: {err:.2} > {bound:.2} ULP"
            );
        }
    }
}

/// Whether `max − min` of the row overflows f32 (the scaled checks skip
/// those rows: a known finding, see `fuzz/README.md`).
fn overflows(x: &[f32]) -> bool {
    let lo = x.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = max_of(x);
    lo.is_finite() && hi.is_finite() && (hi - lo).is_infinite()
}

/// `x` as the kernels see it under `env`: subnormals are zeros when the
/// environment flushes (DAZ / FZ).
fn flushed(x: &[f32], env: Env) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            if env.flushes() && v != 0.0 && v.abs() < f32::MIN_POSITIVE {
                0.0
            } else {
                v
            }
        })
        .collect()
}

fn directed(env: Env) {
    let test = format!("{env:?}");
    if skip_unsupported(&test) {
        return;
    }
    assert!(!env.rounds_to_nearest());
    let rows = rows();
    for sm in engines(&test) {
        let b = sm.backend();
        for (name, x_in) in &rows {
            let p_in = probs(x_in);
            let o = run(&sm, x_in, &p_in, Some(env));
            // Bit for bit the results of the environment without the
            // directed rounding (the default, or flush alone).
            let base = run(&sm, x_in, &p_in, env.flushes().then_some(Env::Flush));
            same_outs(&format!("{env:?} [{}] {name}", sm.backend()), &o, &base);
            // What the kernels see: under DAZ/FZ subnormal inputs are zeros.
            let (x, p) = (&flushed(x_in, env), &flushed(&p_in, env));
            let ctx = format!("{test} [{b}] {name}");
            check_against_reference(&ctx, x, &o, Budget::of(env), env.flushes());
            let overflow = {
                let (lo, hi) = (x.iter().copied().fold(f32::INFINITY, f32::min), max_of(x));
                lo.is_finite() && hi.is_finite() && (hi - lo).is_infinite()
            };
            if !overflow {
                for (a, y) in ALPHAS.iter().zip(&o.scaled) {
                    check_scaled(
                        &format!("{ctx} softmax_scaled {a}"),
                        x,
                        *a,
                        y,
                        Budget::of(env),
                    );
                }
            }
            check_family(&ctx, x, p, &o, Budget::of(env), env.flushes());
        }
        println!(
            "{test}: {b}: {} rows, every function bit for bit its result in round-to-nearest",
            rows.len()
        );
    }
}

/// Every output of `o` bit for bit `base`'s (NaN for NaN).
fn same_outs(ctx: &str, o: &Outs, base: &Outs) {
    let eq = |what: &str, a: &[f32], b: &[f32]| {
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!(
                u.to_bits() == v.to_bits() || (u.is_nan() && v.is_nan()),
                "{ctx}: {what}[{i}] = {u:e}, {v:e} in the default rounding"
            );
        }
    };
    eq("softmax", &o.soft, &base.soft);
    eq("softmax_in_place", &o.soft_ip, &base.soft_ip);
    eq("log_softmax", &o.log, &base.log);
    eq("logsumexp", &[o.lse], &[base.lse]);
    eq("log_softmax_rows", &o.rows, &base.rows);
    for (a, b) in o.scaled.iter().zip(&base.scaled) {
        eq("softmax_scaled", a, b);
    }
    eq("sigmoid", &o.sigmoid, &base.sigmoid);
    eq("softmax_backward", &o.backward, &base.backward);
    eq("jacobian", &o.jacobian, &base.jacobian);
    eq("logits_from_probs", &o.logits, &base.logits);
    assert_eq!(o.logits_err, base.logits_err, "{ctx}: logits_from_probs");
    eq("softmax_of_combination", &o.combo, &base.combo);
}

/// Backward, Jacobian, inverse and combination against f64, with the
/// bounds of the fuzz harness (`fuzz/src/lib.rs`, where each is derived)
/// and every rounding term times `bud.factor`.
fn check_family(ctx: &str, x: &[f32], p: &[f32], o: &Outs, bud: Budget, ftz: bool) {
    let f = bud.factor;
    // Under FTZ a product below 2^-126 is 0: an absolute error of 2^-126.
    let flush = if ftz { MIN_NORMAL } else { 0.0 };
    let close = |v: f32, r: f64, bound: f64| {
        (v.is_nan() && r.is_nan()) || v as f64 == r || (v as f64 - r).abs() <= bound + flush
    };
    let finite = x.iter().all(|v| v.is_finite());
    // softmax_backward(p, dy = x): dx = p ⊙ (x − ⟨x, p⟩).
    let absdot: f64 = p
        .iter()
        .zip(x)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    if finite && absdot < 1e30 {
        let dot: f64 = p.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum();
        let e_dot = f * (32.0 * U * absdot + ulp_f32(dot)) + x.len() as f64 * 3e-45;
        for (i, ((&a, &b), &v)) in p.iter().zip(x).zip(&o.backward).enumerate() {
            let r = a as f64 * (b as f64 - dot);
            let bound = (a as f64) * e_dot * 1.01 + f * 2.0 * ulp_f32(r) + 3e-45;
            assert!(
                close(v, r, bound),
                "{ctx} softmax_backward: element {i}: {v:e} vs {r:e}"
            );
        }
    }
    // jacobian(p[..nj]): −p_i p_j, and p_i (1 − p_i) on the diagonal.
    let nj = x.len().min(JAC_MAX);
    for i in 0..nj {
        for j in 0..nj {
            let (a, b) = (p[i] as f64, p[j] as f64);
            let (r, bound) = if i == j {
                let r = a * (1.0 - a);
                (r, f * (ulp_f32(r) + a * ulp_f32(1.0 - a)) + 3e-45)
            } else {
                (-(a * b), f * ulp_f32(a * b) + 3e-45)
            };
            let v = o.jacobian[i * nj + j];
            assert!(
                close(v, r, bound),
                "{ctx} jacobian[{i}][{j}]: {v:e} vs {r:e}"
            );
        }
    }
    // logits_from_probs(p, ZeroMean): ln p − mean(ln p) (or the zero error).
    let invalid = p.iter().position(|v| !(*v >= 0.0 && *v < f32::INFINITY));
    let zero = p.iter().position(|&v| v == 0.0);
    match zero {
        _ if invalid.is_some() => assert_eq!(
            o.logits_err,
            Err(Error::InvalidProbability {
                index: invalid.unwrap()
            })
        ),
        Some(index) => assert_eq!(o.logits_err, Err(Error::ZeroProbability { index })),
        None if !p.is_empty() => {
            assert_eq!(o.logits_err, Ok(()), "{ctx} logits_from_probs");
            let l: Vec<f64> = p.iter().map(|&v| (v as f64).ln()).collect();
            let n = l.len() as f64;
            let c = -l.iter().sum::<f64>() / n;
            let e_c = f
                * (l.iter()
                    .map(|v| 32.0 * U * v.abs() + 2.0 * ulp_f32(*v))
                    .sum::<f64>()
                    / n
                    + ulp_f32(c));
            for (i, (&li, &v)) in l.iter().zip(&o.logits).enumerate() {
                let r = li + c;
                let bound = f * (2.0 * ulp_f32(li) + ulp_f32(r)) + e_c;
                assert!(
                    close(v, r, bound),
                    "{ctx} logits_from_probs: element {i}: {v:e} vs {r:e}"
                );
            }
        }
        None => {}
    }
    // softmax_of_combination([(−1.5, x), (2.5, p)]).
    if finite && x.iter().all(|v| v.abs() < 1e37) {
        let z: Vec<f64> = x
            .iter()
            .zip(p)
            .map(|(&a, &b)| -1.5 * a as f64 + 2.5 * b as f64)
            .collect();
        let am: Vec<f64> = x
            .iter()
            .zip(p)
            .map(|(&a, &b)| 1.5 * (a as f64).abs() + 2.5 * (b as f64).abs())
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|t| (t - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let r: Vec<f64> = e.iter().map(|v| v / s).collect();
        let term = |j: usize| f * (4.0 * am[j] + (z[j] - m).abs());
        let spread: f64 = (0..r.len()).map(|j| r[j] * term(j)).sum::<f64>();
        for (i, (&ri, &v)) in r.iter().zip(&o.combo).enumerate() {
            let bound = bud.c + sum_slack(&r) * f + term(i) + spread;
            if v == 0.0 && ri * (1.0 - bound * 2.0 * U) < MIN_NORMAL {
                continue;
            }
            let err = (v as f64 - ri).abs() / ulp_f32(ri);
            assert!(
                err <= bound,
                "{ctx} softmax_of_combination: element {i}: {v:e} vs {ri:e}: {err:.2} > {bound:.2} ULP"
            );
        }
    }
}

#[test]
fn round_toward_zero() {
    directed(Env::TowardZero);
}

#[test]
fn round_up() {
    directed(Env::Up);
}

#[test]
fn round_down() {
    directed(Env::Down);
}

#[test]
fn flush_and_round_toward_zero() {
    directed(Env::FlushTowardZero);
}

/// The kernels' exp under each rounding mode, measured through
/// `softmax([0, x])[1] = e^x/(1 + e^x)` for x in [−86, 0]: reports the worst
/// error in ULP per mode and checks it against the documented 4 in every mode
/// (docs/ACCURACY.md allows twice that under a directed mode).
#[test]
fn directed_rounding_exp_error() {
    let test = "directed_rounding_exp_error";
    if skip_unsupported(test) {
        return;
    }
    for sm in engines(test) {
        let mut line = format!("{test}: {}:", sm.backend());
        for env in [None, Some(Env::TowardZero), Some(Env::Up), Some(Env::Down)] {
            let worst = worst_pair_error(&sm, env);
            line += &format!(
                " {}: {worst:.2} ULP",
                env.map_or("nearest".into(), |e| format!("{e:?}"))
            );
            let limit = 4.0;
            assert!(worst <= limit, "{line}: above {limit}");
        }
        println!("{line}");
    }
}

/// The worst error of `softmax([0, x])[1]` over x in [−86, 0] under `env`.
fn worst_pair_error(sm: &Softmax, env: Option<Env>) -> f64 {
    let (count, step) = if quick() {
        (2_000, 0.043_21)
    } else {
        (20_000, 0.004_321)
    };
    let xs: Vec<f32> = (0..count).map(|i| -(i as f32) * step).collect();
    let mut pairs = vec![[0.0f32; 2]; xs.len()];
    let mut body = || {
        for (x, out) in xs.iter().zip(pairs.iter_mut()) {
            sm.softmax(&[0.0, *x], out).unwrap();
        }
    };
    match env {
        Some(e) => under(e, body),
        None => body(),
    }
    let mut worst = 0.0f64;
    for (x, out) in xs.iter().zip(&pairs) {
        let r = reference::softmax(&[0.0, *x]);
        if r[1] >= MIN_NORMAL {
            worst = worst.max((out[1] as f64 - r[1]).abs() / ulp_f32(r[1]));
        }
    }
    worst
}

/// docs/ACCURACY.md, finding 6 of the accuracy issue: under a directed rounding
/// mode every result stays within twice its bound. `softmax([1, 2, 3])`
/// (65 ULP off under round-up on the scalar backend before the kernels
/// switched to round-to-nearest) and the worst pair over `[−86, 0]`.
#[test]
fn directed_rounding_keeps_spec_accuracy() {
    if skip_unsupported("directed_rounding_keeps_spec_accuracy") {
        return;
    }
    for sm in engines("directed_rounding_keeps_spec_accuracy") {
        let r = reference::softmax(&[1.0, 2.0, 3.0]);
        for env in [Env::TowardZero, Env::Up, Env::Down] {
            let mut y = [0.0f32; 3];
            under(env, || sm.softmax(&[1.0, 2.0, 3.0], &mut y).unwrap());
            for (v, r) in y.iter().zip(&r) {
                let err = (*v as f64 - r).abs() / ulp_f32(*r);
                assert!(
                    err <= 8.0,
                    "{} {env:?}: softmax([1, 2, 3]) {err:.2} ULP off",
                    sm.backend()
                );
            }
            let worst = worst_pair_error(&sm, Some(env));
            assert!(
                worst <= 8.0,
                "{} {env:?}: softmax([0, x]) is {worst:.2} ULP off",
                sm.backend()
            );
        }
        println!("{}: directed rounding within the bound", sm.backend());
    }
}
