//! Hostile floating-point environments. The rule (docs/ACCURACY.md, "The
//! floating-point environment"): every call gives bit for bit what it gives
//! in the default environment (round-to-nearest, no flushing), whatever
//! rounding mode, flush-to-zero and denormals-are-zero the caller set, and
//! leaves the caller's control register exactly as it found it.
//!
//! Each test sets the thread's FP control register (x86-64 MXCSR through
//! `stmxcsr`/`ldmxcsr`, aarch64 FPCR through `mrs`/`msr`), runs every
//! engine on inputs computed beforehand, restores the register (also on
//! panic) and checks that the call left it as set; references and checks
//! run in the default environment. The register is per thread, so the
//! other tests of this binary are not affected.
//!
//! The grid: x86-64, the 4 rounding modes × FTZ × DAZ (16 environments);
//! aarch64, the 4 rounding modes × FZ (8). Engines: every backend the CPU
//! runs (through the public API, half-precision element types included)
//! and, on x86-64, the portable 16-lane kernel (AVX-512's lane logic).
//! What is established:
//!
//! * every function's every result in every environment has the default
//!   environment's bits (`every_environment_gives_the_default_bits`), on
//!   rows chosen to meet what the environment changes: results whose exact
//!   value is subnormal (the row of 1,024 zeros and one −87, whose −87
//!   entry is about 1.6e-41; f16 outputs below 2^-14), subnormal inputs,
//!   probabilities and α, directed rounding's range-reduction trap;
//! * the default environment's results meet the documented bounds, and a
//!   result is 0 only where its own term is below 2^-126 (the subnormal
//!   ones are returned): the checks against the f64 reference;
//! * the `rayon` feature's functions give one thread's bits whatever the
//!   caller's and the worker threads' environments;
//! * under a directed mode, the exp stays within its bound (without the
//!   switch to round-to-nearest, softmax([1, 2, 3]) was 65 ULP off under
//!   round-up on the scalar backend).

use simd_softmax::{Anchor, Backend, Error, Softmax, bf16, f16, reference};
use std::hint::black_box;

// ---------------------------------------------------------------------------
// The FP control register
// ---------------------------------------------------------------------------

/// A rounding mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rounding {
    Nearest,
    Down,
    Up,
    TowardZero,
}

/// An FP environment to run the kernels under. On aarch64 FZ is both
/// flushes at once (`ftz == daz`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Env {
    rounding: Rounding,
    /// Results below 2^-126 flushed to 0 (MXCSR.FTZ / FPCR.FZ).
    ftz: bool,
    /// Subnormal inputs read as 0 (MXCSR.DAZ / FPCR.FZ).
    daz: bool,
}

impl Env {
    const DEFAULT: Env = Env::rounding(Rounding::Nearest);

    const fn rounding(rounding: Rounding) -> Env {
        Env {
            rounding,
            ftz: false,
            daz: false,
        }
    }

    /// Every environment of this architecture, the default one first.
    fn grid() -> Vec<Env> {
        let mut v = Vec::new();
        for (ftz, daz) in [(false, false), (true, false), (false, true), (true, true)] {
            if !reg::SEPARATE_DAZ && ftz != daz {
                continue;
            }
            for rounding in [
                Rounding::Nearest,
                Rounding::Down,
                Rounding::Up,
                Rounding::TowardZero,
            ] {
                v.push(Env { rounding, ftz, daz });
            }
        }
        v
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.rounding)?;
        match (self.ftz, self.daz, reg::SEPARATE_DAZ) {
            (true, true, false) => write!(f, "+FZ"),
            (ftz, daz, _) => {
                if ftz {
                    write!(f, "+FTZ")?;
                }
                if daz {
                    write!(f, "+DAZ")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod reg {
    use super::{Env, Rounding};
    use std::arch::asm;

    const FTZ: u32 = 1 << 15;
    const DAZ: u32 = 1 << 6;
    const RC_MASK: u32 = 3 << 13;
    const RC_DOWN: u32 = 1 << 13;
    const RC_UP: u32 = 2 << 13;
    const RC_ZERO: u32 = 3 << 13;

    pub const SUPPORTED: bool = true;
    /// FTZ and DAZ are two bits.
    pub const SEPARATE_DAZ: bool = true;
    /// The exception flags (bits 0–5): status, not control; arithmetic sets
    /// them (a subnormal result raises underflow), so the comparisons of
    /// the register leave them out.
    pub const STATUS: u32 = 0x3f;

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
        let rc = match env.rounding {
            Rounding::Nearest => 0,
            Rounding::Down => RC_DOWN,
            Rounding::Up => RC_UP,
            Rounding::TowardZero => RC_ZERO,
        };
        let flush = if env.ftz { FTZ } else { 0 } | if env.daz { DAZ } else { 0 };
        (saved & !(FTZ | DAZ | RC_MASK)) | flush | rc
    }
}

#[cfg(target_arch = "aarch64")]
mod reg {
    use super::{Env, Rounding};
    use std::arch::asm;

    const FZ: u64 = 1 << 24;
    const RMODE_MASK: u64 = 3 << 22;
    const RP: u64 = 1 << 22; // toward +inf
    const RM: u64 = 2 << 22; // toward -inf
    const RZ: u64 = 3 << 22; // toward zero

    pub const SUPPORTED: bool = true;
    /// FZ is one bit for both.
    pub const SEPARATE_DAZ: bool = false;
    /// FPCR holds no status (the flags are FPSR's).
    pub const STATUS: u64 = 0;

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
        assert_eq!(env.ftz, env.daz, "aarch64 has one flush bit");
        let rm = match env.rounding {
            Rounding::Nearest => 0,
            Rounding::Down => RM,
            Rounding::Up => RP,
            Rounding::TowardZero => RZ,
        };
        (saved & !(FZ | RMODE_MASK)) | if env.ftz { FZ } else { 0 } | rm
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod reg {
    use super::Env;
    pub const SUPPORTED: bool = false;
    pub const SEPARATE_DAZ: bool = false;
    pub const STATUS: u64 = 0;
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

/// Runs `f` with the thread's FP environment set to `env`, checks that
/// `f` left the register's control bits exactly as set (the kernels
/// restore the caller's register bit for bit), then restores the saved
/// one. Keep `f` to kernel
/// calls on prepared buffers: anything else in it (formatting, the
/// reference) would run under `env` too.
fn under<R>(env: Env, f: impl FnOnce() -> R) -> R {
    let saved = reg::read();
    let set = reg::with(saved, env);
    let (r, after) = {
        let _restore = Restore(saved, reg::write);
        reg::write(set);
        let r = black_box(f());
        (r, reg::read())
    };
    assert_eq!(
        after & !reg::STATUS,
        set & !reg::STATUS,
        "{env:?}: the call did not restore the caller's control register"
    );
    assert_eq!(reg::read(), saved, "the test's own restore failed");
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

/// One engine: a dispatched backend through the public API (every
/// function, the half-precision element types too), or a portable kernel
/// used directly (the f32 functions of `DynKernel`).
enum Engine {
    Api(Softmax),
    #[cfg(target_arch = "x86_64")]
    Portable(&'static dyn simd_softmax_kernels::portable::DynKernel),
}

impl Engine {
    fn name(&self) -> String {
        match self {
            Engine::Api(sm) => sm.backend().to_string(),
            #[cfg(target_arch = "x86_64")]
            Engine::Portable(_) => "portable16 (AVX-512 lane logic)".into(),
        }
    }
}

/// The dispatched backends this CPU runs; prints the skipped ones and why.
fn backends(test: &str) -> Vec<Softmax> {
    let under_valgrind = std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some();
    let mut v = Vec::new();
    for &b in Backend::ALL {
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

/// The backends, then the portable kernels this build has (printing the
/// ones it has not, and why).
fn engines(test: &str) -> Vec<Engine> {
    let mut v: Vec<Engine> = backends(test).into_iter().map(Engine::Api).collect();
    v.extend(portable16(test));
    println!(
        "{test}: skipping portable4 and portable8: not built for the tests (their lane \
         logic runs natively: NEON under qemu-aarch64, AVX2 on every x86-64 CPU tested)"
    );
    v
}

/// The portable 16-lane kernel, except in quick mode.
#[cfg(target_arch = "x86_64")]
fn portable16(test: &str) -> Option<Engine> {
    if quick() {
        println!(
            "{test}: skipping portable16 (AVX-512 lane logic): quick mode \
             (SIMD_SOFTMAX_TEST_QUICK=1)"
        );
        return None;
    }
    Some(Engine::Portable(
        simd_softmax_kernels::portable::lanes16_dyn(),
    ))
}

#[cfg(not(target_arch = "x86_64"))]
fn portable16(test: &str) -> Option<Engine> {
    println!("{test}: skipping portable16 (AVX-512 lane logic): built for x86-64 test runs only");
    None
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
    v.extend(subnormal_rows());
    v
}

/// The rows whose results the environment would change: results whose
/// exact value is subnormal although their term `e^(x_i − m)` is not below
/// 2^-126 (FTZ would flush them), f16 outputs below 2^-14, and half inputs
/// that are subnormal.
fn subnormal_rows() -> Vec<(String, Vec<f32>)> {
    let mut v = Vec::new();
    // The row: 1,024 zeros and one −87; that entry's softmax is
    // e^-87 / 1024, about 1.6e-41.
    let mut row = vec![0.0f32; 1025];
    row[512] = -87.0;
    v.push(("1024 zeros and one -87 n=1025".to_string(), row));
    // Zeros and a tail from −70 to −87.3: results from normal to deep
    // subnormal, on the short, pipeline and two-pass-sized rows.
    for n in [8usize, 17, 64, 100, 1000, 4096] {
        if quick() && n > 100 {
            continue;
        }
        let tail = (n / 2).max(1);
        let row: Vec<f32> = (0..n)
            .map(|i| {
                if i % 2 == 1 || i / 2 >= tail {
                    0.0
                } else {
                    -70.0 - 17.3 * (i / 2) as f32 / tail as f32
                }
            })
            .collect();
        v.push((format!("subnormal results n={n}"), row));
    }
    // f16 subnormal inputs (normal as f32): k·2^-24 beside zeros.
    v.push((
        "f16-subnormal inputs n=16".to_string(),
        (0..16).map(|k| k as f32 * 2f32.powi(-24)).collect(),
    ));
    // Subnormal inputs beside a −∞ mask and normal values.
    v.push((
        "subnormal inputs, masked n=9".to_string(),
        vec![
            1e-40,
            f32::NEG_INFINITY,
            -3e-39,
            0.5,
            f32::from_bits(1),
            -1.0,
            f32::NEG_INFINITY,
            2e-45,
            0.0,
        ],
    ));
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
// Every function on one row
// ---------------------------------------------------------------------------

/// `softmax_scaled`'s α: ordinary, the limits, and subnormal ones (which
/// DAZ would read as 0: a masked entry's `−∞·0` was a NaN).
const ALPHAS: [f32; 8] = [
    0.5,
    -2.0,
    0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    3.0,
    1e-40,
    -1.4e-45,
];
/// The subnormal α of `softmax_scaled_rows`.
const ALPHA_SUB: f32 = 1e-40;
const JAC_MAX: usize = 64;

/// One row's inputs, prepared in the default environment: the f32 row,
/// probabilities for backward / jacobian / logits (its softmax), the row
/// as f16 and bf16, and a row length dividing it for the `_rows` forms.
struct Inputs {
    x: Vec<f32>,
    p: Vec<f32>,
    x16: Vec<f16>,
    xb: Vec<bf16>,
    row_len: usize,
}

impl Inputs {
    fn of(x: Vec<f32>) -> Inputs {
        let n = x.len();
        let mut p = vec![0.0f32; n];
        Softmax::with_backend(Backend::Scalar)
            .unwrap()
            .softmax(&x, &mut p)
            .unwrap();
        Inputs {
            x16: x.iter().map(|&v| f16::from_f32(v)).collect(),
            xb: x.iter().map(|&v| bf16::from_f32(v)).collect(),
            row_len: (1..=n)
                .rev()
                .find(|d| n.is_multiple_of(*d) && *d <= 16)
                .unwrap_or(1),
            x,
            p,
        }
    }
}

/// Every function's results on one row, into buffers allocated before
/// `under` switches the environment.
struct Outs {
    f32s: Vec<(&'static str, Vec<f32>)>,
    f16s: Vec<(&'static str, Vec<f16>)>,
    bf16s: Vec<(&'static str, Vec<bf16>)>,
    errors: Vec<(&'static str, Result<(), Error>)>,
}

/// The element type of a result, for counting its subnormals.
#[derive(Clone, Copy)]
enum Kind {
    F32,
    F16,
    Bf16,
}

impl Kind {
    /// Whether `bits` is a subnormal of this type.
    fn subnormal(self, bits: u32) -> bool {
        let (exp, man) = match self {
            Kind::F32 => (0x7f80_0000, 0x007f_ffff),
            Kind::F16 => (0x7c00, 0x03ff),
            Kind::Bf16 => (0x7f80, 0x007f),
        };
        bits & exp == 0 && bits & man != 0
    }
}

impl Outs {
    /// The f32 result of function `name`.
    fn f32(&self, name: &str) -> &[f32] {
        &self.f32s.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// Every result as bits: (function, element type, bits).
    fn results(&self) -> Vec<(&'static str, Kind, Vec<u32>)> {
        let mut v = Vec::new();
        for (n, r) in &self.f32s {
            v.push((*n, Kind::F32, r.iter().map(|x| x.to_bits()).collect()));
        }
        for (n, r) in &self.f16s {
            v.push((
                *n,
                Kind::F16,
                r.iter().map(|x| x.to_bits() as u32).collect(),
            ));
        }
        for (n, r) in &self.bf16s {
            v.push((
                *n,
                Kind::Bf16,
                r.iter().map(|x| x.to_bits() as u32).collect(),
            ));
        }
        v
    }

    /// How many functions gave results (errors included).
    fn functions(&self) -> usize {
        self.f32s.len() + self.f16s.len() + self.bf16s.len() + self.errors.len()
    }
}

/// The names of `softmax_scaled` per α of [`ALPHAS`].
const SCALED: [&str; 8] = [
    "softmax_scaled 0.5",
    "softmax_scaled -2",
    "softmax_scaled 0",
    "softmax_scaled inf",
    "softmax_scaled -inf",
    "softmax_scaled 3",
    "softmax_scaled 1e-40",
    "softmax_scaled -1.4e-45",
];

/// Runs every function of `e` on `inp` under `env` (through [`under`],
/// which checks that the register is as the test set it afterwards).
fn run(e: &Engine, inp: &Inputs, env: Env) -> Outs {
    let (x, p, rl) = (&inp.x[..], &inp.p[..], inp.row_len);
    let n = x.len();
    let nj = n.min(JAC_MAX);
    // The anchor component: the largest probability (0 only in NaN rows).
    let k = (0..n).fold(0, |k, i| if p[i] > p[k] { i } else { k });
    let z = vec![0.0f32; n];
    let mut f: Vec<Vec<f32>> = vec![z.clone(); 19 + ALPHAS.len()];
    f[1] = x.to_vec();
    f[3] = x.to_vec();
    f[6] = x.to_vec();
    f[8] = x.to_vec();
    f[13] = vec![0.0; nj * nj];
    f[4] = vec![0.0; 1];
    f[18] = vec![0.0; 2];
    let (h, b) = (vec![f16::ZERO; n], vec![bf16::ZERO; n]);
    let (mut h16, mut h16_log, mut h16_rows, mut f32_h16) = (h.clone(), h.clone(), h.clone(), h);
    let (mut hb, mut hb_log, mut f32_hb) = (b.clone(), b.clone(), b);
    let mut hb_ip = inp.xb.clone();
    let mut errs = [Ok(()), Ok(())];
    let terms: [(f32, &[f32]); 2] = [(-1.5, x), (2.5, p)];
    {
        let [
            soft,
            soft_ip,
            log,
            log_ip,
            lse,
            rows,
            rows_ip,
            log_rows,
            log_rows_ip,
            scaled_rows,
            sigmoid,
            backward,
            logits_c,
            jacobian,
            logits,
            combo,
            hb_f32,
            h16_f32,
            lse_h,
            scaled @ ..,
        ] = &mut f[..]
        else {
            unreachable!()
        };
        let body = || match e {
            Engine::Api(sm) => {
                sm.softmax(x, soft).unwrap();
                sm.softmax_in_place(soft_ip);
                sm.log_softmax(x, log).unwrap();
                sm.log_softmax_in_place(log_ip);
                lse[0] = sm.logsumexp(x);
                sm.softmax_rows(x, rows, rl).unwrap();
                sm.softmax_rows_in_place(rows_ip, rl).unwrap();
                sm.log_softmax_rows(x, log_rows, rl).unwrap();
                sm.log_softmax_rows_in_place(log_rows_ip, rl).unwrap();
                for (a, out) in ALPHAS.iter().zip(scaled.iter_mut()) {
                    sm.softmax_scaled(x, out, *a).unwrap();
                }
                sm.softmax_scaled_rows(x, scaled_rows, rl, ALPHA_SUB)
                    .unwrap();
                sm.sigmoid(x, sigmoid).unwrap();
                sm.softmax_backward(p, x, backward).unwrap();
                sm.jacobian(&p[..nj], jacobian).unwrap();
                errs[0] = sm.logits_from_probs(p, logits, Anchor::ZeroMean);
                errs[1] = sm.logits_from_probs(p, logits_c, Anchor::Component(k));
                sm.softmax_of_combination(&terms, combo).unwrap();
                // Half precision: in, out, both, in place, rows.
                sm.softmax(&inp.x16, &mut h16).unwrap();
                sm.softmax(&inp.xb, &mut hb).unwrap();
                sm.softmax(x, &mut f32_h16).unwrap();
                sm.softmax(x, &mut f32_hb).unwrap();
                sm.softmax(&inp.xb, hb_f32).unwrap();
                sm.softmax(&inp.x16, h16_f32).unwrap();
                sm.log_softmax(&inp.x16, &mut h16_log).unwrap();
                sm.log_softmax(&inp.xb, &mut hb_log).unwrap();
                sm.softmax_in_place(&mut hb_ip);
                sm.softmax_rows(&inp.x16, &mut h16_rows, rl).unwrap();
                lse_h[0] = sm.logsumexp(&inp.x16);
                lse_h[1] = sm.logsumexp(&inp.xb);
            }
            #[cfg(target_arch = "x86_64")]
            Engine::Portable(kern) => {
                kern.softmax(x, soft);
                kern.softmax_in_place(soft_ip);
                kern.log_softmax(x, log);
                kern.log_softmax_in_place(log_ip);
                lse[0] = kern.logsumexp(x);
                kern.softmax_rows(x, rows, rl);
                kern.softmax_rows_in_place(rows_ip, rl);
                kern.log_softmax_rows(x, log_rows, rl);
                kern.log_softmax_rows_in_place(log_rows_ip, rl);
                for (a, out) in ALPHAS.iter().zip(scaled.iter_mut()) {
                    kern.softmax_scaled(x, out, *a);
                }
                kern.softmax_scaled_rows(x, scaled_rows, rl, ALPHA_SUB);
                kern.sigmoid(x, sigmoid);
                kern.softmax_backward(p, x, backward);
                kern.jacobian(&p[..nj], jacobian);
                // No argument checks here: zeros give −∞ or NaN outputs,
                // the same in every environment.
                kern.logits_from_probs(p, logits, Anchor::ZeroMean);
                kern.logits_from_probs(p, logits_c, Anchor::Component(k));
                kern.softmax_of_combination(&terms, combo);
            }
        };
        under(env, body);
    }
    let names = [
        "softmax",
        "softmax_in_place",
        "log_softmax",
        "log_softmax_in_place",
        "logsumexp",
        "softmax_rows",
        "softmax_rows_in_place",
        "log_softmax_rows",
        "log_softmax_rows_in_place",
        "softmax_scaled_rows 1e-40",
        "sigmoid",
        "softmax_backward",
        "logits_from_probs Component",
        "jacobian",
        "logits_from_probs ZeroMean",
        "softmax_of_combination",
        "softmax bf16->f32",
        "softmax f16->f32",
        "logsumexp f16, bf16",
    ];
    let api = matches!(e, Engine::Api(_));
    let mut o = Outs {
        f32s: names.iter().chain(&SCALED).copied().zip(f).collect(),
        f16s: Vec::new(),
        bf16s: Vec::new(),
        errors: Vec::new(),
    };
    if api {
        o.f16s = vec![
            ("softmax f16->f16", h16),
            ("softmax f32->f16", f32_h16),
            ("log_softmax f16->f16", h16_log),
            ("softmax_rows f16->f16", h16_rows),
        ];
        o.bf16s = vec![
            ("softmax bf16->bf16", hb),
            ("softmax f32->bf16", f32_hb),
            ("log_softmax bf16->bf16", hb_log),
            ("softmax_in_place bf16", hb_ip),
        ];
        o.errors = vec![
            ("logits_from_probs ZeroMean error", errs[0].clone()),
            ("logits_from_probs Component error", errs[1].clone()),
        ];
    } else {
        let half = [
            "softmax bf16->f32",
            "softmax f16->f32",
            "logsumexp f16, bf16",
        ];
        o.f32s.retain(|(n, _)| !half.contains(n));
    }
    o
}

/// Every result of `o` bit for bit `base`'s; returns how many were compared.
fn same_bits(ctx: &str, o: &Outs, base: &Outs) -> usize {
    let mut count = 0;
    for ((name, _, a), (_, _, b)) in o.results().iter().zip(base.results().iter()) {
        assert_eq!(a.len(), b.len());
        for (i, (u, v)) in a.iter().zip(b).enumerate() {
            assert!(
                u == v,
                "{ctx}: {name}[{i}] = {u:#010x}, {v:#010x} in the default environment \
                 (as f32: {:e}, {:e})",
                f32::from_bits(*u),
                f32::from_bits(*v),
            );
        }
        count += a.len();
    }
    for ((name, a), (_, b)) in o.errors.iter().zip(&base.errors) {
        assert_eq!(a, b, "{ctx}: {name}");
        count += 1;
    }
    count
}

/// The default environment's results against the f64 reference, and the
/// half outputs against the f32 ones rounded once.
fn check_default(ctx: &str, inp: &Inputs, o: &Outs) {
    let x = &inp.x;
    check_against_reference(ctx, x, o, Budget::DEFAULT);
    if !overflows(x) {
        for (a, name) in ALPHAS.iter().zip(SCALED) {
            check_scaled(
                &format!("{ctx} {name}"),
                x,
                *a,
                o.f32(name),
                Budget::DEFAULT,
            );
        }
    }
    check_family(ctx, x, &inp.p, o, Budget::DEFAULT);
    if let Some((_, h)) = o.f16s.iter().find(|(n, _)| *n == "softmax f32->f16") {
        for (i, (v, s)) in h.iter().zip(o.f32("softmax")).enumerate() {
            assert_eq!(
                v.to_bits(),
                f16::from_f32(*s).to_bits(),
                "{ctx} softmax f32->f16 [{i}]: not the f32 result rounded once"
            );
        }
    }
    if let Some((_, h)) = o.bf16s.iter().find(|(n, _)| *n == "softmax f32->bf16") {
        for (i, (v, s)) in h.iter().zip(o.f32("softmax")).enumerate() {
            let r = bf16::from_f32(*s);
            assert!(
                v.to_bits() == r.to_bits() || (v.is_nan() && r.is_nan()),
                "{ctx} softmax f32->bf16 [{i}]: not the f32 result rounded once"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn environment_takes_effect() {
    let test = "environment_takes_effect";
    if skip_unsupported(test) {
        return;
    }
    for env in Env::grid() {
        let third = under(env, || black_box(1.0f32) / black_box(3.0f32)).to_bits();
        let minus_two_thirds = under(env, || -black_box(2.0f32) / black_box(3.0f32)).to_bits();
        let (third_want, minus_want) = match env.rounding {
            Rounding::Nearest => (0x3eaa_aaab, 0xbf2a_aaab),
            Rounding::Down => (0x3eaa_aaaa, 0xbf2a_aaab),
            Rounding::Up => (0x3eaa_aaab, 0xbf2a_aaaa),
            Rounding::TowardZero => (0x3eaa_aaaa, 0xbf2a_aaaa),
        };
        assert_eq!(third, third_want, "{env:?}: 1/3");
        assert_eq!(minus_two_thirds, minus_want, "{env:?}: -2/3");
        // A subnormal result of normal inputs (FTZ), a normal result of a
        // subnormal input (DAZ).
        let half_min = under(env, || black_box(f32::MIN_POSITIVE) * black_box(0.5f32));
        assert_eq!(half_min == 0.0, env.ftz, "{env:?}: FTZ on 2^-127");
        let sub_in = under(env, || {
            black_box(f32::from_bits(1 << 22)) * black_box(4.0f32)
        });
        assert_eq!(sub_in == 0.0, env.daz, "{env:?}: DAZ on a subnormal input");
    }
    println!(
        "{test}: {} environments set and in effect",
        Env::grid().len()
    );
}

/// The grid: every engine, every environment, every function, every row.
#[test]
fn every_environment_gives_the_default_bits() {
    let test = "grid";
    if skip_unsupported(test) {
        return;
    }
    let envs = Env::grid();
    assert_eq!(envs[0], Env::DEFAULT);
    let inputs: Vec<(String, Inputs)> = rows()
        .into_iter()
        .map(|(name, x)| (name, Inputs::of(x)))
        .collect();
    for e in engines(test) {
        let name = e.name();
        let (mut compared, mut functions) = (0usize, 0);
        let (mut sub_f32, mut sub_half) = (0usize, 0usize);
        for (row, inp) in &inputs {
            let base = run(&e, inp, Env::DEFAULT);
            check_default(&format!("{test} [{name}] {row}"), inp, &base);
            for (_, kind, bits) in base.results() {
                let subs = bits.iter().filter(|&&b| kind.subnormal(b)).count();
                match kind {
                    Kind::F32 => sub_f32 += subs,
                    _ => sub_half += subs,
                }
            }
            for &env in &envs[1..] {
                let o = run(&e, inp, env);
                compared += same_bits(&format!("{test} [{name}] {env:?} {row}"), &o, &base);
            }
            functions = base.functions();
        }
        // The rows must reach what the environment changes.
        assert!(sub_f32 > 0, "{test} [{name}]: no subnormal f32 result");
        println!(
            "{test}: {name}: {} environments x {functions} functions x {} rows: every \
             result the default environment's bits ({compared} compared; the rows give \
             {sub_f32} subnormal f32 and {sub_half} subnormal f16/bf16 results), the \
             register as the caller set it after every run",
            envs.len() - 1,
            inputs.len(),
        );
    }
}

/// The example: 1,024 zeros and one −87. The −87 entry's result,
/// about 1.6e-41, is subnormal although its term e^-87 is not below
/// 2^-126: returned, within its bound in units of 2^-149, in every
/// environment (FTZ returned 0 before the kernels cleared it). With −84
/// in its place the result, about 3.2e-40, is a bf16 subnormal too.
#[test]
fn subnormal_result_returned_in_every_environment() {
    let test = "subnormal_result";
    if skip_unsupported(test) {
        return;
    }
    for sm in backends(test) {
        let b = sm.backend();
        for t in [-87.0f32, -84.0] {
            let mut x = vec![0.0f32; 1025];
            x[512] = t;
            let r = reference::softmax(&x)[512];
            assert!(r > 0.0 && r < MIN_NORMAL, "the reference is subnormal");
            for env in Env::grid() {
                let mut y = vec![0.0f32; x.len()];
                let mut yb = vec![bf16::ZERO; x.len()];
                under(env, || {
                    sm.softmax(&x, &mut y).unwrap();
                    sm.softmax(&x, &mut yb).unwrap();
                });
                let err = (y[512] as f64 - r).abs() / ulp_f32(r);
                assert!(
                    y[512] != 0.0 && err <= 4.0 - t as f64,
                    "[{b}] {env:?} {t}: {:e} against {r:e} ({err:.2} units of 2^-149)",
                    y[512]
                );
                assert_eq!(
                    yb[512].to_bits(),
                    bf16::from_f32(y[512]).to_bits(),
                    "[{b}] {env:?} {t}: bf16 output"
                );
                if t == -84.0 {
                    assert!(yb[512].to_f32() > 0.0, "[{b}] {env:?}: bf16 output 0");
                }
            }
            println!(
                "{test}: {b}: softmax(1024 zeros, {t})[512] = {r:e}, within the bound, in {} \
                 environments, f32 and bf16",
                Env::grid().len()
            );
        }
    }
}

/// `softmax_scaled` with a subnormal α: a masked entry (`−∞`) stays 0 in
/// every environment (DAZ read α as 0 in the keys pass, and `−∞·0` was a
/// NaN), and the rest is the limit `α → 0`, uniform.
#[test]
fn subnormal_alpha_in_every_environment() {
    let test = "subnormal_alpha";
    if skip_unsupported(test) {
        return;
    }
    for sm in backends(test) {
        let b = sm.backend();
        // Short rows take the keys pass, longer ones the scaled stage.
        for n in [8usize, 100, 1000] {
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 4 == 1 {
                        f32::NEG_INFINITY
                    } else {
                        (i % 7) as f32 - 3.0
                    }
                })
                .collect();
            let live = x.iter().filter(|v| v.is_finite()).count() as f32;
            for alpha in [1e-40f32, f32::from_bits(1), 1e-39] {
                let mut base = vec![0.0f32; n];
                sm.softmax_scaled(&x, &mut base, alpha).unwrap();
                for env in Env::grid() {
                    let mut y = vec![0.0f32; n];
                    under(env, || sm.softmax_scaled(&x, &mut y, alpha).unwrap());
                    for (i, (&v, &xi)) in y.iter().zip(&x).enumerate() {
                        assert_eq!(
                            v.to_bits(),
                            base[i].to_bits(),
                            "[{b}] {env:?} n={n} alpha={alpha:e}: [{i}]"
                        );
                        if xi.is_finite() {
                            assert!((v * live - 1.0).abs() < 1e-5, "[{b}] n={n}: [{i}] = {v:e}");
                        } else {
                            assert_eq!(v, 0.0, "[{b}] {env:?} n={n}: masked [{i}] = {v:e}");
                        }
                    }
                }
            }
        }
        println!("{test}: {b}: subnormal alpha, masked entries 0, in every environment");
    }
}

/// A subnormal probability is a probability in every environment (DAZ
/// made it a zero: `−∞` anchored elsewhere, `Error::ZeroProbability` with
/// the zero mean).
#[test]
fn subnormal_probabilities_in_every_environment() {
    let test = "subnormal_probabilities";
    if skip_unsupported(test) {
        return;
    }
    let sub = f32::from_bits(0x0000_1000);
    let p = [0.5f32, sub, 0.25, 0.25 - sub];
    for sm in backends(test) {
        let b = sm.backend();
        for env in Env::grid() {
            let (r_comp, out_comp, r_mean, out_mean) = under(env, || {
                let (mut o, mut m) = ([0.0f32; 4], [0.0f32; 4]);
                let r = sm.logits_from_probs(&p, &mut o, Anchor::Component(0));
                let s = sm.logits_from_probs(&p, &mut m, Anchor::ZeroMean);
                (r, o, s, m)
            });
            assert_eq!(r_comp, Ok(()), "[{b}] {env:?}");
            assert_eq!(r_mean, Ok(()), "[{b}] {env:?}: a subnormal is not a zero");
            let want = (sub as f64).ln() - 0.5f64.ln();
            assert!(
                (out_comp[1] as f64 - want).abs() < 1e-4,
                "[{b}] {env:?}: ln(sub) - ln(0.5) = {}",
                out_comp[1]
            );
            assert_eq!(out_comp[0], 0.0, "[{b}] {env:?}");
            assert!(out_mean.iter().all(|v| v.is_finite()), "[{b}] {env:?}");
        }
        println!("{test}: {b}: a subnormal probability is a probability in every environment");
    }
}

/// The `rayon` functions give one thread's bits in every environment: of
/// the caller, and of worker threads that start in a hostile one (round-up,
/// FTZ + DAZ; the workers never see the caller's register).
#[cfg(feature = "rayon")]
#[test]
fn parallel_functions_give_one_threads_bits() {
    let test = "parallel";
    if skip_unsupported(test) {
        return;
    }
    let hostile = Env {
        rounding: Rounding::Up,
        ftz: true,
        daz: true,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(move |_| reg::write(reg::with(reg::read(), hostile)))
        .build()
        .unwrap();
    // Rows of 4096: zeros and a tail from −75 to −87.3 (subnormal results),
    // more than `PAR_MIN` elements so that the batch is split. One row of
    // 2^21 (split by `par_softmax`) with a tail from −70 to −87.3.
    let (rows, cols) = if quick() { (40, 4096) } else { (64, 4096) };
    let tail = |n: usize, hi: f32, every: usize| -> Vec<f32> {
        (0..n)
            .map(|i| {
                if i % every == 0 {
                    hi - (hi + 87.3) * ((i / every) % 64) as f32 / 63.0
                } else {
                    0.0
                }
            })
            .collect()
    };
    let x = tail(rows * cols, -75.0, 64);
    assert!(x.len() > simd_softmax::PAR_MIN);
    let huge = if quick() {
        println!("{test}: par_softmax of 2^21 skipped in quick mode (qemu)");
        None
    } else {
        Some(tail(1 << 21, -70.0, 1024))
    };
    for sm in backends(test) {
        let b = sm.backend();
        let (mut want, mut want_log) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
        sm.softmax_rows(&x, &mut want, cols).unwrap();
        sm.log_softmax_rows(&x, &mut want_log, cols).unwrap();
        let mut want_bf = vec![bf16::ZERO; x.len()];
        sm.softmax_rows(&x, &mut want_bf, cols).unwrap();
        assert!(
            want.iter()
                .any(|v| *v != 0.0 && v.abs() < f32::MIN_POSITIVE)
        );
        let want_huge = huge.as_ref().map(|h| {
            let mut y = vec![0.0f32; h.len()];
            sm.softmax(h, &mut y).unwrap();
            y
        });
        let mut runs = 0;
        for env in Env::grid() {
            for in_pool in [false, true] {
                let (mut y, mut yl) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
                let mut yb = vec![bf16::ZERO; x.len()];
                let mut yh = huge.as_ref().map(|h| vec![0.0f32; h.len()]);
                let body = || {
                    sm.par_softmax_rows(&x, &mut y, cols).unwrap();
                    sm.par_log_softmax_rows(&x, &mut yl, cols).unwrap();
                    sm.par_softmax_rows(&x, &mut yb, cols).unwrap();
                    if let (Some(h), Some(yh)) = (&huge, &mut yh) {
                        sm.par_softmax(h, yh).unwrap();
                    }
                };
                // In the pool the caller is a worker itself, its register
                // set by `under` over the start handler's.
                if in_pool {
                    pool.install(|| under(env, body));
                } else {
                    under(env, body);
                }
                let ctx = format!("[{b}] {env:?} in_pool={in_pool}");
                let same = |a: &[f32], w: &[f32], what: &str| {
                    let i = a
                        .iter()
                        .zip(w)
                        .position(|(u, v)| u.to_bits() != v.to_bits());
                    assert!(i.is_none(), "{ctx}: {what}[{}]", i.unwrap_or(0));
                };
                same(&y, &want, "par_softmax_rows");
                same(&yl, &want_log, "par_log_softmax_rows");
                assert!(
                    yb.iter()
                        .zip(&want_bf)
                        .all(|(u, v)| u.to_bits() == v.to_bits()),
                    "{ctx}: bf16"
                );
                if let (Some(yh), Some(w)) = (&yh, &want_huge) {
                    same(yh, w, "par_softmax");
                }
                runs += 1;
            }
        }
        println!(
            "{test}: {b}: par_softmax_rows, par_log_softmax_rows (f32, bf16){} in {runs} \
             (environment, caller thread) pairs: one thread's bits",
            if huge.is_some() { ", par_softmax" } else { "" }
        );
    }
}

// ---------------------------------------------------------------------------
// The checks against the f64 reference
// ---------------------------------------------------------------------------

/// The error budget: `factor` multiplies every rounding term, `c` is the
/// softmax constant. One budget for every environment: each call computes
/// in the default one.
#[derive(Clone, Copy, Debug)]
struct Budget {
    factor: f64,
    c: f64,
}

impl Budget {
    const DEFAULT: Budget = Budget {
        factor: 1.0,
        c: 4.0,
    };
}

/// The kernels' exp gives 0 below this (its value is below 2^-126); a
/// result may be 0 only where its own key `x_i − m` is below it (plus a
/// margin for the key's own rounding), docs/ACCURACY.md.
const EXP_LO: f64 = -87.336_55 + 1e-4;

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
/// exactly, ordinary entries within `C + slack + |x_i − m|` ULP (units of
/// 2^-149 for subnormal results), 0 only where the term `e^(x_i − m)` is
/// below 2^-126, and the sum within the budget.
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
        if v == 0.0 && (xi as f64 - m as f64) < EXP_LO {
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
fn check_against_reference(ctx: &str, x: &[f32], o: &Outs, bud: Budget) {
    let r = reference::softmax(x);
    let rl = reference::log_softmax(x);
    for f in ["softmax", "softmax_in_place"] {
        check_softmax(&format!("{ctx} {f}"), x, &r, o.f32(f), bud);
    }
    for f in ["log_softmax", "log_softmax_in_place"] {
        check_log_softmax(&format!("{ctx} {f}"), x, &rl, &r, o.f32(f), bud);
    }
    let lse_out = o.f32("logsumexp")[0];
    // logsumexp: the log-softmax bound of the max entry, plus ulp(lse).
    let lse = reference::logsumexp(x);
    if lse.is_nan() || lse.is_infinite() {
        assert!(
            lse_out.is_nan() == lse.is_nan() && (lse.is_nan() || lse_out as f64 == lse),
            "{ctx} logsumexp: {lse_out} vs {lse}"
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
        let diff = (lse_out as f64 - lse).abs();
        assert!(
            diff <= bound,
            "{ctx} logsumexp: {lse_out} vs {lse:e}: {diff:e} > {bound:e}"
        );
    }
    // Sigmoid: 4 ULP (exp ≤ 2, three single roundings); 0 only where
    // e^(−|z|) is below 2^-126.
    for (i, (&z, &v)) in x.iter().zip(o.f32("sigmoid")).enumerate() {
        let r = reference::logistic(z as f64);
        let bound = bud.c;
        if z.is_nan() {
            assert!(v.is_nan());
        } else if z.is_infinite() {
            assert_eq!(v as f64, r, "{ctx} sigmoid({z})");
        } else if !(v == 0.0 && (z as f64) < EXP_LO) {
            let err = (v as f64 - r).abs() / ulp_f32(r);
            assert!(
                err <= bound,
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
        } else if !(v == 0.0 && -zi < EXP_LO) {
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

/// Backward, Jacobian, inverse and combination against f64, with the
/// bounds of the fuzz harness (`fuzz/src/lib.rs`, where each is derived)
/// and every rounding term times `bud.factor`.
fn check_family(ctx: &str, x: &[f32], p: &[f32], o: &Outs, bud: Budget) {
    let f = bud.factor;
    let close = |v: f32, r: f64, bound: f64| {
        (v.is_nan() && r.is_nan()) || v as f64 == r || (v as f64 - r).abs() <= bound
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
        for (i, ((&a, &b), &v)) in p.iter().zip(x).zip(o.f32("softmax_backward")).enumerate() {
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
            let v = o.f32("jacobian")[i * nj + j];
            assert!(
                close(v, r, bound),
                "{ctx} jacobian[{i}][{j}]: {v:e} vs {r:e}"
            );
        }
    }
    // logits_from_probs(p, ZeroMean): ln p − mean(ln p) (or the zero error).
    let invalid = p.iter().position(|v| !(*v >= 0.0 && *v < f32::INFINITY));
    let zero = p.iter().position(|&v| v == 0.0);
    // The API's error (none from a portable kernel, which checks nothing).
    let err = o.errors.first().map(|e| e.1.clone());
    match zero {
        _ if invalid.is_some() => assert!(
            err.is_none()
                || err
                    == Some(Err(Error::InvalidProbability {
                        index: invalid.unwrap()
                    }))
        ),
        Some(index) => assert!(err.is_none() || err == Some(Err(Error::ZeroProbability { index }))),
        None if !p.is_empty() => {
            assert!(
                err.is_none() || err == Some(Ok(())),
                "{ctx} logits_from_probs"
            );
            let l: Vec<f64> = p.iter().map(|&v| (v as f64).ln()).collect();
            let n = l.len() as f64;
            let c = -l.iter().sum::<f64>() / n;
            let e_c = f
                * (l.iter()
                    .map(|v| 32.0 * U * v.abs() + 2.0 * ulp_f32(*v))
                    .sum::<f64>()
                    / n
                    + ulp_f32(c));
            let logits = o.f32("logits_from_probs ZeroMean");
            for (i, (&li, &v)) in l.iter().zip(logits).enumerate() {
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
        for (i, (&ri, &v)) in r.iter().zip(o.f32("softmax_of_combination")).enumerate() {
            let bound = bud.c + sum_slack(&r) * f + term(i) + spread;
            if v == 0.0 && z[i] - m < EXP_LO {
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
    for sm in backends(test) {
        let mut line = format!("{test}: {}:", sm.backend());
        for r in [
            Rounding::Nearest,
            Rounding::TowardZero,
            Rounding::Up,
            Rounding::Down,
        ] {
            let worst = worst_pair_error(&sm, Env::rounding(r));
            line += &format!(" {r:?}: {worst:.2} ULP");
            let limit = 4.0;
            assert!(worst <= limit, "{line}: above {limit}");
        }
        println!("{line}");
    }
}

/// The worst error of `softmax([0, x])[1]` over x in [−86, 0] under `env`.
fn worst_pair_error(sm: &Softmax, env: Env) -> f64 {
    let (count, step) = if quick() {
        (2_000, 0.043_21)
    } else {
        (20_000, 0.004_321)
    };
    let xs: Vec<f32> = (0..count).map(|i| -(i as f32) * step).collect();
    let mut pairs = vec![[0.0f32; 2]; xs.len()];
    under(env, || {
        for (x, out) in xs.iter().zip(pairs.iter_mut()) {
            sm.softmax(&[0.0, *x], out).unwrap();
        }
    });
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
    for sm in backends("directed_rounding_keeps_spec_accuracy") {
        let r = reference::softmax(&[1.0, 2.0, 3.0]);
        for env in [Rounding::TowardZero, Rounding::Up, Rounding::Down].map(Env::rounding) {
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
            let worst = worst_pair_error(&sm, env);
            assert!(
                worst <= 8.0,
                "{} {env:?}: softmax([0, x]) is {worst:.2} ULP off",
                sm.backend()
            );
        }
        println!("{}: directed rounding within the bound", sm.backend());
    }
}
