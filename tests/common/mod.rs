//! Shared test harness: the engine roster (every backend the tests run),
//! seeded input generators for every input family, the ULP metric and the
//! per-element bounds, and the row checkers that compare an engine's output
//! with the f64 reference in `simd_softmax::reference`.
//!
//! Every integration-test binary does `mod common;`; not every binary uses
//! every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use simd_softmax::{Backend, Error, Softmax};
#[cfg(target_arch = "x86_64")]
use simd_softmax_kernels::portable::{self, DynKernel};
use simd_softmax_kernels::testing::Target;

/// The portable 4- and 8-lane kernels are not built for the tests: each
/// took LLVM minutes per build (see `simd_softmax_kernels::portable`), and
/// the lane logic they emulate runs natively wherever the tests run.
pub const PORTABLE_NOT_BUILT: [(&str, &str); 2] = [
    (
        "portable4 (NEON lane logic)",
        "not built: NEON runs natively on aarch64 (scripts/test-aarch64.sh under qemu)",
    ),
    (
        "portable8 (AVX2 lane logic)",
        "not built: AVX2 runs natively on every x86-64 CPU we test on",
    ),
];
use std::collections::BTreeMap;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------

/// The whole kernel family of one engine, with the checked API's `Result`s
/// unwrapped (the differential tests only pass valid arguments; the error
/// paths are tested in `tests/errors.rs`).
pub trait Ops: Send + Sync {
    fn softmax(&self, x: &[f32], y: &mut [f32]);
    fn softmax_in_place(&self, x: &mut [f32]);
    fn log_softmax(&self, x: &[f32], y: &mut [f32]);
    fn log_softmax_in_place(&self, x: &mut [f32]);
    fn logsumexp(&self, x: &[f32]) -> f32;
    fn softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize);
    fn softmax_rows_in_place(&self, x: &mut [f32], row_len: usize);
    fn log_softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize);
    fn log_softmax_rows_in_place(&self, x: &mut [f32], row_len: usize);
}

/// A dispatched backend, through the public, checked API.
impl Ops for Softmax {
    fn softmax(&self, x: &[f32], y: &mut [f32]) {
        Softmax::softmax(self, x, y).expect("softmax refused valid arguments")
    }
    fn softmax_in_place(&self, x: &mut [f32]) {
        Softmax::softmax_in_place(self, x)
    }
    fn log_softmax(&self, x: &[f32], y: &mut [f32]) {
        Softmax::log_softmax(self, x, y).expect("log_softmax refused valid arguments")
    }
    fn log_softmax_in_place(&self, x: &mut [f32]) {
        Softmax::log_softmax_in_place(self, x)
    }
    fn logsumexp(&self, x: &[f32]) -> f32 {
        Softmax::logsumexp(self, x)
    }
    fn softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize) {
        Softmax::softmax_rows(self, x, y, row_len).expect("softmax_rows refused valid arguments")
    }
    fn softmax_rows_in_place(&self, x: &mut [f32], row_len: usize) {
        Softmax::softmax_rows_in_place(self, x, row_len)
            .expect("softmax_rows_in_place refused valid arguments")
    }
    fn log_softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize) {
        Softmax::log_softmax_rows(self, x, y, row_len)
            .expect("log_softmax_rows refused valid arguments")
    }
    fn log_softmax_rows_in_place(&self, x: &mut [f32], row_len: usize) {
        Softmax::log_softmax_rows_in_place(self, x, row_len)
            .expect("log_softmax_rows_in_place refused valid arguments")
    }
}

/// A kernel instantiation used directly (the portable 16-lane kernel, which
/// runs AVX-512's lane and tail logic on any CPU), behind `DynKernel` so
/// this test binary links the kernels' code instead of instantiating it
/// again.
#[cfg(target_arch = "x86_64")]
impl Ops for &'static dyn DynKernel {
    fn softmax(&self, x: &[f32], y: &mut [f32]) {
        DynKernel::softmax(*self, x, y)
    }
    fn softmax_in_place(&self, x: &mut [f32]) {
        DynKernel::softmax_in_place(*self, x)
    }
    fn log_softmax(&self, x: &[f32], y: &mut [f32]) {
        DynKernel::log_softmax(*self, x, y)
    }
    fn log_softmax_in_place(&self, x: &mut [f32]) {
        DynKernel::log_softmax_in_place(*self, x)
    }
    fn logsumexp(&self, x: &[f32]) -> f32 {
        DynKernel::logsumexp(*self, x)
    }
    fn softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize) {
        DynKernel::softmax_rows(*self, x, y, row_len)
    }
    fn softmax_rows_in_place(&self, x: &mut [f32], row_len: usize) {
        DynKernel::softmax_rows_in_place(*self, x, row_len)
    }
    fn log_softmax_rows(&self, x: &[f32], y: &mut [f32], row_len: usize) {
        DynKernel::log_softmax_rows(*self, x, y, row_len)
    }
    fn log_softmax_rows_in_place(&self, x: &mut [f32], row_len: usize) {
        DynKernel::log_softmax_rows_in_place(*self, x, row_len)
    }
}

/// One engine the differential tests run.
pub struct Engine {
    /// Printed name, e.g. `avx2` or `portable16 (AVX-512 lane logic)`.
    pub name: String,
    /// The dispatched backend, `None` for a directly instantiated kernel.
    pub backend: Option<Backend>,
    /// A portable (emulated-lane) kernel rather than a dispatched backend
    /// (see [`Engine::runs`]).
    pub portable: bool,
    pub ops: Box<dyn Ops>,
}

impl Engine {
    /// Whether this engine runs `family` at length `n`: the dispatched
    /// backends run everything; the portable kernels (emulated lanes, a few
    /// times slower, re-testing lane logic the shorter rows already cover)
    /// run every family up to 128256 and three representative ones (uniform,
    /// all equal, partial mask) at 2^20, to keep `cargo test` short.
    ///
    /// In [`quick`] mode every engine follows the portable rule, at every
    /// length above 300.
    pub fn runs(&self, family: Family, n: usize) -> bool {
        let limit = if quick() { 300 } else { (1 << 20) - 1 };
        (!self.portable && !quick())
            || n <= limit
            || matches!(
                family,
                Family::Uniform | Family::AllEqual | Family::PartialMask
            )
    }
}

/// Environment variable that selects the quick mode of the differential
/// tests, for slow runs such as the aarch64 suite under qemu user-mode
/// emulation (tens of times slower than native).
pub const QUICK_ENV: &str = "SIMD_SOFTMAX_TEST_QUICK";

/// Quick mode (`SIMD_SOFTMAX_TEST_QUICK` set, and not `0`): the portable
/// kernels are skipped (they are the same code on every target, and the
/// native suite runs them), and rows longer than 300 use three families.
/// Every length, every backend the CPU runs, and every special-value case still
/// run; the roster printout says that quick mode is on.
pub fn quick() -> bool {
    std::env::var_os(QUICK_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The engines that ran and the ones skipped (with why).
pub struct Roster {
    pub ran: Vec<Engine>,
    pub skipped: Vec<(String, String)>,
}

impl Roster {
    /// Every engine of the differential tests. **Adding a backend is one
    /// line**: a new `Backend` variant is picked up from `Backend::ALL`
    /// automatically; a new kernel instantiation is one `kernel(...)` line.
    pub fn all() -> Roster {
        let mut r = Roster {
            ran: Vec::new(),
            skipped: Vec::new(),
        };
        for &b in Backend::ALL {
            r.backend(b);
        }
        r.portable_engines();
        r
    }

    /// Only the dispatched backends (the checked public API).
    pub fn dispatched() -> Roster {
        let mut r = Roster::all();
        r.ran.retain(|e| e.backend.is_some());
        r
    }

    fn backend(&mut self, b: Backend) {
        match Softmax::with_backend(b) {
            Ok(sm) => {
                assert_eq!(sm.backend(), b, "with_backend({b}) built another backend");
                self.ran.push(Engine {
                    name: b.name().to_string(),
                    backend: Some(b),
                    portable: false,
                    ops: Box::new(sm),
                });
            }
            Err(Error::UnsupportedBackend { backend, reason }) => {
                assert_eq!(backend, b);
                assert_eq!(
                    Some(reason),
                    b.unavailable_reason(),
                    "with_backend({b}) and unavailable_reason disagree"
                );
                self.skipped
                    .push((b.name().to_string(), reason.to_string()));
            }
            Err(e) => panic!("with_backend({b}): unexpected error {e:?}"),
        }
    }

    /// Portable kernels not in the roster, with why.
    fn portable_engines(&mut self) {
        for (name, why) in PORTABLE_NOT_BUILT {
            self.skipped.push((name.to_string(), why.to_string()));
        }
        #[cfg(target_arch = "x86_64")]
        self.kernel("portable16 (AVX-512 lane logic)", portable::lanes16_dyn());
        #[cfg(not(target_arch = "x86_64"))]
        self.skipped.push((
            "portable16 (AVX-512 lane logic)".to_string(),
            "built on x86-64 only (AVX-512 lane logic for x86 CPUs without it)".to_string(),
        ));
    }

    #[cfg(target_arch = "x86_64")]
    fn kernel(&mut self, name: &str, k: &'static dyn DynKernel) {
        if quick() {
            let why = format!("{QUICK_ENV} is set (quick mode; the full suite runs it)");
            self.skipped.push((name.to_string(), why));
            return;
        }
        self.ran.push(Engine {
            name: name.to_string(),
            backend: None,
            portable: true,
            ops: Box::new(k),
        });
    }

    /// The engine of `Backend::detect()` (always present: detection only
    /// returns an available backend).
    pub fn fastest(&self) -> &Engine {
        let best = Backend::detect();
        self.ran
            .iter()
            .find(|e| e.backend == Some(best))
            .unwrap_or_else(|| panic!("detected backend {best} did not run"))
    }

    pub fn names(&self) -> Vec<&str> {
        self.ran.iter().map(|e| e.name.as_str()).collect()
    }

    /// `ran: ...; skipped: avx512 (CPU lacks avx512f), ...`
    pub fn describe(&self) -> String {
        let mut s = format!("ran: {}", self.names().join(", "));
        for (name, why) in &self.skipped {
            let _ = write!(s, "\n  {name}: skipped, {why}");
        }
        if self.skipped.is_empty() {
            s.push_str("\n  skipped: none");
        }
        if quick() {
            let _ = write!(s, "\n  QUICK MODE ({QUICK_ENV}): rows > 300 use 3 families");
        }
        s
    }

    /// Prints the roster for test `test` (visible with `--nocapture`, and
    /// in the output of a failing test) and asserts something ran.
    pub fn announce(&self, test: &str) {
        eprintln!("[{test}] {}", self.describe());
        assert!(!self.ran.is_empty(), "[{test}] no engine ran");
    }
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// The input families of the tests (plus finite extremes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Uniform in [−10, 10].
    Uniform,
    /// Normal, σ = 0.1.
    NormalS0_1,
    /// Normal, σ = 1.
    NormalS1,
    /// Normal, σ = 10.
    NormalS10,
    /// Normal, σ = 100.
    NormalS100,
    /// Uniform in [−1e30, 1e30] (huge range: one entry takes nearly all).
    Huge,
    /// Mixed finite extremes: ±3.4e38, ±1e30, small values.
    Extremes,
    /// Every entry equal (one random value).
    AllEqual,
    /// Uniform in [−1, 1] plus one entry +30 (one dominant entry).
    Dominant,
    /// Uniform with about a third of the entries −∞ (never all).
    PartialMask,
    /// Every entry −∞.
    FullMask,
    /// Uniform with 1..=3 entries +∞ (and a few −∞).
    PosInf,
    /// Uniform with one NaN (sometimes beside a +∞).
    Nan,
    /// Subnormal values of both signs and zeros.
    Subnormal,
}

impl Family {
    pub const ALL: [Family; 14] = [
        Family::Uniform,
        Family::NormalS0_1,
        Family::NormalS1,
        Family::NormalS10,
        Family::NormalS100,
        Family::Huge,
        Family::Extremes,
        Family::AllEqual,
        Family::Dominant,
        Family::PartialMask,
        Family::FullMask,
        Family::PosInf,
        Family::Nan,
        Family::Subnormal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Uniform => "uniform[-10,10]",
            Family::NormalS0_1 => "normal(σ=0.1)",
            Family::NormalS1 => "normal(σ=1)",
            Family::NormalS10 => "normal(σ=10)",
            Family::NormalS100 => "normal(σ=100)",
            Family::Huge => "huge(±1e30)",
            Family::Extremes => "extremes(±3.4e38)",
            Family::AllEqual => "all-equal",
            Family::Dominant => "dominant",
            Family::PartialMask => "partial -inf mask",
            Family::FullMask => "full -inf mask",
            Family::PosInf => "+inf",
            Family::Nan => "NaN",
            Family::Subnormal => "subnormal",
        }
    }
}

/// Seeded generator (xoshiro256++: fast, and stable across platforms).
pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A standard normal sample (Box–Muller).
pub fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A row of `n` values of `family`, deterministic in (`family`, `n`, `salt`).
pub fn gen_row(family: Family, n: usize, salt: u64) -> Vec<f32> {
    let seed = (family as u64) << 48 ^ (n as u64) << 8 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut g = rng(seed);
    let uniform = |g: &mut Xoshiro256PlusPlus, n: usize, a: f32| -> Vec<f32> {
        (0..n).map(|_| g.random_range(-a..=a)).collect()
    };
    let mut x = match family {
        Family::Uniform | Family::PartialMask | Family::PosInf | Family::Nan => {
            uniform(&mut g, n, 10.0)
        }
        Family::NormalS0_1 => (0..n).map(|_| (0.1 * normal(&mut g)) as f32).collect(),
        Family::NormalS1 => (0..n).map(|_| normal(&mut g) as f32).collect(),
        Family::NormalS10 => (0..n).map(|_| (10.0 * normal(&mut g)) as f32).collect(),
        Family::NormalS100 => (0..n).map(|_| (100.0 * normal(&mut g)) as f32).collect(),
        Family::Huge => uniform(&mut g, n, 1e30),
        Family::Extremes => {
            const POOL: [f32; 10] = [
                3.4e38,
                -3.4e38,
                f32::MAX,
                f32::MIN,
                1e30,
                -1e30,
                0.0,
                1.0,
                -1.0,
                3.0e38,
            ];
            (0..n)
                .map(|_| POOL[g.random_range(0..POOL.len())])
                .collect()
        }
        Family::AllEqual => vec![g.random_range(-50.0f32..=50.0); n],
        Family::Dominant => {
            let mut x = uniform(&mut g, n, 1.0);
            x[g.random_range(0..n)] = 30.0;
            x
        }
        Family::FullMask => vec![f32::NEG_INFINITY; n],
        Family::Subnormal => (0..n)
            .map(|_| match g.random_range(0..8u32) {
                0 => 0.0,
                1 => -0.0,
                _ => {
                    let v = f32::from_bits(g.random_range(1..0x0080_0000u32));
                    if g.random::<bool>() { -v } else { v }
                }
            })
            .collect(),
    };
    match family {
        Family::PartialMask => {
            let keep = g.random_range(0..n);
            for (i, v) in x.iter_mut().enumerate() {
                if i != keep && g.random_range(0..3u32) == 0 {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
        Family::PosInf => {
            for _ in 0..g.random_range(1..=3usize) {
                let i = g.random_range(0..n);
                x[i] = f32::INFINITY;
            }
            for _ in 0..n / 8 {
                let i = g.random_range(0..n);
                if x[i] != f32::INFINITY {
                    x[i] = f32::NEG_INFINITY;
                }
            }
        }
        Family::Nan => {
            x[g.random_range(0..n)] = f32::NAN;
            if n > 1 && g.random::<bool>() {
                let i = g.random_range(0..n);
                if !x[i].is_nan() {
                    x[i] = f32::INFINITY;
                }
            }
        }
        _ => {}
    }
    x
}

/// The tested lengths: every length 1..=300 (every tail of every lane
/// count) and the long rows.
pub const LONG_LENGTHS: [usize; 4] = [4096, 32_000, 128_256, 1 << 20];

pub fn all_lengths() -> impl Iterator<Item = usize> {
    (1..=300).chain(LONG_LENGTHS)
}

/// The row of the accuracy table a length belongs to.
pub fn length_class(n: usize) -> &'static str {
    match n {
        0..=300 => "1..=300",
        4096 => "4096",
        32_000 => "32000",
        128_256 => "128256",
        1_048_576 => "2^20",
        16_777_216 => "2^24",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------
// The metric and the bounds
// ---------------------------------------------------------------------------

/// Smallest positive subnormal f32, 2^-149: the ULP of every f32 below 2^-125.
pub const TINY_ULP: f64 = 1.401_298_464_324_817e-45;
/// Smallest positive normal f32, 2^-126: the flush rule lets exact results below it flush to 0.
pub const MIN_NORMAL: f64 = 1.175_494_350_822_287_5e-38;
/// 2^-23: ULP of 1.0f32.
pub const EPS: f64 = f32::EPSILON as f64;

/// `ulp_f32(r)`: the ULP of the f32 nearest `r` (docs/ACCURACY.md). 2^-149 for zero
/// and subnormals; the ULP of `f32::MAX` for values that round to ±∞; NaN
/// for NaN.
pub fn ulp_f32(r: f64) -> f64 {
    let a = (r as f32).abs();
    if a.is_nan() {
        f64::NAN
    } else if a.is_infinite() {
        2f64.powi(104)
    } else if a < f32::MIN_POSITIVE {
        TINY_ULP
    } else {
        let e = (a.to_bits() >> 23) as i32 - 127;
        2f64.powi(e - 23)
    }
}

/// `|y − r|` in ULPs of `r` (docs/ACCURACY.md).
pub fn ulp_err(y: f32, r: f64) -> f64 {
    (y as f64 - r).abs() / ulp_f32(r)
}

/// Bits of a slice, for comparisons that treat NaN payloads and signed
/// zeros exactly.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The f32 max of a row as the kernels see it (NaN-free rows).
pub fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// The row class (ordinary, NaN, +∞, fully masked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowClass {
    /// Finite max, no NaN (partial −∞ masks included).
    Ordinary,
    Nan,
    /// `k` entries are +∞ (no NaN).
    PosInf(usize),
    /// Every entry −∞ (also the empty row).
    AllNegInf,
}

pub fn row_class(x: &[f32]) -> RowClass {
    if x.iter().any(|v| v.is_nan()) {
        RowClass::Nan
    } else if x.contains(&f32::INFINITY) {
        RowClass::PosInf(x.iter().filter(|&&v| v == f32::INFINITY).count())
    } else if x.iter().all(|&v| v == f32::NEG_INFINITY) {
        RowClass::AllNegInf
    } else {
        RowClass::Ordinary
    }
}

/// C of docs/ACCURACY.md: the budget, in ULPs, for everything but the rounding of
/// `x − m`. Softmax `y_i = fl(fl(e^{fl(x_i − m)}) · fl(1/Σ))`: ~1 ULP for the
/// vector exp (0.05 ULP of polynomial error plus the FMA chain), the relative
/// error of the blocked sum (≤ 16 f32 additions per lane plus the horizontal
/// reduction, then an f64 total), ½ ULP for the rounded reciprocal and ½ ULP
/// for the final multiply. 4 covers those with margin and is what docs/ACCURACY.md
/// mandates for every length up to 2^24.
pub const C_ULPS: f64 = 4.0;

/// The softmax bound of docs/ACCURACY.md for one element, in ULPs of `r_i`:
/// `C + |x_i − m|`. Why `|x_i − m|`: the kernel computes `d = fl(x_i − m)`
/// in f32, so `d` carries an absolute error up to `½ ulp(d) ≤ |d|·2^-24`,
/// which `exp` turns into a relative error of `|d|·2^-24`; relative to the
/// result that is at most `|d|·2^-24 · r/ulp(r) ≤ |d|` ULP (`r/ulp(r) < 2^24`).
pub fn softmax_bound_ulps(x_i: f32, m: f32) -> f64 {
    C_ULPS + (x_i as f64 - m as f64).abs()
}

/// The log-softmax bound of docs/ACCURACY.md (absolute): `4·ulp(r_i) + ulp(x_i − m)`.
/// `ulp(x_i − m)` is the rounding of the element's own f32 subtraction (it
/// can be most of the result when the rest is small); `4·ulp(r_i)` mirrors
/// C. The checkers add [`inherited_subtraction_error`] to it.
pub fn log_softmax_bound(r_i: f64, x_i: f32, m: f32) -> f64 {
    4.0 * ulp_f32(r_i) + ulp_f32(x_i as f64 - m as f64)
}

/// The error `ln Σ` inherits from the rounded subtractions of the *other*
/// elements: `Σ_j p_j·ulp(x_j − m)` (`p` the softmax; `ulp(x_j − m)` is
/// twice the worst rounding of `fl(x_j − m)`, which moves `e^{x_j − m}` by
/// that relative amount, so `ln Σ` by `p_j` times it). The documented log-softmax
/// formula `4·ulp(r_i) + ulp(x_i − m)` omits it, and without it the bound
/// cannot be met at a max entry whose `r_i = −ln Σ` is small by any kernel
/// that rounds `x − m` to f32 (which docs/ACCURACY.md assumes): e.g. `[−5.925, 9.802]`
/// has `r_1 ≈ −1.478e-7 ≈ −e^{x_0 − m}`, and the ½-ULP rounding of
/// `x_0 − m ≈ −15.73` alone moves it by up to 8 ULPs of `r_1`. Elsewhere
/// the term is at most a few ULPs of `r_i`.
pub fn inherited_subtraction_error(x: &[f32], softmax: impl Iterator<Item = f64>) -> f64 {
    let m = row_max(x) as f64;
    x.iter()
        .zip(softmax)
        .filter(|(_, p)| *p > 0.0)
        .map(|(&v, p)| p * ulp_f32(v as f64 - m))
        .sum()
}

/// Our logsumexp bound (absolute), derived from the same budget as C:
/// `lse = m + ln S`, computed as `fl32(m + ln T)` with `T` the kernel's sum.
/// * `T = S(1 + ε)` gives `ln T = ln S + ε` (to first order): an *absolute*
///   error equal to the sum's relative error. Its exp and summation part is
///   within the C budget, `C·2^-23` (if it were larger the softmax bound,
///   which contains the same relative error of `S`, would fail too).
/// * The rounding of each `d_j = fl(x_j − m)` moves `e^{d_j}` by a relative
///   `≤ ulp(d_j)`, so `S` by `Σ_j e^{d_j} ulp(d_j)`, i.e. `ln S` by
///   `Σ_j r_j·ulp(d_j)` with `r_j` the reference softmax (the weights).
/// * The final rounding to f32 costs `½ ulp(r)`; we allow `1 ulp(r)`
///   (double rounding f64 → f32 and the f64 `ln` itself are far below that).
///
/// So `|y − r| ≤ ulp(r) + C·2^-23 + Σ_j r_j·ulp(d_j)`.
pub fn logsumexp_bound(r: f64, x: &[f32], softmax_ref: &[f64]) -> f64 {
    let m = row_max(x);
    let sub: f64 = x
        .iter()
        .zip(softmax_ref)
        .filter(|(_, w)| **w > 0.0)
        .map(|(&v, w)| w * ulp_f32(v as f64 - m as f64))
        .sum();
    ulp_f32(r) + C_ULPS * EPS + sub
}

/// The log-softmax reference the checkers use: `simd_softmax::reference::
/// log_softmax`, with `ln Σ` of ordinary rows recomputed as
/// `ln k + log1p(ε/k)` (`k` the number of maxima, `ε` the sum of the other
/// terms). The library's reference takes `ln` of the f64 sum `k + ε`, whose
/// rounding leaves ≥ 2^-53 absolute error: thousands of f32 ULPs of the
/// results near 0 (the max entries when `ε` is tiny); see
/// `tests/reference.rs::log_softmax_is_accurate_to_f32_ulps`. Both must
/// agree to within the f64 rounding of that sum (asserted), so a wrong
/// library reference still shows.
pub fn log_softmax_ref(x: &[f32]) -> Vec<f64> {
    let lib = simd_softmax::reference::log_softmax(x);
    if row_class(x) != RowClass::Ordinary {
        return lib;
    }
    let m = row_max(x) as f64;
    let k = x.iter().filter(|&&v| v as f64 == m).count() as f64;
    let eps: f64 = x
        .iter()
        .map(|&v| v as f64 - m)
        .filter(|&d| d < 0.0)
        .map(f64::exp)
        .sum();
    let ln_sum = k.ln() + (eps / k).ln_1p();
    x.iter()
        .zip(lib)
        .map(|(&v, l)| {
            let r = (v as f64 - m) - ln_sum;
            assert!(
                // the library's naive f64 sum of n terms: up to ~n·2^-53 absolute
                r == l || (r - l).abs() <= 1e-14 * r.abs() + (x.len() + 4) as f64 * f64::EPSILON,
                "library reference log_softmax {l:e} vs {r:e} (x = {v:e})"
            );
            r
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Row checkers
// ---------------------------------------------------------------------------

/// What checking one row found.
#[derive(Default, Clone, Debug)]
pub struct RowReport {
    /// Max `|y − r| / ulp(r)` over the ordinary elements.
    pub max_ulp: f64,
    /// A second error measure, per checker: softmax, the max of
    /// `err_i − |x_i − m|` (the part C must cover); log-softmax, the max ULP
    /// error over the elements with `|r_i| ≥ 1` (away from the cancellation
    /// near 0, where ULPs of `r` get tiny).
    pub max_aux: f64,
    /// Max `|y − r| / bound` (≤ 1 passes).
    pub max_ratio: f64,
    pub violations: usize,
    /// The first few violations, human-readable.
    pub first: Vec<String>,
}

impl RowReport {
    fn fail(&mut self, msg: String) {
        self.violations += 1;
        if self.first.len() < 4 {
            self.first.push(msg);
        }
    }

    pub fn ok(&self) -> bool {
        self.violations == 0
    }

    pub fn merge(&mut self, o: &RowReport) {
        self.max_ulp = self.max_ulp.max(o.max_ulp);
        self.max_aux = self.max_aux.max(o.max_aux);
        self.max_ratio = self.max_ratio.max(o.max_ratio);
        self.violations += o.violations;
        for m in &o.first {
            if self.first.len() < 6 {
                self.first.push(m.clone());
            }
        }
    }
}

/// Checks `y = softmax(x)` against the reference `r` (the special-value rules and the accuracy bounds).
///
/// * NaN row: every `y_i` NaN. Fully masked row: every `y_i == 0`.
/// * `+∞` row: `1/k` (within C ULPs) at the +∞ entries, exactly 0 elsewhere.
/// * Ordinary row: `x_i = −∞` gives exactly 0; else `err_i ≤ C + |x_i − m|`,
///   or `y_i == 0` where the bound reaches below 2^-126 (the flush rule), and
///   `|Σ y − 1| ≤ Σ_i bound_i·ulp(r_i)` (the "sums to 1 within the bound"
///   of the special-value rules, summed in f64 so the check itself adds no error).
pub fn check_softmax_row(x: &[f32], r: &[f64], y: &[f32]) -> RowReport {
    assert_eq!(x.len(), y.len());
    let mut rep = RowReport::default();
    let class = row_class(x);
    match class {
        RowClass::Nan => {
            for (i, &v) in y.iter().enumerate() {
                if !v.is_nan() {
                    rep.fail(format!("NaN row: y[{i}] = {v:e}, want NaN"));
                }
            }
        }
        RowClass::AllNegInf => {
            for (i, &v) in y.iter().enumerate() {
                if v != 0.0 {
                    rep.fail(format!("fully masked row: y[{i}] = {v:e}, want 0"));
                }
            }
        }
        RowClass::PosInf(k) => {
            let share = 1.0 / k as f64;
            for (i, (&xi, &v)) in x.iter().zip(y).enumerate() {
                if xi == f32::INFINITY {
                    let e = ulp_err(v, share);
                    if e.is_nan() || e > C_ULPS {
                        rep.fail(format!(
                            "+inf row (k={k}): y[{i}] = {v:e}, want 1/k = {share:e}"
                        ));
                    }
                } else if v != 0.0 {
                    rep.fail(format!(
                        "+inf row (k={k}): y[{i}] = {v:e} (x = {xi:e}), want 0"
                    ));
                }
            }
        }
        RowClass::Ordinary => {
            let m = row_max(x);
            let mut sum = 0.0f64;
            let mut sum_bound = 0.0f64;
            for (i, ((&xi, &ri), &yi)) in x.iter().zip(r).zip(y).enumerate() {
                sum += yi as f64;
                if xi == f32::NEG_INFINITY {
                    if yi != 0.0 {
                        rep.fail(format!("masked x[{i}] = -inf: y = {yi:e}, want exactly 0"));
                    }
                    continue;
                }
                let bound = softmax_bound_ulps(xi, m);
                let u = ulp_f32(ri);
                sum_bound += bound * u;
                let err = (yi as f64 - ri).abs() / u;
                let flushed = yi == 0.0 && ri - bound * u < MIN_NORMAL;
                if err.is_nan() || (err > bound && !flushed) {
                    rep.fail(format!(
                        "y[{i}] = {yi:e} (bits {:#010x}), ref {ri:e}: {err:.2} ULP > bound {bound:.2} (x = {xi:e}, max = {m:e})",
                        yi.to_bits()
                    ));
                }
                if !flushed && err.is_finite() {
                    rep.max_ulp = rep.max_ulp.max(err);
                    rep.max_aux = rep.max_aux.max(err - (bound - C_ULPS));
                    rep.max_ratio = rep.max_ratio.max(err / bound);
                }
            }
            if (sum - 1.0).abs() > sum_bound || sum.is_nan() {
                rep.fail(format!(
                    "Σy = {sum:.12} differs from 1 by more than the summed bound {sum_bound:e}"
                ));
            }
        }
    }
    rep
}

/// Checks `y = log_softmax(x)` against the reference `r`:
/// NaN → NaN; reference −∞ → exactly −∞; `+∞` rows: `−ln k` within
/// `4·ulp` at the +∞ entries; a reference that overflows f32 (e.g.
/// `−3.4e38 − 3.4e38`) → that infinity exactly; otherwise the documented bound
/// plus the error inherited through `ln Σ`:
/// `|y_i − r_i| ≤ 4·ulp(r_i) + ulp(x_i − m) + Σ_j p_j·ulp(x_j − m)`.
pub fn check_log_softmax_row(x: &[f32], r: &[f64], y: &[f32]) -> RowReport {
    check_log_softmax_row_with(x, r, y, 0.0)
}

/// An absolute slack for the log-softmax checks of the tests whose job is
/// the plumbing (offsets, aliasing, row boundaries, special values): the
/// error `ln Σ` would have if the sum's relative error (within the C budget,
/// `C·2^-23`) became absolute, as it does when `ln` is taken of a rounded
/// `1 + δ`. The documented bound has no such term: where `|r_i|` is small (the max
/// entries when `Σ e^{x−m}` is close to 1) it asks for `ln Σ` with relative
/// accuracy (`log1p` of the non-max terms). `log_softmax_matches_reference`
/// and `log_softmax_of_the_max_when_the_sum_is_close_to_one` hold every
/// engine to that; the plumbing tests keep testing the plumbing meanwhile.
pub const LN_SUM_SLACK: f64 = C_ULPS * EPS;

/// [`check_log_softmax_row`] with `extra` added to the bound of the
/// ordinary elements.
pub fn check_log_softmax_row_with(x: &[f32], r: &[f64], y: &[f32], extra: f64) -> RowReport {
    assert_eq!(x.len(), y.len());
    let mut rep = RowReport::default();
    let class = row_class(x);
    let m = row_max(x);
    let inherited = match class {
        RowClass::Ordinary => inherited_subtraction_error(x, r.iter().map(|l| l.exp())),
        _ => 0.0,
    };
    for (i, ((&xi, &ri), &yi)) in x.iter().zip(r).zip(y).enumerate() {
        if ri.is_nan() {
            if !yi.is_nan() {
                rep.fail(format!("NaN row: y[{i}] = {yi:e}, want NaN"));
            }
            continue;
        }
        let rf = ri as f32;
        if rf.is_infinite() {
            if yi != rf {
                rep.fail(format!(
                    "y[{i}] = {yi:e}, want {rf} (x = {xi:e}, ref {ri:e})"
                ));
            }
            continue;
        }
        let bound = match class {
            RowClass::Ordinary => log_softmax_bound(ri, xi, m) + inherited + extra,
            _ => C_ULPS * ulp_f32(ri),
        };
        let d = (yi as f64 - ri).abs();
        if d.is_nan() || d > bound {
            rep.fail(format!(
                "y[{i}] = {yi:e}, ref {ri:e}: |y-r| = {d:e} > bound {bound:e} ({:.1} ULP of r; x = {xi:e}, max = {m:e})",
                d / ulp_f32(ri)
            ));
        }
        if d.is_finite() {
            rep.max_ulp = rep.max_ulp.max(d / ulp_f32(ri));
            rep.max_ratio = rep.max_ratio.max(d / bound);
            if ri.abs() >= 1.0 {
                rep.max_aux = rep.max_aux.max(d / ulp_f32(ri));
            }
        }
    }
    rep
}

/// Checks `y = logsumexp(x)` against the reference `r` with
/// [`logsumexp_bound`]; NaN → NaN, infinities (and f32 overflow) exact.
pub fn check_logsumexp(x: &[f32], r: f64, softmax_ref: &[f64], y: f32) -> RowReport {
    let mut rep = RowReport::default();
    if r.is_nan() {
        if !y.is_nan() {
            rep.fail(format!("NaN row: logsumexp = {y:e}, want NaN"));
        }
        return rep;
    }
    let rf = r as f32;
    if rf.is_infinite() {
        if y != rf {
            rep.fail(format!("logsumexp = {y:e}, want {rf}"));
        }
        return rep;
    }
    let bound = logsumexp_bound(r, x, softmax_ref);
    let d = (y as f64 - r).abs();
    if d.is_nan() || d > bound {
        rep.fail(format!(
            "logsumexp = {y:e}, ref {r:e}: |y-r| = {d:e} > bound {bound:e}"
        ));
    }
    if d.is_finite() {
        rep.max_ulp = d / ulp_f32(r);
        rep.max_ratio = d / bound;
    }
    rep
}

// ---------------------------------------------------------------------------
// Accuracy table
// ---------------------------------------------------------------------------

/// Max errors per (engine, length class), and every violation.
#[derive(Default)]
pub struct Stats {
    cells: BTreeMap<(String, usize, &'static str), RowReport>,
    engines: Vec<String>,
    pub checked_rows: usize,
}

fn class_order(c: &str) -> usize {
    [
        "1..=300", "4096", "32000", "128256", "2^20", "2^24", "other",
    ]
    .iter()
    .position(|&s| s == c)
    .unwrap_or(9)
}

impl Stats {
    pub fn add(&mut self, engine: &str, n: usize, what: &str, rep: &RowReport) {
        if !self.engines.iter().any(|e| e == engine) {
            self.engines.push(engine.to_string());
        }
        let class = length_class(n);
        let idx = self.engines.iter().position(|e| e == engine).unwrap();
        let cell = self
            .cells
            .entry((engine.to_string(), idx * 16 + class_order(class), class))
            .or_default();
        let mut r = rep.clone();
        r.first = r
            .first
            .iter()
            .map(|m| format!("{engine}, n={n}, {what}: {m}"))
            .collect();
        cell.merge(&r);
        self.checked_rows += 1;
    }

    /// The engines that were checked at least once.
    pub fn engines(&self) -> Vec<&str> {
        self.engines.iter().map(String::as_str).collect()
    }

    pub fn violations(&self) -> usize {
        self.cells.values().map(|c| c.violations).sum()
    }

    /// A compact table: one line per (engine, length class).
    /// `aux`: the header of the [`RowReport::max_aux`] column, if shown.
    pub fn table(&self, title: &str, aux: Option<&str>) -> String {
        let mut s = format!(
            "\n== {title}: max error per engine and length class ({} rows checked) ==\n",
            self.checked_rows
        );
        let _ = writeln!(
            s,
            "{:<34} {:>8} {:>12} {}{:>11} {:>6}",
            "engine",
            "lengths",
            "max ULP",
            aux.map_or(String::new(), |h| format!("{h:>14} ")),
            "max/bound",
            "fails"
        );
        let mut cells: Vec<_> = self.cells.iter().collect();
        cells.sort_by_key(|((_, k, _), _)| *k);
        for ((engine, _, class), c) in cells {
            let _ = writeln!(
                s,
                "{:<34} {:>8} {:>12.3} {}{:>11.3} {:>6}",
                engine,
                class,
                c.max_ulp,
                if aux.is_some() {
                    format!("{:>14.3} ", c.max_aux)
                } else {
                    String::new()
                },
                c.max_ratio,
                c.violations
            );
        }
        s
    }

    /// Panics listing the first violations, if any.
    pub fn assert_clean(&self, title: &str) {
        let n = self.violations();
        if n > 0 {
            let mut msg = format!("{title}: {n} elements/rows out of bound; first ones:\n");
            for c in self.cells.values() {
                for m in &c.first {
                    let _ = writeln!(msg, "  {m}");
                }
            }
            panic!("{msg}");
        }
        assert!(self.checked_rows > 0, "{title}: nothing was checked");
    }
}

// ---------------------------------------------------------------------------
// Buffers
// ---------------------------------------------------------------------------

/// Written into outputs before a call: a NaN with a payload no kernel
/// produces, so a leftover is recognizable bit-for-bit.
pub const POISON_BITS: u32 = 0x7FC0_1234;
/// Guard values around sub-slices (canaries); never a valid output.
pub const CANARY: f32 = 7.25;
/// Elements of canary after each sub-slice.
pub const GUARD: usize = 5;

/// A buffer `[canary × off][x][canary × GUARD]`.
pub fn guarded(x: &[f32], off: usize) -> Vec<f32> {
    let mut b = vec![CANARY; off + x.len() + GUARD];
    b[off..off + x.len()].copy_from_slice(x);
    b
}

/// Panics unless the canaries around `[off, off+n)` are intact (bitwise).
pub fn assert_canaries(buf: &[f32], off: usize, n: usize, what: &str) {
    for (i, v) in buf.iter().enumerate() {
        if (i < off || i >= off + n) && v.to_bits() != CANARY.to_bits() {
            panic!(
                "{what}: wrote outside its slice: buf[{i}] = {v:e} (slice is [{off}, {}))",
                off + n
            );
        }
    }
}

/// The kernel targets this build and CPU run (not the portable 16-lane one
/// in quick mode), printing the others as skipped, with why.
pub fn targets(test: &str) -> Vec<Target> {
    let mut ran = vec![];
    for t in Target::ALL {
        if t == Target::Portable16 && quick() {
            eprintln!(
                "[{test}] {}: skipped, {QUICK_ENV} is set (quick mode)",
                t.name()
            );
        } else if t.available() {
            ran.push(t);
        } else {
            eprintln!(
                "[{test}] {}: skipped, not in this build or on this CPU",
                t.name()
            );
        }
    }
    let names: Vec<_> = ran.iter().map(|t| t.name()).collect();
    eprintln!("[{test}] targets: {names:?}");
    ran
}

/// The dispatched backends this CPU runs, through the public API (a
/// `Softmax` per backend), announced with the engines that are skipped
/// and why (the portable kernels are not reachable through it).
pub fn dispatched(test: &str) -> Vec<Softmax> {
    let mut roster = Roster::all();
    for e in roster.ran.iter().filter(|e| e.backend.is_none()) {
        roster.skipped.push((
            e.name.clone(),
            "not reachable through the public API (bound to a Backend)".to_string(),
        ));
    }
    roster.ran.retain(|e| e.backend.is_some());
    roster.announce(test);
    roster
        .ran
        .iter()
        .map(|e| Softmax::with_backend(e.backend.unwrap()).unwrap())
        .collect()
}
