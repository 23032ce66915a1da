//! The checks behind the `forward`, `family` and `state` fuzz targets.
//!
//! An input is arbitrary bytes. A few header bytes pick the row length
//! (0..=4096, now and then up to ~135 000), the slice offsets (0..=3
//! elements), the row length of the `*_rows` functions, `alpha`, the anchor,
//! the combination weights and how the values are made from the remaining
//! bytes: raw f32 bit patterns (NaN payloads, ±∞, subnormals, ±f32::MAX),
//! a palette of ordinary values and special values, or scaled uniform
//! values. Every public function then runs on every backend the CPU runs
//! (and once through the free functions), and each result is checked
//!
//! * against the f64 reference with the docs/ACCURACY.md bound (or, for the functions
//!   no bound is documented, a bound derived below next to each check),
//! * against the special-value rules (NaN rows, `+∞` sharing, masks,
//!   flushing below 2^-126),
//! * for agreement in result class (NaN / +∞ / −∞ / 0 / finite) between the
//!   backends,
//! * for the errors: a refused call returns the right error and
//!   leaves its output untouched,
//! * for writes outside the output slice (guard elements around it).
//!
//! Any violation panics, which libFuzzer reports as a crash.
//!
//! The bounds are ACCURACY.md's, with nothing widened: log-softmax and
//! logsumexp to `4·ulp(r) (+ ulp(x_i − m)) + Σ_j p_j·ulp(x_j − m)`,
//! `softmax_scaled` and `softmax_of_combination` to the exact functions
//! `S(αx)` and `S(Σ α_k x_k)` even where an f32 intermediate would
//! overflow. (The tolerances of the earlier known findings are gone with
//! the findings: see `fuzz/README.md`.)

use simd_softmax::{Anchor, Backend, Error, Softmax, reference};
use std::sync::OnceLock;

/// The docs/ACCURACY.md constant `C` (ULPs).
pub const C_ULPS: f64 = 4.0;
/// `2^-24`, the unit roundoff of f32.
const U: f64 = 1.0 / 16_777_216.0;
/// `2^-23`, one ULP of 1.0.
const EPS: f64 = 2.0 * U;
const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;
const TINY: f64 = 1.401_298_464_324_817e-45 * 2.0; // 2 · 2^-149
/// Guard elements on each side of every output slice.
const GUARD: usize = 4;
/// The bit pattern the guard elements hold (a NaN no kernel produces).
const SENTINEL: u32 = 0x7fa5_a5a5;

/// One engine per backend this CPU runs. AVX-512 is left out when
/// `SIMD_SOFTMAX_UNDER_VALGRIND` is set (valgrind cannot execute it).
pub fn engines() -> &'static [Softmax] {
    static ENGINES: OnceLock<Vec<Softmax>> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let valgrind = std::env::var_os("SIMD_SOFTMAX_UNDER_VALGRIND").is_some();
        Backend::ALL
            .iter()
            .copied()
            .filter(|&b| !(valgrind && b == Backend::Avx512))
            .filter_map(|b| Softmax::with_backend(b).ok())
            .collect()
    })
}

// ---------------------------------------------------------------------------
// Decoding the input
// ---------------------------------------------------------------------------

/// A byte reader that yields zeros once the input is exhausted.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// The unread bytes: the pool the values are made from.
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

/// Special values the palette mode draws from (indices 192..=255 of a byte).
const SPECIALS: [u32; 64] = [
    0x7fc0_0000, // quiet NaN
    0xffc0_0000, // negative quiet NaN
    0x7f80_0001, // signalling NaN, payload 1
    0x7fbf_ffff, // signalling NaN, full payload
    0xffff_ffff, // negative NaN, full payload
    0x7fc0_1234, // quiet NaN with payload
    0x7f80_0000, // +inf
    0xff80_0000, // -inf
    0xff80_0000, // -inf (masks are common)
    0xff80_0000, // -inf
    0x7f7f_ffff, // f32::MAX
    0xff7f_ffff, // -f32::MAX
    0x7f7f_fffe, // just below MAX
    0xff7f_fffe,
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x007f_ffff, // largest subnormal
    0x807f_ffff,
    0x0080_0000, // MIN_POSITIVE
    0x8080_0000,
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x3f80_0000, // 1
    0xbf80_0000, // -1
    0x42b1_7218, // 88.72284 (exp overflow edge)
    0xc2ae_ac50, // -87.33655 (exp flush edge)
    0xc2ae_ac4f,
    0xc2ae_ac51,
    0xc2ce_8ed0, // -103.27893 (subnormal exp edge)
    0x7149_f2ca, // 1e30
    0xf149_f2ca, // -1e30
    0x5f00_0000, // 2^63
    0xdf00_0000,
    0x4b40_0000, // 1.5 * 2^23 (the exp rounding constant)
    0xcb40_0000,
    0x4b00_0000, // 2^23
    0x3f31_7218, // ln 2
    0xbf31_7218,
    0x3eb1_7218, // ln2 / 2
    0xbeb1_7218,
    0x3f35_04f3, // sqrt(1/2)
    0x3fb5_04f3, // sqrt(2)
    0x3f7f_ffff, // 1 - 2^-24
    0x3f80_0001, // 1 + 2^-23
    0x3400_0000, // 2^-23
    0x2f80_0000, // 2^-32
    0x0c80_0000,
    0x1e3c_e508, // 1e-20
    0x4120_0000, // 10
    0xc120_0000,
    0x42c8_0000, // 100
    0xc2c8_0000,
    0x447a_0000, // 1000
    0xc47a_0000,
    0x4e6e_6b28, // 1e9
    0xce6e_6b28,
    0x3dcc_cccd, // 0.1
    0xbdcc_cccd,
    0x3e80_0000, // 0.25
    0x3f00_0000, // 0.5
    0x4000_0000, // 2
    0x4040_0000, // 3
    0x7f00_0000, // 2^127
    0xff00_0000,
];

const SCALES: [f32; 8] = [1e-3, 1.0, 20.0, 200.0, 1e4, 1e30, 3.0e38, 0.5];

/// How the values of an array are made from the byte pool.
#[derive(Clone, Copy, Debug)]
enum ValueMode {
    /// Four bytes per value, as an f32 bit pattern.
    Raw,
    /// One byte per value: 0..=191 → (b − 96)/8, 192..=255 → [`SPECIALS`].
    Palette,
    /// Two bytes per value, uniform in ±scale/2.
    Scaled(f32),
    /// Scaled, with roughly one value in 16 replaced by a special.
    Sprinkled(f32),
}

impl ValueMode {
    fn decode(sel: u8, scale: u8) -> ValueMode {
        let scale = SCALES[scale as usize % SCALES.len()];
        match sel & 3 {
            0 => ValueMode::Raw,
            1 => ValueMode::Palette,
            2 => ValueMode::Scaled(scale),
            _ => ValueMode::Sprinkled(scale),
        }
    }
}

fn palette(b: u8) -> f32 {
    if b < 192 {
        (b as f32 - 96.0) / 8.0
    } else {
        f32::from_bits(SPECIALS[(b - 192) as usize])
    }
}

/// `n` values from `pool`, starting at byte `start` (so different arrays of
/// one input differ), cycling through the pool for long rows.
fn make_values(pool: &[u8], n: usize, mode: ValueMode, start: usize) -> Vec<f32> {
    if pool.is_empty() {
        return vec![0.0; n];
    }
    let at = |k: usize| pool[(start + k) % pool.len()];
    (0..n)
        .map(|i| match mode {
            ValueMode::Raw => f32::from_bits(u32::from_le_bytes([
                at(4 * i),
                at(4 * i + 1),
                at(4 * i + 2),
                at(4 * i + 3),
            ])),
            ValueMode::Palette => palette(at(i).wrapping_add((i / pool.len()) as u8)),
            ValueMode::Scaled(s) => scaled(at(2 * i), at(2 * i + 1), i / pool.len(), s),
            ValueMode::Sprinkled(s) => {
                let (a, b) = (at(2 * i), at(2 * i + 1));
                if a >= 0xf0 {
                    f32::from_bits(SPECIALS[(b % 64) as usize])
                } else {
                    scaled(a, b, i / pool.len(), s)
                }
            }
        })
        .collect()
}

fn scaled(a: u8, b: u8, round: usize, s: f32) -> f32 {
    let v = u16::from_le_bytes([a, b]).wrapping_add((round as u16).wrapping_mul(40_503));
    ((v as f32 / 65_535.0) - 0.5) * s
}

/// A row length: mostly 0..=4096, sometimes up to ~135 000.
fn decode_len(r: &mut Reader) -> usize {
    let sel = r.u8();
    let v = r.u16() as usize;
    match sel & 7 {
        0 | 1 => v % 33,
        2 | 3 => v % 301,
        4..=6 => v % 4097,
        _ => {
            if sel & 0x38 == 0 {
                4097 + 2 * v
            } else {
                v % 4097
            }
        }
    }
}

/// A valid `row_len` for `n` (a divisor of it; anything non-zero for 0).
fn pick_row_len(n: usize, sel: u8) -> usize {
    if n == 0 {
        return [1, 7, usize::MAX][sel as usize % 3];
    }
    let divisors: Vec<usize> = (1..=n.isqrt())
        .filter(|d| n.is_multiple_of(*d))
        .flat_map(|d| [d, n / d])
        .collect();
    divisors[sel as usize % divisors.len()]
}

/// `data` placed at `offset` inside a buffer with guard elements around it.
struct Guarded {
    buf: Vec<f32>,
    offset: usize,
    len: usize,
}

impl Guarded {
    fn new(data: &[f32], offset: usize) -> Guarded {
        let mut buf = vec![f32::from_bits(SENTINEL); offset + data.len() + GUARD];
        buf[offset..offset + data.len()].copy_from_slice(data);
        Guarded {
            buf,
            offset,
            len: data.len(),
        }
    }
    fn filled(len: usize, offset: usize, v: f32) -> Guarded {
        Guarded::new(&vec![v; len], offset)
    }
    fn slice(&self) -> &[f32] {
        &self.buf[self.offset..self.offset + self.len]
    }
    fn slice_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.offset..self.offset + self.len]
    }
    /// Panics if anything outside the slice changed.
    fn check_guards(&self, ctx: &str) {
        let outside = self.buf[..self.offset]
            .iter()
            .chain(&self.buf[self.offset + self.len..]);
        for v in outside {
            assert_eq!(
                v.to_bits(),
                SENTINEL,
                "{ctx}: wrote outside the output slice"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The metric
// ---------------------------------------------------------------------------

/// `ulp_f32(r)`: the ULP of the f32 nearest `r`; `2^-149` below 2^-126.
pub fn ulp_f32(r: f64) -> f64 {
    let a = r.abs();
    if a.is_nan() {
        return f64::NAN;
    }
    if a < MIN_NORMAL {
        return TINY / 2.0;
    }
    let f = (a as f32).min(f32::MAX);
    let e = (f.to_bits() >> 23) as i32 - 127;
    2f64.powi(e - 23)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

thread_local! {
    /// The input row being checked, shown in failure messages (set by the
    /// row checkers; only read when a check fails).
    static ROW: std::cell::Cell<(*const f32, usize)> =
        const { std::cell::Cell::new((std::ptr::null(), 0)) };
}

/// Records `x` as the row under test for failure messages until the
/// returned guard is dropped (so the pointer never outlives the borrow).
fn set_row(x: &[f32]) -> RowGuard<'_> {
    ROW.with(|r| r.set((x.as_ptr(), x.len())));
    RowGuard(std::marker::PhantomData)
}

struct RowGuard<'a>(std::marker::PhantomData<&'a [f32]>);

impl Drop for RowGuard<'_> {
    fn drop(&mut self) {
        ROW.with(|r| r.set((std::ptr::null(), 0)));
    }
}

fn row_text() -> String {
    let (p, n) = ROW.with(|r| r.get());
    if p.is_null() || n == 0 {
        return String::new();
    }
    // SAFETY: `set_row` stored a slice whose borrow is held by the live
    // `RowGuard`, which clears the pointer when dropped.
    let x = unsafe { std::slice::from_raw_parts(p, n) };
    let shown: Vec<String> = x.iter().take(64).map(|v| format!("{v:e}")).collect();
    format!(
        "\n  input row ({n} values): [{}{}]",
        shown.join(", "),
        if n > 64 { ", ..." } else { "" }
    )
}

/// `|y − r|` within `bound` (absolute), with matching NaN / infinity and
/// f32 overflow (`|r| > f32::MAX` may round to the signed infinity).
fn check_abs(ctx: &str, i: usize, y: f32, r: f64, bound: f64) {
    let ok = if r.is_nan() {
        y.is_nan()
    } else if y.is_nan() {
        false
    } else if r.is_infinite() {
        y as f64 == r
    } else if y.is_infinite() && r.abs() + bound > f32::MAX as f64 {
        // The bound reaches past f32::MAX: an overflow to ±∞ is within it
        // (e.g. a gradient whose dot product cancelled catastrophically).
        bound >= r.abs() || y.is_sign_positive() == (r > 0.0)
    } else {
        y.is_finite() && (y as f64 - r).abs() <= bound
    };
    assert!(
        ok,
        "{ctx}: element {i}: got {y:e} ({:#010x}), reference {r:e}, |diff| {:e} > bound {bound:e} \
         ({:.2} ulp, bound {:.2} ulp){}",
        y.to_bits(),
        (y as f64 - r).abs(),
        (y as f64 - r).abs() / ulp_f32(r),
        bound / ulp_f32(r),
        row_text()
    );
}

/// The result class of one output, for the cross-backend comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Nan,
    PosInf,
    NegInf,
    Zero,
    Finite,
}

fn class(v: f32) -> Class {
    if v.is_nan() {
        Class::Nan
    } else if v == f32::INFINITY {
        Class::PosInf
    } else if v == f32::NEG_INFINITY {
        Class::NegInf
    } else if v == 0.0 {
        Class::Zero
    } else {
        Class::Finite
    }
}

/// Same class element by element. With `zero_matters` (probabilities), `0`
/// and a value below 2^-100 (the flush zone, where backends may
/// differ) count as the same; otherwise (logs, gradients) any finite
/// values do (e.g. `ln S` of a sum that is 1 on one backend and 1 + 1e-12
/// on another, both within the bound).
fn same_classes(ctx: &str, a: &[f32], b: &[f32], zero_matters: bool) {
    assert_eq!(a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (cx, cy) = (class(x), class(y));
        let tiny = |c: Class, v: f32| c == Class::Finite && (!zero_matters || v.abs() < 7.9e-31);
        let ok =
            cx == cy || (cx == Class::Zero && tiny(cy, y)) || (cy == Class::Zero && tiny(cx, x));
        assert!(
            ok,
            "{ctx}: element {i}: class {cx:?} ({x:e}) on one backend, {cy:?} ({y:e}) on another"
        );
    }
}

// ---------------------------------------------------------------------------
// Softmax, log-softmax, logsumexp (special values, accuracy bounds)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum RowClass {
    Nan,
    PosInf,
    AllNegInf,
    Ordinary(f32),
}

fn row_class(x: &[f32]) -> RowClass {
    if x.iter().any(|v| v.is_nan()) {
        RowClass::Nan
    } else if x.contains(&f32::INFINITY) {
        RowClass::PosInf
    } else if x.iter().all(|&v| v == f32::NEG_INFINITY) {
        RowClass::AllNegInf
    } else {
        RowClass::Ordinary(x.iter().copied().fold(f32::NEG_INFINITY, f32::max))
    }
}

/// What the f32 subtraction `x_j − m` costs the whole row: `δ_j` is its
/// rounding error, and the sum `S = Σ e^{d_j}` is off by the factor
/// `Σ_j r_j e^{δ_j} ≈ 1 + Σ_j r_j δ_j`. Returns `|Σ_j r_j δ_j|` (relative).
///
/// ACCURACY.md's per-element term `|x_i − m|` covers `δ_i` only; this is the
/// part every other element adds through the normalization. It is zero
/// when the subtractions are exact (Sterbenz) and tiny in practice.
fn sum_shift_error(x: &[f32], m: f32, r: &[f64]) -> f64 {
    let s: f64 = x
        .iter()
        .zip(r)
        .filter(|(_, r)| **r > 0.0)
        .map(|(&v, &w)| {
            let d32 = v - m;
            if d32.is_finite() {
                w * (d32 as f64 - (v as f64 - m as f64))
            } else {
                0.0
            }
        })
        .sum();
    s.abs()
}

/// The softmax of one row against the reference `r` (special values and accuracy bounds):
/// `err_i ≤ C + |x_i − m| + 2^24·|Σ_j r_j δ_j|` (the last term: see
/// [`sum_shift_error`]); `y_i == 0` where `r_i == 0` and allowed where `r_i`
/// is below 2^-126 (flush); `|Σ y − 1| ≤ Σ_i r_i·bound_i·2^-23` plus the
/// flushed mass.
fn check_softmax_row(ctx: &str, x: &[f32], r: &[f64], y: &[f32]) {
    let _row = set_row(x);
    match row_class(x) {
        RowClass::Nan => {
            for (i, v) in y.iter().enumerate() {
                assert!(v.is_nan(), "{ctx}: NaN row, element {i} is {v:e}");
            }
        }
        RowClass::AllNegInf => {
            for (i, v) in y.iter().enumerate() {
                assert!(*v == 0.0, "{ctx}: fully masked row, element {i} is {v:e}");
            }
        }
        RowClass::PosInf => {
            for (i, (&v, &ri)) in y.iter().zip(r).enumerate() {
                if ri == 0.0 {
                    assert!(v == 0.0, "{ctx}: +inf row, element {i} is {v:e}, not 0");
                } else {
                    check_abs(ctx, i, v, ri, C_ULPS * ulp_f32(ri));
                }
            }
        }
        RowClass::Ordinary(m) => {
            let shift = sum_shift_error(x, m, r) / U;
            let mut sum = 0.0f64;
            let mut budget = 0.0f64;
            for (i, ((&v, &ri), &xi)) in y.iter().zip(r).zip(x).enumerate() {
                sum += v as f64;
                if ri == 0.0 {
                    assert!(v == 0.0, "{ctx}: element {i}: reference 0, got {v:e}");
                    continue;
                }
                let b = C_ULPS + (xi as f64 - m as f64).abs() + shift;
                budget += ri * b * EPS + MIN_NORMAL;
                if v == 0.0 && ri * (1.0 - b * EPS) < MIN_NORMAL {
                    continue; // Results below 2^-126 may be flushed
                }
                check_abs(ctx, i, v, ri, b * ulp_f32(ri));
            }
            assert!(
                (sum - 1.0).abs() <= budget,
                "{ctx}: outputs sum to {sum:e}, off by {:e} > bound {budget:e}",
                sum - 1.0
            );
        }
    }
}

/// What `ln S` inherits from the rounded subtractions of the other
/// entries: `Σ_j p_j·ulp(x_j − m)` (ACCURACY.md's last log-softmax term;
/// `ulp(x_j − m)` is twice the worst rounding of `fl(x_j − m)`, which moves
/// `e^{x_j − m}`, and `ln S` by `p_j` times it).
fn inherited(x: &[f32], m: f32, r_soft: &[f64]) -> f64 {
    x.iter()
        .zip(r_soft)
        .filter(|(_, p)| **p > 0.0)
        .map(|(&v, &p)| p * ulp_f32(v as f64 - m as f64))
        .sum()
}

/// Log-softmax of one row: `|y_i − r_i| ≤ 4·ulp(r_i) + ulp(x_i − m) +`
/// [`inherited`] (docs/ACCURACY.md); `−∞` exactly where the reference
/// is `−∞` (masked entries) or the f32 subtraction `x_i − m` overflows.
fn check_log_softmax_row(ctx: &str, x: &[f32], r: &[f64], r_soft: &[f64], y: &[f32]) {
    let _row = set_row(x);
    match row_class(x) {
        RowClass::Nan => {
            for (i, v) in y.iter().enumerate() {
                assert!(v.is_nan(), "{ctx}: NaN row, element {i} is {v:e}");
            }
        }
        RowClass::AllNegInf | RowClass::PosInf => {
            for (i, (&v, &ri)) in y.iter().zip(r).enumerate() {
                check_abs(ctx, i, v, ri, 4.0 * ulp_f32(ri));
            }
        }
        RowClass::Ordinary(m) => {
            let extra = inherited(x, m, r_soft);
            for (i, ((&v, &ri), &xi)) in y.iter().zip(r).zip(x).enumerate() {
                if (xi - m) == f32::NEG_INFINITY {
                    assert!(
                        v == f32::NEG_INFINITY,
                        "{ctx}: element {i}: x − m overflows to −inf, got {v:e}"
                    );
                    continue;
                }
                let mut b = 4.0 * ulp_f32(ri) + ulp_f32(xi as f64 - m as f64) + extra;
                if ri.abs() < MIN_NORMAL {
                    b = b.max(MIN_NORMAL); // Below 2^-126 may flush
                }
                check_abs(ctx, i, v, ri, b);
            }
        }
    }
}

/// logsumexp: `|y − r| ≤ 4·ulp(r) +` [`inherited`] (the log-softmax bound
/// at a max entry: `logsumexp = m − log_softmax(x)_max`).
fn check_logsumexp(ctx: &str, x: &[f32], r: f64, r_soft: &[f64], y: f32) {
    let _row = set_row(x);
    match row_class(x) {
        RowClass::Ordinary(m) => {
            check_abs(ctx, 0, y, r, 4.0 * ulp_f32(r) + inherited(x, m, r_soft));
        }
        _ => check_abs(ctx, 0, y, r, 0.0),
    }
}

/// Reference values of every row of `x` (`row_len` divides `x.len()`).
struct RowRefs {
    soft: Vec<f64>,
    log: Vec<f64>,
}

fn row_refs(x: &[f32], row_len: usize) -> RowRefs {
    let (mut soft, mut log) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
    for row in x.chunks(row_len.max(1)) {
        soft.extend(reference::softmax(row));
        log.extend(reference::log_softmax(row));
    }
    RowRefs { soft, log }
}

fn check_rows(ctx: &str, x: &[f32], row_len: usize, refs: &RowRefs, y: &[f32], log: bool) {
    let rl = row_len.max(1);
    for (k, (row, out)) in x.chunks(rl).zip(y.chunks(rl)).enumerate() {
        let at = k * rl..(k * rl + row.len());
        let ctx = format!("{ctx} row {k}");
        if log {
            check_log_softmax_row(&ctx, row, &refs.log[at.clone()], &refs.soft[at], out);
        } else {
            check_softmax_row(&ctx, row, &refs.soft[at], out);
        }
    }
}

/// Asserts a refused call: the error and an untouched output.
fn refused<T: std::fmt::Debug>(
    ctx: &str,
    got: Result<T, Error>,
    want: &[Error],
    out_before: &[u32],
    out: &[f32],
) {
    match got {
        Err(e) => assert!(
            want.contains(&e),
            "{ctx}: error {e:?}, expected one of {want:?}"
        ),
        Ok(v) => panic!("{ctx}: accepted ({v:?}), expected one of {want:?}"),
    }
    assert_eq!(
        bits(out),
        out_before,
        "{ctx}: a refused call wrote its output"
    );
}

/// The `forward` target: softmax, log_softmax, logsumexp, the `*_rows`
/// functions, in place and out of place, on every backend and through the
/// free functions.
pub fn forward(data: &[u8]) {
    let mut rd = Reader::new(data);
    let flags = rd.u8();
    let (off_in, off_out) = ((flags & 3) as usize, ((flags >> 2) & 3) as usize);
    let n = decode_len(&mut rd);
    let mode = ValueMode::decode(flags >> 4, rd.u8());
    let row_sel = rd.u8();
    let bad_sel = rd.u8();
    let x = make_values(rd.rest(), n, mode, 0);
    let row_len = pick_row_len(n, row_sel);

    let whole = row_refs(&x, n.max(1));
    let rows = if row_len == n {
        None
    } else {
        Some(row_refs(&x, row_len))
    };
    let rows_ref = rows.as_ref().unwrap_or(&whole);
    let lse_ref = reference::logsumexp(&x);
    let input = Guarded::new(&x, off_in);
    let xin = input.slice();

    let mut outputs: Vec<(String, [Vec<f32>; 5], f32)> = Vec::new();
    for sm in engines() {
        let name = sm.backend().name();
        let ctx = |f: &str| format!("{f} [{name}, n={n}, row_len={row_len}]");

        let mut y = Guarded::filled(n, off_out, 0.0);
        sm.softmax(xin, y.slice_mut()).expect("softmax refused");
        y.check_guards(&ctx("softmax"));
        check_softmax_row(&ctx("softmax"), &x, &whole.soft, y.slice());

        let mut ip = Guarded::new(&x, off_out);
        sm.softmax_in_place(ip.slice_mut());
        ip.check_guards(&ctx("softmax_in_place"));
        check_softmax_row(&ctx("softmax_in_place"), &x, &whole.soft, ip.slice());

        let mut ly = Guarded::filled(n, off_out, 0.0);
        sm.log_softmax(xin, ly.slice_mut())
            .expect("log_softmax refused");
        ly.check_guards(&ctx("log_softmax"));
        check_log_softmax_row(&ctx("log_softmax"), &x, &whole.log, &whole.soft, ly.slice());

        let mut lip = Guarded::new(&x, off_out);
        sm.log_softmax_in_place(lip.slice_mut());
        lip.check_guards(&ctx("log_softmax_in_place"));
        check_log_softmax_row(
            &ctx("log_softmax_in_place"),
            &x,
            &whole.log,
            &whole.soft,
            lip.slice(),
        );

        let lse = sm.logsumexp(xin);
        check_logsumexp(&ctx("logsumexp"), &x, lse_ref, &whole.soft, lse);

        let mut ry = Guarded::filled(n, off_out, 0.0);
        sm.softmax_rows(xin, ry.slice_mut(), row_len)
            .expect("softmax_rows refused");
        ry.check_guards(&ctx("softmax_rows"));
        check_rows(
            &ctx("softmax_rows"),
            &x,
            row_len,
            rows_ref,
            ry.slice(),
            false,
        );

        let mut rip = Guarded::new(&x, off_out);
        sm.softmax_rows_in_place(rip.slice_mut(), row_len)
            .expect("softmax_rows_in_place refused");
        rip.check_guards(&ctx("softmax_rows_in_place"));
        check_rows(
            &ctx("softmax_rows_in_place"),
            &x,
            row_len,
            rows_ref,
            rip.slice(),
            false,
        );

        let mut lry = Guarded::filled(n, off_out, 0.0);
        sm.log_softmax_rows(xin, lry.slice_mut(), row_len)
            .expect("log_softmax_rows refused");
        lry.check_guards(&ctx("log_softmax_rows"));
        check_rows(
            &ctx("log_softmax_rows"),
            &x,
            row_len,
            rows_ref,
            lry.slice(),
            true,
        );

        let mut lrip = Guarded::new(&x, off_out);
        sm.log_softmax_rows_in_place(lrip.slice_mut(), row_len)
            .expect("log_softmax_rows_in_place refused");
        lrip.check_guards(&ctx("log_softmax_rows_in_place"));
        check_rows(
            &ctx("log_softmax_rows_in_place"),
            &x,
            row_len,
            rows_ref,
            lrip.slice(),
            true,
        );

        // Refused calls (bad lengths, bad row_len) write nothing.
        forward_errors(sm, xin, n, bad_sel, &ctx("errors"));

        outputs.push((
            name.to_string(),
            [
                y.slice().to_vec(),
                ly.slice().to_vec(),
                ry.slice().to_vec(),
                lry.slice().to_vec(),
                ip.slice().to_vec(),
            ],
            lse,
        ));
    }

    // Every backend: the same class of result.
    if let Some((first, rest)) = outputs.split_first() {
        for other in rest {
            let ctx = format!("forward n={n}: {} vs {}", first.0, other.0);
            for (k, (a, b)) in first.1.iter().zip(&other.1).enumerate() {
                // softmax, log_softmax, softmax_rows, log_softmax_rows, in place
                same_classes(&ctx, a, b, k % 2 == 0);
            }
            same_classes(&ctx, &[first.2], &[other.2], false);
        }
    }

    // The free functions use the default engine: bit-for-bit the same.
    let def = Softmax::new();
    let mut a = vec![0.0; n];
    let mut b = vec![0.0; n];
    simd_softmax::softmax(xin, &mut a).expect("softmax refused");
    def.softmax(xin, &mut b).expect("softmax refused");
    assert_eq!(
        bits(&a),
        bits(&b),
        "free softmax differs from Softmax::new()"
    );
    let mut c = x.clone();
    simd_softmax::softmax_in_place(&mut c);
    assert_eq!(bits(&a), bits(&c), "free softmax_in_place differs");
    simd_softmax::log_softmax(xin, &mut a).expect("log_softmax refused");
    def.log_softmax(xin, &mut b).expect("log_softmax refused");
    assert_eq!(bits(&a), bits(&b), "free log_softmax differs");
    let mut c = x.clone();
    simd_softmax::log_softmax_in_place(&mut c);
    assert_eq!(bits(&a), bits(&c), "free log_softmax_in_place differs");
    assert_eq!(
        simd_softmax::logsumexp(xin).to_bits(),
        def.logsumexp(xin).to_bits(),
        "free logsumexp differs"
    );
    simd_softmax::softmax_rows(xin, &mut a, row_len).expect("softmax_rows refused");
    def.softmax_rows(xin, &mut b, row_len)
        .expect("softmax_rows refused");
    assert_eq!(bits(&a), bits(&b), "free softmax_rows differs");
    let mut c = x.clone();
    simd_softmax::softmax_rows_in_place(&mut c, row_len).expect("refused");
    assert_eq!(bits(&a), bits(&c), "free softmax_rows_in_place differs");
    simd_softmax::log_softmax_rows(xin, &mut a, row_len).expect("log_softmax_rows refused");
    def.log_softmax_rows(xin, &mut b, row_len)
        .expect("log_softmax_rows refused");
    assert_eq!(bits(&a), bits(&b), "free log_softmax_rows differs");
    let mut c = x.clone();
    simd_softmax::log_softmax_rows_in_place(&mut c, row_len).expect("refused");
    assert_eq!(bits(&a), bits(&c), "free log_softmax_rows_in_place differs");
}

fn forward_errors(sm: &Softmax, x: &[f32], n: usize, sel: u8, ctx: &str) {
    // Output one longer or shorter than the input.
    let m = if n > 0 && sel & 1 == 1 { n - 1 } else { n + 1 };
    let mut out = vec![7.5f32; m];
    let before = bits(&out);
    let mismatch = [Error::LengthMismatch {
        input: n,
        output: m,
    }];
    refused(ctx, sm.softmax(x, &mut out), &mismatch, &before, &out);
    refused(ctx, sm.log_softmax(x, &mut out), &mismatch, &before, &out);
    let rl = pick_row_len(n, sel);
    let either = [
        mismatch[0].clone(),
        Error::InvalidRowLen {
            len: n,
            row_len: rl,
        },
    ];
    refused(
        ctx,
        sm.softmax_rows(x, &mut out, rl),
        &either,
        &before,
        &out,
    );
    refused(
        ctx,
        sm.log_softmax_rows(x, &mut out, rl),
        &either,
        &before,
        &out,
    );

    // row_len 0, or one that does not divide the length.
    let bad_rl = if sel & 2 == 0 || n == 0 {
        0
    } else {
        n + 1 + (sel as usize >> 2)
    };
    let bad = [Error::InvalidRowLen {
        len: n,
        row_len: bad_rl,
    }];
    let mut out = vec![7.5f32; n];
    let before = bits(&out);
    refused(
        ctx,
        sm.softmax_rows(x, &mut out, bad_rl),
        &bad,
        &before,
        &out,
    );
    refused(
        ctx,
        sm.log_softmax_rows(x, &mut out, bad_rl),
        &bad,
        &before,
        &out,
    );
    refused(
        ctx,
        sm.softmax_rows_in_place(&mut out, bad_rl),
        &bad,
        &before,
        &out,
    );
    refused(
        ctx,
        sm.log_softmax_rows_in_place(&mut out, bad_rl),
        &bad,
        &before,
        &out,
    );
    refused(
        ctx,
        sm.softmax_scaled_rows(x, &mut out, bad_rl, 1.0),
        &bad,
        &before,
        &out,
    );
}

// ---------------------------------------------------------------------------
// The family: scaled, backward, Jacobian, inverse, combination, sigmoid
// ---------------------------------------------------------------------------

/// Largest `n` the Jacobian (`n²` outputs per backend) is fuzzed at.
const JACOBIAN_MAX: usize = 96;

/// The reference of `softmax(α·x)` (with its limits) and the per-element
/// bound in ULPs.
///
/// Finite `α ≠ 0`: `r = S(α·x)` in f64, `m` the max (`α > 0`) or min
/// (`α < 0`), `d_i = x_i − m`. A kernel that computes `e^{fl(fl(x−m)·α)}`
/// perturbs each exponent by `τ_j`, `|τ_j| ≤ 2·2^-24·|α d_j|` (two
/// roundings), so `err_i ≤ C + 2|α d_i| + 2·Σ_j r_j |α d_j|` ULP (the same
/// argument as docs/ACCURACY.md, the second term through the normalization).
///
/// No intermediate may overflow while `α·(x_j − m)` is finite (docs/ACCURACY.md),
/// so the reference is `α·(x_j − m)` in f64 even where `x_j − m` would
/// overflow f32.
fn scaled_reference(x: &[f32], alpha: f32) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    if x.iter().any(|v| v.is_nan()) {
        return (vec![f64::NAN; n], vec![0.0; n]);
    }
    if alpha == 0.0 {
        return (vec![1.0 / n as f64; n], vec![C_ULPS; n]);
    }
    let neg = alpha < 0.0;
    let m = if neg {
        x.iter().copied().fold(f32::INFINITY, f32::min)
    } else {
        x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    };
    let masked = if neg {
        f32::INFINITY
    } else {
        f32::NEG_INFINITY
    };
    if alpha.is_infinite() || !m.is_finite() {
        // The limit: the entries equal to the extreme share the mass (or a
        // masked row gives zeros).
        if m == masked {
            return (vec![0.0; n], vec![0.0; n]);
        }
        let k = x.iter().filter(|&&v| v == m).count() as f64;
        let r = x
            .iter()
            .map(|&v| if v == m { 1.0 / k } else { 0.0 })
            .collect();
        return (r, vec![C_ULPS; n]);
    }
    let a = alpha as f64;
    let z: Vec<f64> = x.iter().map(|&v| a * (v as f64 - m as f64)).collect();
    let e: Vec<f64> = z.iter().map(|&t| t.exp()).collect();
    let s: f64 = e.iter().sum();
    let r: Vec<f64> = e.iter().map(|v| v / s).collect();
    let spread: f64 = r
        .iter()
        .zip(&z)
        .map(|(w, t)| w * 2.0 * t.abs())
        .filter(|t| t.is_finite())
        .sum::<f64>();
    let b = z.iter().map(|t| C_ULPS + 2.0 * t.abs() + spread).collect();
    (r, b)
}

/// A softmax-like output `y` against `r` with per-element ULP bounds `b`:
/// exact zeros, flushing below 2^-126, NaN classes, the sum.
fn check_distribution(ctx: &str, r: &[f64], b: &[f64], y: &[f32]) {
    let mut sum = 0.0f64;
    let mut budget = 0.0f64;
    let mut nan = false;
    for (i, ((&v, &ri), &bi)) in y.iter().zip(r).zip(b).enumerate() {
        sum += v as f64;
        if ri.is_nan() {
            nan = true;
            assert!(v.is_nan(), "{ctx}: element {i}: reference NaN, got {v:e}");
            continue;
        }
        if ri == 0.0 {
            assert!(v == 0.0, "{ctx}: element {i}: reference 0, got {v:e}");
            continue;
        }
        budget += ri * bi * EPS + MIN_NORMAL;
        if v == 0.0 && ri * (1.0 - bi * EPS) < MIN_NORMAL {
            continue;
        }
        check_abs(ctx, i, v, ri, bi * ulp_f32(ri));
    }
    if !nan && !y.is_empty() && r.iter().any(|&v| v > 0.0) {
        assert!(
            (sum - 1.0).abs() <= budget.max(y.len() as f64 * MIN_NORMAL),
            "{ctx}: outputs sum to {sum:e} (bound {budget:e})"
        );
    }
}

/// `dx = y ⊙ (dy − ⟨dy, y⟩)` against f64. The dot product is a blocked f32
/// sum (≤ 16 additions per lane, a few reduction levels, one product
/// rounding: we allow `32·2^-24·Σ|y_j dy_j|`) rounded to f32 (`ulp(dot)`),
/// then `fl(y_i·fl(dy_i − dot))` adds two roundings of the result:
/// `|dx_i − r_i| ≤ |y_i|·E_dot + 2·ulp(r_i) + 2^-148`. Inputs whose f32
/// intermediates may overflow (`Σ|y_j dy_j|`, `|dy_i| + |dot|` or their
/// product with `|y_i|` near f32::MAX) are only checked for not panicking.
fn check_backward(ctx: &str, y: &[f32], dy: &[f32], dx: &[f32]) -> bool {
    let finite = |v: &[f32]| v.iter().all(|t| t.is_finite());
    let absdot: f64 = y
        .iter()
        .zip(dy)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    let dot: f64 = y.iter().zip(dy).map(|(&a, &b)| a as f64 * b as f64).sum();
    let big = 1e36;
    let fin_dot = if dot.is_finite() { dot.abs() } else { 0.0 };
    let risky = absdot > big
        || y.iter().zip(dy).any(|(&a, &b)| {
            let g = (b as f64).abs() + fin_dot;
            (b.is_finite() && g > big) || (a.is_finite() && (a as f64).abs() * g > big)
        });
    if risky {
        return false;
    }
    let e_dot = 32.0 * U * absdot + ulp_f32(dot) + y.len() as f64 * TINY;
    let exact_inputs = finite(y) && finite(dy);
    // Whether the backends must agree in class: not where the error bound
    // itself reaches f32::MAX (cancellation in the dot product; the
    // backends sum in different orders).
    let mut comparable = true;
    for (i, ((&a, &b), &v)) in y.iter().zip(dy).zip(dx).enumerate() {
        let r = a as f64 * (b as f64 - dot);
        if exact_inputs {
            let bound = (a as f64).abs() * e_dot * 1.01 + 2.0 * ulp_f32(r) + TINY;
            comparable &= r.abs() + bound < big;
            check_abs(ctx, i, v, r, bound);
        } else {
            // Infinite inputs: only the class is defined.
            let want = if r.is_nan() {
                Class::Nan
            } else if r == f64::INFINITY {
                Class::PosInf
            } else if r == f64::NEG_INFINITY {
                Class::NegInf
            } else {
                Class::Finite
            };
            let got = match class(v) {
                Class::Zero => Class::Finite,
                c => c,
            };
            assert_eq!(got, want, "{ctx}: element {i}: {v:e}, reference {r:e}");
        }
    }
    comparable
}

/// `J = diag(y) − y yᵀ` against f64: off the diagonal one rounding of
/// `−y_i y_j`; on it `fl(y_i·fl(1 − y_i))`, which adds `|y_i|·ulp(1 − y_i)`.
fn check_jacobian(ctx: &str, y: &[f32], out: &[f32]) {
    let n = y.len();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (y[i] as f64, y[j] as f64);
            let (r, bound) = if i == j {
                (
                    a * (1.0 - a),
                    ulp_f32(a * (1.0 - a)) + a.abs() * ulp_f32(1.0 - a) + TINY,
                )
            } else {
                (-(a * b), ulp_f32(a * b) + TINY)
            };
            check_abs(ctx, i * n + j, out[i * n + j], r, bound);
        }
    }
}

/// `logits_from_probs`: the expected error, or the reference and bounds.
///
/// `ln` costs at most 2 ULP of `ln p_i` (our bound for the vector ln);
/// `c = −ln p_k` (Component) adds `2·ulp(ln p_k)`; `c = −mean(ln p)`
/// (ZeroMean) adds the blocked-sum error `32·2^-24·Σ|ln p_j|/n`, the
/// per-term ln errors `Σ 2·ulp(ln p_j)/n`, and its rounding `ulp(c)`; the
/// final addition costs `ulp(r_i)`.
fn check_logits(
    ctx: &str,
    p: &[f32],
    anchor: Anchor,
    got: Result<(), Error>,
    before: &[u32],
    out: &[f32],
) {
    let n = p.len();
    let invalid = p.iter().position(|v| !(*v >= 0.0 && *v < f32::INFINITY));
    let want_err = if let Some(index) = invalid {
        Some(Error::InvalidProbability { index })
    } else {
        match anchor {
            Anchor::Component(index) if index >= n => {
                Some(Error::AnchorOutOfRange { index, len: n })
            }
            Anchor::Component(index) if p[index] == 0.0 => Some(Error::ZeroProbability { index }),
            Anchor::ZeroMean => p
                .iter()
                .position(|v| *v == 0.0)
                .map(|index| Error::ZeroProbability { index }),
            _ => None,
        }
    };
    if let Some(e) = want_err {
        refused(ctx, got, &[e], before, out);
        return;
    }
    got.unwrap_or_else(|e| panic!("{ctx}: refused valid probabilities: {e:?}"));
    let l: Vec<f64> = p.iter().map(|&v| (v as f64).ln()).collect();
    let (c, e_c) = match anchor {
        Anchor::Component(k) => {
            assert!(
                out[k] == 0.0,
                "{ctx}: anchored component {k} is {:e}, not 0",
                out[k]
            );
            (-l[k], 2.0 * ulp_f32(l[k]))
        }
        Anchor::ZeroMean => {
            let c = -l.iter().sum::<f64>() / n.max(1) as f64;
            let abs: f64 = l
                .iter()
                .map(|v| 32.0 * U * v.abs() + 2.0 * ulp_f32(*v))
                .sum();
            (c, abs / n.max(1) as f64 + ulp_f32(c))
        }
    };
    for (i, (&li, &v)) in l.iter().zip(out).enumerate() {
        let r = li + c;
        check_abs(ctx, i, v, r, 2.0 * ulp_f32(li) + e_c + ulp_f32(r) + TINY);
    }
}

/// `softmax(Σ_k α_k x_k)`: the reference `z = Σ α_k x_k` in f64, then the
/// special-value and accuracy rules on `z`. The kernel forms `z` in f32, left to right
/// (≤ 2 roundings per term, each ≤ 2^-24 of `A_j = Σ_k |α_k x_kj|`), then
/// runs the softmax: `err_i ≤ C + (2K·A_i + |d_i|) + Σ_j r_j (2K·A_j + |d_j|)`
/// ULP, `d = z − max z` (softmax is shift invariant, so the error of the
/// max cancels). An exponent uncertain by more than ½ gets only the checks
/// of [`check_weak_distribution`]. (The kernel forms `z` exactly enough
/// that no `A_j` overflows it; this bound is looser than what it meets.)
fn check_combination(ctx: &str, terms: &[(f32, Vec<f32>)], n: usize, y: &[f32]) -> bool {
    let k = terms.len() as f64;
    let mut z = vec![0.0f64; n];
    let mut a = vec![0.0f64; n];
    for (alpha, x) in terms {
        for j in 0..n {
            let p = *alpha as f64 * x[j] as f64;
            z[j] += p;
            if p.is_finite() {
                a[j] += p.abs();
            }
        }
    }
    let nan = z.iter().any(|v| v.is_nan());
    let kinf = z.iter().filter(|&&v| v == f64::INFINITY).count();
    let (r, b): (Vec<f64>, Vec<f64>) = if n == 0 {
        (vec![], vec![])
    } else if nan {
        (vec![f64::NAN; n], vec![0.0; n])
    } else if kinf > 0 {
        let r = z
            .iter()
            .map(|&v| {
                if v == f64::INFINITY {
                    1.0 / kinf as f64
                } else {
                    0.0
                }
            })
            .collect();
        (r, vec![C_ULPS; n])
    } else if z.iter().all(|&v| v == f64::NEG_INFINITY) {
        (vec![0.0; n], vec![0.0; n])
    } else {
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|&t| (t - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let r: Vec<f64> = e.iter().map(|v| v / s).collect();
        let term = |j: usize| {
            let d = (z[j] - m).abs();
            2.0 * k * a[j] + if d.is_finite() { d } else { 0.0 }
        };
        // The absolute uncertainty of an exponent, `term(j)·2^-24`: once it
        // exceeds ½ (a common term far above the differences between the
        // entries, e.g. 9.6e32·0.5 + 8.2e20·x: the x part is below the f32
        // resolution of z), the f32 combination legitimately ties or
        // reorders entries, and only the shape of a distribution is checked.
        let tau = (0..n).map(&term).fold(0.0f64, f64::max) * U;
        if tau > 0.5 {
            check_weak_distribution(ctx, &r, y);
            return false;
        }
        let spread: f64 = (0..n).map(|j| r[j] * term(j)).sum::<f64>();
        let b = (0..n).map(|j| C_ULPS + term(j) + spread).collect();
        (r, b)
    };
    check_distribution(ctx, &r, &b, y);
    true
}

/// What holds whatever the rounding of the logits: NaN exactly where the
/// reference is NaN, values in `[0, 1]`, and a sum of 1 within the
/// rounding of the normalization (`(n + 8)·2^-23`).
fn check_weak_distribution(ctx: &str, r: &[f64], y: &[f32]) {
    let mut sum = 0.0f64;
    for (i, (&v, &ri)) in y.iter().zip(r).enumerate() {
        assert_eq!(
            v.is_nan(),
            ri.is_nan(),
            "{ctx}: element {i}: {v:e}, reference {ri:e}"
        );
        assert!(
            v.is_nan() || (0.0..=1.0).contains(&v),
            "{ctx}: element {i}: {v:e}"
        );
        sum += v as f64;
    }
    if !sum.is_nan() && !y.is_empty() {
        let bound = (y.len() as f64 + 8.0) * EPS;
        assert!((sum - 1.0).abs() <= bound, "{ctx}: sum {sum:e}");
    }
}

/// The logistic function against f64: `t = e^{−|z|}` (≤ 2 ULP, our exp
/// bound), `1 + t`, the division and, for `z < 0`, the product `t·r` each
/// round once: 4 ULP; `±∞` give exactly 1 and 0; results below 2^-126 may
/// be flushed.
fn check_sigmoid(ctx: &str, x: &[f32], y: &[f32]) {
    for (i, (&z, &v)) in x.iter().zip(y).enumerate() {
        let r = reference::logistic(z as f64);
        if z.is_nan() {
            assert!(v.is_nan(), "{ctx}: element {i}: sigmoid(NaN) = {v:e}");
        } else if z.is_infinite() {
            assert!(v as f64 == r, "{ctx}: element {i}: sigmoid({z}) = {v:e}");
        } else if v == 0.0 && r * (1.0 - 4.0 * EPS) < MIN_NORMAL {
            // flushed
        } else {
            check_abs(ctx, i, v, r, 4.0 * ulp_f32(r));
        }
    }
}

/// The `family` target: softmax_scaled(_rows), softmax_backward, jacobian,
/// logits_from_probs, softmax_of_combination, sigmoid.
pub fn family(data: &[u8]) {
    let mut rd = Reader::new(data);
    let flags = rd.u8();
    let (off_in, off_out) = ((flags & 3) as usize, ((flags >> 2) & 3) as usize);
    let n = decode_len(&mut rd);
    let mode = ValueMode::decode(flags >> 4, rd.u8());
    let alpha_sel = rd.u8();
    let alpha_bits = rd.u32();
    let row_sel = rd.u8();
    let anchor_sel = rd.u8();
    let anchor_k = rd.u16() as usize;
    let prob_sel = rd.u8();
    let nterms = rd.u8();
    let mut weights = Vec::new();
    for _ in 0..(nterms % 5) {
        let sel = rd.u8();
        let w = rd.u32();
        weights.push(if sel & 1 == 0 {
            f32::from_bits(w)
        } else {
            palette(w as u8)
        });
    }
    let term_len_bad = nterms >= 0xf0;
    let pool = rd.rest();
    let x = make_values(pool, n, mode, 0);
    let x2 = make_values(pool, n, mode, 1 + pool.len() / 3);
    let row_len = pick_row_len(n, row_sel);
    let alpha = match alpha_sel % 4 {
        0 => f32::from_bits(alpha_bits),
        1 => palette(alpha_bits as u8),
        2 => {
            (alpha_bits as u16 as f32 / 8192.0 - 4.0) * if alpha_sel & 4 == 0 { 1.0 } else { 100.0 }
        }
        _ => [
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0,
            -1.0,
            1e-30,
        ][alpha_sel as usize / 4 % 8],
    };
    let anchor = if anchor_sel & 1 == 0 {
        Anchor::ZeroMean
    } else if anchor_sel & 2 == 0 && n > 0 {
        Anchor::Component(anchor_k % n)
    } else {
        Anchor::Component(anchor_k)
    };
    // Probabilities: arbitrary values (mostly errors), |x|, or a softmax.
    let p: Vec<f32> = match prob_sel % 3 {
        0 => x.clone(),
        1 => x.iter().map(|v| v.abs()).collect(),
        _ => {
            let mut p = vec![0.0; n];
            Softmax::new().softmax(&x, &mut p).expect("softmax refused");
            p
        }
    };
    // Backward: y arbitrary or a softmax output.
    let yb: Vec<f32> = if prob_sel & 4 == 0 {
        x.clone()
    } else {
        p.clone()
    };
    let terms: Vec<(f32, Vec<f32>)> = weights
        .iter()
        .enumerate()
        .map(|(k, &w)| {
            (
                w,
                make_values(pool, n, mode, 7 + k * 13 + k * pool.len() / 5),
            )
        })
        .collect();
    let nj = n.min(JACOBIAN_MAX);

    let scaled_ref = (!alpha.is_nan()).then(|| scaled_reference(&x, alpha));
    let scaled_rows_ref = (!alpha.is_nan()).then(|| {
        let mut r = Vec::with_capacity(n);
        let mut b = Vec::with_capacity(n);
        for row in x.chunks(row_len.max(1)) {
            let (rr, bb) = scaled_reference(row, alpha);
            r.extend(rr);
            b.extend(bb);
        }
        (r, b)
    });

    let input = Guarded::new(&x, off_in);
    let xin = input.slice();
    // Per backend: the checked outputs, each with whether 0 is its own class.
    type Checked = Vec<(Vec<f32>, bool)>;
    let mut results: Vec<(&str, Checked)> = Vec::new();
    for sm in engines() {
        let name = sm.backend().name();
        let ctx = |f: &str| format!("{f} [{name}, n={n}, alpha={alpha:e}, row_len={row_len}]");
        let mut keep = Vec::new();

        // softmax_scaled / softmax_scaled_rows
        let mut y = Guarded::filled(n, off_out, 0.25);
        let before = bits(y.slice());
        let got = sm.softmax_scaled(xin, y.slice_mut(), alpha);
        y.check_guards(&ctx("softmax_scaled"));
        match &scaled_ref {
            None => refused(
                &ctx("softmax_scaled"),
                got,
                &[Error::NanAlpha],
                &before,
                y.slice(),
            ),
            Some((r, b)) => {
                got.expect("softmax_scaled refused");
                let _row = set_row(&x);
                check_distribution(&ctx("softmax_scaled"), r, b, y.slice());
                keep.push((y.slice().to_vec(), true));
            }
        }
        let mut y = Guarded::filled(n, off_out, 0.25);
        let got = sm.softmax_scaled_rows(xin, y.slice_mut(), row_len, alpha);
        y.check_guards(&ctx("softmax_scaled_rows"));
        match &scaled_rows_ref {
            None => refused(
                &ctx("softmax_scaled_rows"),
                got,
                &[Error::NanAlpha],
                &before,
                y.slice(),
            ),
            Some((r, b)) => {
                got.expect("softmax_scaled_rows refused");
                let rl = row_len.max(1);
                for (k, out) in y.slice().chunks(rl).enumerate() {
                    let at = k * rl..k * rl + out.len();
                    let _row = set_row(&x[at.clone()]);
                    check_distribution(
                        &format!("{} row {k}", ctx("softmax_scaled_rows")),
                        &r[at.clone()],
                        &b[at],
                        out,
                    );
                }
                keep.push((y.slice().to_vec(), true));
            }
        }

        // softmax_backward
        let dy = Guarded::new(&x2, off_in ^ 1);
        let mut dx = Guarded::filled(n, off_out, 0.0);
        sm.softmax_backward(&yb, dy.slice(), dx.slice_mut())
            .expect("softmax_backward refused");
        dx.check_guards(&ctx("softmax_backward"));
        if check_backward(&ctx("softmax_backward"), &yb, &x2, dx.slice()) {
            keep.push((dx.slice().to_vec(), false));
        }
        let mut short = vec![1.0f32; n + 1];
        let before = bits(&short);
        let got = sm.softmax_backward(&yb, dy.slice(), &mut short);
        refused(
            &ctx("softmax_backward"),
            got,
            &[Error::GradientLength {
                y: n,
                dy: n,
                dx: n + 1,
            }],
            &before,
            &short,
        );

        // jacobian
        let yj = &yb[..nj];
        let mut jac = Guarded::filled(nj * nj, off_out, 0.0);
        sm.jacobian(yj, jac.slice_mut()).expect("jacobian refused");
        jac.check_guards(&ctx("jacobian"));
        check_jacobian(&ctx("jacobian"), yj, jac.slice());
        keep.push((jac.slice().to_vec(), false));
        let mut wrong = vec![0.0f32; nj * nj + 1];
        let before = bits(&wrong);
        let got = sm.jacobian(yj, &mut wrong);
        refused(
            &ctx("jacobian"),
            got,
            &[Error::JacobianSize {
                n: nj,
                expected: Some(nj * nj),
                output: nj * nj + 1,
            }],
            &before,
            &wrong,
        );

        // logits_from_probs
        let mut lg = Guarded::filled(n, off_out, 0.5);
        let before = bits(lg.slice());
        let got = sm.logits_from_probs(&p, lg.slice_mut(), anchor);
        lg.check_guards(&ctx("logits_from_probs"));
        let ok = got.is_ok();
        check_logits(
            &ctx(&format!("logits_from_probs {anchor:?}")),
            &p,
            anchor,
            got,
            &before,
            lg.slice(),
        );
        if ok {
            keep.push((lg.slice().to_vec(), false));
        }

        // softmax_of_combination
        let tv: Vec<(f32, &[f32])> = terms
            .iter()
            .enumerate()
            .map(|(k, (w, v))| {
                let v: &[f32] = if term_len_bad && k + 1 == terms.len() && n > 0 {
                    &v[..n - 1]
                } else {
                    v
                };
                (*w, v)
            })
            .collect();
        let mut cy = Guarded::filled(n, off_out, 0.125);
        let before = bits(cy.slice());
        let got = sm.softmax_of_combination(&tv, cy.slice_mut());
        cy.check_guards(&ctx("softmax_of_combination"));
        let expected_errors: Vec<Error> = tv
            .iter()
            .enumerate()
            .flat_map(|(term, &(w, v))| {
                let mut e = Vec::new();
                if w.is_nan() {
                    e.push(Error::NanAlpha);
                }
                if v.len() != n {
                    e.push(Error::TermLength {
                        term,
                        len: v.len(),
                        expected: n,
                    });
                }
                e
            })
            .collect();
        if expected_errors.is_empty() {
            got.expect("softmax_of_combination refused");
            if check_combination(&ctx("softmax_of_combination"), &terms, n, cy.slice()) {
                keep.push((cy.slice().to_vec(), true));
            }
        } else {
            refused(
                &ctx("softmax_of_combination"),
                got,
                &expected_errors,
                &before,
                cy.slice(),
            );
        }

        // sigmoid
        let mut sg = Guarded::filled(n, off_out, 0.0);
        sm.sigmoid(xin, sg.slice_mut()).expect("sigmoid refused");
        sg.check_guards(&ctx("sigmoid"));
        check_sigmoid(&ctx("sigmoid"), &x, sg.slice());
        keep.push((sg.slice().to_vec(), true));
        let mut wrong = vec![0.0f32; n + 1];
        let before = bits(&wrong);
        let got = sm.sigmoid(xin, &mut wrong);
        refused(
            &ctx("sigmoid"),
            got,
            &[Error::LengthMismatch {
                input: n,
                output: n + 1,
            }],
            &before,
            &wrong,
        );

        results.push((name, keep));
    }

    if let Some((first, rest)) = results.split_first() {
        for other in rest {
            assert_eq!(
                first.1.len(),
                other.1.len(),
                "checked different sets of results"
            );
            let ctx = format!("family n={n}: {} vs {}", first.0, other.0);
            for ((a, zero_matters), (b, _)) in first.1.iter().zip(&other.1) {
                same_classes(&ctx, a, b, *zero_matters);
            }
        }
    }

    // The free functions: bit-for-bit the default engine.
    let def = Softmax::new();
    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
    let ra = simd_softmax::softmax_scaled(xin, &mut a, alpha);
    let rb = def.softmax_scaled(xin, &mut b, alpha);
    assert_eq!(ra, rb);
    assert_eq!(bits(&a), bits(&b), "free softmax_scaled differs");
    let ra = simd_softmax::softmax_scaled_rows(xin, &mut a, row_len, alpha);
    let rb = def.softmax_scaled_rows(xin, &mut b, row_len, alpha);
    assert_eq!(ra, rb);
    assert_eq!(bits(&a), bits(&b), "free softmax_scaled_rows differs");
    simd_softmax::softmax_backward(&yb, &x2, &mut a).expect("refused");
    def.softmax_backward(&yb, &x2, &mut b).expect("refused");
    assert_eq!(bits(&a), bits(&b), "free softmax_backward differs");
    let (mut ja, mut jb) = (vec![0.0; nj * nj], vec![0.0; nj * nj]);
    simd_softmax::jacobian(&yb[..nj], &mut ja).expect("refused");
    def.jacobian(&yb[..nj], &mut jb).expect("refused");
    assert_eq!(bits(&ja), bits(&jb), "free jacobian differs");
    let ra = simd_softmax::logits_from_probs(&p, &mut a, anchor);
    let rb = def.logits_from_probs(&p, &mut b, anchor);
    assert_eq!(ra, rb);
    assert_eq!(bits(&a), bits(&b), "free logits_from_probs differs");
    let tv: Vec<(f32, &[f32])> = terms.iter().map(|(w, v)| (*w, v.as_slice())).collect();
    let ra = simd_softmax::softmax_of_combination(&tv, &mut a);
    let rb = def.softmax_of_combination(&tv, &mut b);
    assert_eq!(ra, rb);
    assert_eq!(bits(&a), bits(&b), "free softmax_of_combination differs");
    simd_softmax::sigmoid(xin, &mut a).expect("refused");
    def.sigmoid(xin, &mut b).expect("refused");
    assert_eq!(bits(&a), bits(&b), "free sigmoid differs");
}

// ---------------------------------------------------------------------------
// The online state
// ---------------------------------------------------------------------------

/// Chunk lengths covering `n`: each in `0..=cap` (empty chunks included),
/// from a small LCG seeded by the input.
fn chunk_lens(n: usize, cap: usize, seed: u16) -> Vec<usize> {
    let mut s = seed as u64 | 1;
    let mut lens = Vec::new();
    let mut left = n;
    while left > 0 {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = ((s >> 33) as usize % (cap + 1)).min(left);
        lens.push(len);
        left -= len;
    }
    lens
}

/// The `state` target: a row (decoded as `forward` decodes its row) fed to
/// a `SoftmaxState` in chunks the input picks (empty ones included), on
/// every backend. Checked: every chunk's softmax and log-softmax from the
/// whole state, and its logsumexp, as the whole row's (the bounds and
/// special values of `forward`, guard elements around the outputs); the
/// merge of the two halves' states in both orders (the same bits: the
/// merge commutes); `exp_update` over the chunks (each exp against the f64
/// `e^(x − max so far)` within `C + |x − m|` ULP, the rescale factor, the
/// `+∞` and NaN rules); mismatched lengths refused, outputs and state
/// untouched.
pub fn state(data: &[u8]) {
    let mut rd = Reader::new(data);
    let flags = rd.u8();
    let off_out = (flags & 3) as usize;
    let n = decode_len(&mut rd);
    let mode = ValueMode::decode(flags >> 4, rd.u8());
    let cap = [1usize, 3, 17, 100, 1000, 5000, 70_000, 0][rd.u8() as usize % 8].max(1);
    let seed = rd.u16();
    let split = rd.u16() as usize % (n + 1);
    let x = make_values(rd.rest(), n, mode, 0);
    let lens = chunk_lens(n, cap, seed);
    let chunks: Vec<std::ops::Range<usize>> = lens
        .iter()
        .scan(0, |i, &l| {
            *i += l;
            Some(*i - l..*i)
        })
        .collect();
    let whole = row_refs(&x, n.max(1));
    let lse_ref = reference::logsumexp(&x);

    for sm in engines() {
        let name = sm.backend().name();
        let ctx = |f: &str| format!("SoftmaxState::{f} [{name}, n={n}, chunks ≤ {cap}]");

        let mut st = sm.state();
        for c in &chunks {
            st.update(&x[c.clone()]);
        }
        let (mut y, mut ly) = (
            Guarded::filled(n, off_out, 0.0),
            Guarded::filled(n, off_out, 0.0),
        );
        for c in &chunks {
            let xc = &x[c.clone()];
            st.normalize(xc, &mut y.slice_mut()[c.clone()])
                .expect("normalize refused");
            st.log_normalize(xc, &mut ly.slice_mut()[c.clone()])
                .expect("log_normalize refused");
        }
        y.check_guards(&ctx("normalize"));
        ly.check_guards(&ctx("log_normalize"));
        check_softmax_row(&ctx("normalize"), &x, &whole.soft, y.slice());
        check_log_softmax_row(
            &ctx("log_normalize"),
            &x,
            &whole.log,
            &whole.soft,
            ly.slice(),
        );
        check_logsumexp(&ctx("logsumexp"), &x, lse_ref, &whole.soft, st.logsumexp());

        // The two halves' states, merged both ways.
        let (mut a, mut b) = (sm.state(), sm.state());
        a.update(&x[..split]);
        b.update(&x[split..]);
        let (ab, ba) = (a.merge(b), b.merge(a));
        assert_eq!(
            (ab.max().to_bits(), ab.sum().to_bits()),
            (ba.max().to_bits(), ba.sum().to_bits()),
            "{}: a.merge(b) != b.merge(a)",
            ctx("merge")
        );
        check_logsumexp(&ctx("merge"), &x, lse_ref, &whole.soft, ab.logsumexp());

        // Flash attention's step over the same chunks.
        let mut st = sm.state();
        let (mut seen, mut nan) = (f32::NEG_INFINITY, false);
        for c in &chunks {
            let xc = &x[c.clone()];
            let mut e = Guarded::filled(xc.len(), off_out, 0.0);
            let f = st
                .exp_update(xc, e.slice_mut())
                .expect("exp_update refused");
            e.check_guards(&ctx("exp_update"));
            let new = xc.iter().fold(seen, |m, &v| m.max(v));
            nan |= xc.iter().any(|v| v.is_nan());
            let ctx = ctx("exp_update");
            let _row = set_row(xc);
            if nan {
                assert!(f.is_nan(), "{ctx}: NaN row, factor {f:e}");
                for (i, v) in e.slice().iter().enumerate() {
                    assert!(v.is_nan(), "{ctx}: NaN row, exp {i} is {v:e}");
                }
                continue;
            }
            assert_eq!(st.max(), new, "{ctx}: max");
            let want_f = if seen == f32::NEG_INFINITY {
                0.0
            } else if seen == new {
                1.0
            } else {
                (seen as f64 - new as f64).exp()
            };
            check_abs(&ctx, 0, f, want_f, 0.5 * ulp_f32(want_f) * 1.0001);
            for (i, (&v, &xi)) in e.slice().iter().zip(xc).enumerate() {
                if new == f32::INFINITY {
                    let want = if xi == new { 1.0 } else { 0.0 };
                    assert!(v == want, "{ctx}: +inf max, exp {i} is {v:e}, want {want}");
                } else if xi == f32::NEG_INFINITY || new == f32::NEG_INFINITY {
                    assert!(v == 0.0, "{ctx}: exp {i} of -inf is {v:e}");
                } else {
                    let r = (xi as f64 - new as f64).exp();
                    let b = C_ULPS + (xi as f64 - new as f64).abs();
                    if v == 0.0 && r * (1.0 - b * EPS) < MIN_NORMAL {
                        continue; // below 2^-126: may flush
                    }
                    check_abs(&ctx, i, v, r, b * ulp_f32(r));
                }
            }
            seen = new;
        }

        // Mismatched lengths: refused, outputs and state untouched.
        let before = (st.max().to_bits(), st.sum().to_bits());
        let mut out = vec![f32::from_bits(SENTINEL); n + 1];
        let want = [Error::LengthMismatch {
            input: n,
            output: n + 1,
        }];
        let poison = bits(&out);
        let r = st.normalize(&x, &mut out);
        refused(&ctx("normalize"), r, &want, &poison, &out);
        let r = st.log_normalize(&x, &mut out);
        refused(&ctx("log_normalize"), r, &want, &poison, &out);
        let r = st.exp_update(&x, &mut out);
        refused(&ctx("exp_update"), r, &want, &poison, &out);
        assert_eq!(
            (st.max().to_bits(), st.sum().to_bits()),
            before,
            "{}: a refused call changed the state",
            ctx("exp_update")
        );
    }
}

// ---------------------------------------------------------------------------
// Sampler

/// `Sampler` with parameters the input picks (valid and invalid ones:
/// `T` in `{0, tiny, 0.7, 1, 3, +∞, −1, NaN}`, top-k, top-p, min-p, `u`) on
/// values of every mode: an error exactly when the contract says so;
/// otherwise survivors that are distinct in-range indices of logits that
/// can be chosen, in descending logit with ties by index, at most `k`,
/// probabilities in `[0, 1]` summing to 1 within their f32 rounding,
/// `top_k = 1` equal to greedy, and `sample` returning one of them.
pub fn sampler(data: &[u8]) {
    use simd_softmax::{Candidate, SamplerScratch};
    let mut rd = Reader::new(data);
    let flags = rd.u8();
    let n = decode_len(&mut rd).min(70_000);
    let mode = ValueMode::decode(flags >> 4, rd.u8());
    let t = [
        0.0,
        f32::from_bits(1),
        0.7,
        1.0,
        3.0,
        f32::INFINITY,
        -1.0,
        f32::NAN,
    ][rd.u8() as usize % 8];
    let k = [0usize, 1, 2, 40, 1000][rd.u8() as usize % 5];
    let p = [1.0f32, 0.9, 0.5, 1e-6, 0.0, 1.5][rd.u8() as usize % 6];
    let min_p = [0.0f32, 0.05, 0.5, 1.0, -0.5][rd.u8() as usize % 5];
    let u = [0.0f64, 0.5, 0.999_999, 1.0][rd.u8() as usize % 4];
    let x = make_values(rd.rest(), n, mode, 0);
    let mut scratch = SamplerScratch::new(n + (flags & 1) as usize);

    let bad_param =
        t.is_nan() || t < 0.0 || !(p > 0.0 && p <= 1.0) || !(0.0..=1.0).contains(&min_p);
    let nan = x.iter().any(|v| v.is_nan());
    let none = x.iter().all(|&v| v == f32::NEG_INFINITY);
    for sm in engines() {
        let name = sm.backend().name();
        let s = sm.sampler().temperature(t).top_k(k).top_p(p).min_p(min_p);
        let ctx = format!("Sampler [{name}, n={n}, T={t}, k={k}, p={p}, min_p={min_p}]");
        let got = s.survivors(&x, &mut scratch).map(|v| v.to_vec());
        let kept = match got {
            Err(e) => {
                let expected = match e {
                    Error::InvalidParameter { .. } => bad_param,
                    Error::NanLogit { index } => !bad_param && x[index].is_nan() && nan,
                    Error::NoFiniteLogit => !bad_param && !nan && none,
                    _ => false,
                };
                assert!(expected, "{ctx}: unexpected error {e:?}");
                continue;
            }
            Ok(v) => v,
        };
        assert!(!bad_param && !nan && !none, "{ctx}: accepted bad input");
        assert!(!kept.is_empty(), "{ctx}: no survivor");
        if k > 0 {
            assert!(kept.len() <= k, "{ctx}: {} survivors > k", kept.len());
        }
        let mut seen = std::collections::HashSet::new();
        let mut sum = 0.0f64;
        for (j, c) in kept.iter().enumerate() {
            let v = x[c.index as usize];
            assert!(v > f32::NEG_INFINITY, "{ctx}: chose −∞ at {}", c.index);
            assert!(seen.insert(c.index), "{ctx}: {} twice", c.index);
            assert!((0.0..=1.0).contains(&c.prob), "{ctx}: prob {}", c.prob);
            sum += f64::from(c.prob);
            if j > 0 {
                let (a, b) = (kept[j - 1], *c);
                let (va, vb) = (x[a.index as usize], v);
                assert!(
                    va > vb || (va == vb && a.index < b.index),
                    "{ctx}: order {a:?} ({va}) before {b:?} ({vb})"
                );
            }
        }
        assert!(
            (sum - 1.0).abs() <= kept.len() as f64 * 2f64.powi(-24) + 1e-12,
            "{ctx}: probabilities sum to {sum}"
        );
        let greedy = sm
            .sampler()
            .temperature(0.0)
            .survivors(&x, &mut scratch)
            .unwrap()[0];
        let top1 = sm
            .sampler()
            .temperature(t)
            .top_k(1)
            .survivors(&x, &mut scratch)
            .unwrap()[0];
        assert_eq!(greedy, top1, "{ctx}: top_k = 1 is not greedy");
        assert_eq!(greedy.prob, 1.0);
        match s.sample(&x, u, &mut scratch) {
            Ok(c) => {
                assert!(u < 1.0, "{ctx}: accepted u = {u}");
                let at = kept.iter().position(|k| k.index == c.index);
                assert!(at.is_some(), "{ctx}: sampled {c:?}, not a survivor");
                let want: Candidate = kept[at.unwrap()];
                assert_eq!(c, want, "{ctx}: sample's probability");
            }
            Err(e) => assert!(
                u >= 1.0 && matches!(e, Error::InvalidParameter { name: "u", .. }),
                "{ctx}: sample refused: {e:?}"
            ),
        }
    }
}

/// `AttentionSoftmax`: shape, options, strides and scores the input picks,
/// on every backend. Bad arguments are refused exactly where the contract
/// puts them, with the output untouched; otherwise every row matches the
/// f64 formula within the softmax bound on the keys plus the keys' own
/// rounding (a key that overflows f32 in the kernel's arithmetic is taken
/// as the kernel's `±∞`), entries outside the causal limit or the window
/// are exactly 0, and the gaps between output rows are never written.
pub fn attention(data: &[u8]) {
    use simd_softmax::{bf16, f16};
    let mut rd = Reader::new(data);
    let (f1, f2, f3) = (rd.u8(), rd.u8(), rd.u8());
    let heads = 1 + (f1 & 3) as usize;
    let q_len = 1 + ((f1 >> 2) & 7) as usize;
    let kv = decode_len(&mut rd).min(9000);
    let mode = ValueMode::decode(f2 >> 4, rd.u8());
    let scale = [1.0f32, 0.125, 0.0, f32::NAN, 1e-30, 3.0, f32::INFINITY, 0.5][(f2 & 7) as usize];
    let cap = [
        None,
        Some(50.0f32),
        Some(1.0),
        Some(0.0),
        Some(f32::NAN),
        Some(1e-3),
    ][rd.u8() as usize % 6];
    let mask_kind = rd.u8() % 7; // 0 none; 1–3 shared f32/f16/bf16; 4–6 per head
    let alibi = rd.u8() % 3; // 0 none, 1 slopes, 2 max_bias
    let causal =
        [None, Some(0usize), Some(kv.saturating_sub(q_len)), Some(3)][rd.u8() as usize % 4];
    let window = [None, Some(1usize), Some(5), Some(0), Some(300)][rd.u8() as usize % 5];
    let sink_kind = rd.u8() % 4;
    let (xpad, ypad, mpad) = (
        (f3 & 3) as usize,
        ((f3 >> 2) & 3) as usize,
        ((f3 >> 4) & 3) as usize,
    );
    let rows = heads * q_len;
    let (xs, ys, ms) = (kv + xpad, kv + ypad, kv + mpad);
    let len = |r: usize, st: usize| if r == 0 { 0 } else { (r - 1) * st + kv };
    let x = make_values(rd.rest(), len(rows, xs), mode, 0);
    let per_head = mask_kind >= 4;
    let mrows = if per_head { rows } else { q_len };
    let mask: Vec<f32> = make_values(rd.rest(), len(mrows, ms), ValueMode::Palette, 7)
        .into_iter()
        .map(|v| if v.is_nan() { f32::NEG_INFINITY } else { v })
        .collect();
    let mask16: Vec<f16> = mask.iter().map(|&v| f16::from_f32(v)).collect();
    let maskb: Vec<bf16> = mask.iter().map(|&v| bf16::from_f32(v)).collect();
    let mask_seen: Vec<f32> = match mask_kind {
        0 => Vec::new(),
        1 | 4 => mask.clone(),
        2 | 5 => mask16.iter().map(|v| v.to_f32()).collect(),
        _ => maskb.iter().map(|v| v.to_f32()).collect(),
    };
    let slopes: Vec<f32> = (0..heads).map(|h| 0.25 + h as f32 * 0.5).collect();
    let sinks: Vec<f32> = (0..heads)
        .map(|h| match sink_kind {
            1 => 0.5 - h as f32,
            2 => [f32::NEG_INFINITY, f32::INFINITY, f32::NAN, 2.0][h],
            _ => 1.0,
        })
        .collect();

    let bad = scale.is_nan()
        || cap.is_some_and(|c| c.is_nan() || c <= 0.0)
        || window == Some(0)
        || (alibi > 0 && mask_kind == 0);
    let slope_of = |h: usize| -> f64 {
        match alibi {
            1 => slopes[h] as f64,
            2 => {
                // ggml's slopes from max_bias 8, exactly.
                let n = 1usize << (usize::BITS - 1 - heads.leading_zeros());
                let e = if h < n {
                    -8.0 / n as f64 * (h + 1) as f64
                } else {
                    -8.0 / (2 * n) as f64 * (2 * (h - n) + 1) as f64
                };
                e.exp2()
            }
            _ => 1.0,
        }
    };
    for sm in engines() {
        let name = sm.backend().name();
        let ctx = format!(
            "attention [{name}, {heads}x{q_len}x{kv}, scale {scale}, cap {cap:?}, mask {mask_kind}, alibi {alibi}, causal {causal:?}, window {window:?}, sinks {sink_kind}, pads {xpad}/{ypad}/{mpad}]"
        );
        let mut a = sm
            .attention()
            .scale(scale)
            .row_stride(xs)
            .out_stride(ys)
            .mask_stride(ms);
        if let Some(c) = cap {
            a = a.softcap(c);
        }
        a = match mask_kind {
            0 => a,
            1 => a.mask(&mask),
            2 => a.mask(&mask16),
            3 => a.mask(&maskb),
            4 => a.head_mask(&mask),
            5 => a.head_mask(&mask16),
            _ => a.head_mask(&maskb),
        };
        a = match alibi {
            1 => a.alibi_slopes(&slopes),
            2 => a.alibi_max_bias(8.0),
            _ => a,
        };
        if let Some(o) = causal {
            a = a.causal(o);
        }
        if let Some(w) = window {
            a = a.window(w);
        }
        if sink_kind > 0 {
            a = a.sinks(&sinks);
        }
        let mut y = vec![f32::from_bits(SENTINEL); len(rows, ys)];
        match a.run(&x, &mut y, heads, q_len, kv) {
            Err(e) => {
                assert!(
                    bad && matches!(e, Error::InvalidParameter { .. }),
                    "{ctx}: {e:?}"
                );
                assert!(
                    y.iter().all(|v| v.to_bits() == SENTINEL),
                    "{ctx}: refused call wrote"
                );
                continue;
            }
            Ok(()) => assert!(!bad, "{ctx}: accepted bad arguments"),
        }
        for r in 0..rows {
            let (h, q) = (r / q_len, r % q_len);
            if r + 1 < rows {
                assert!(
                    y[r * ys + kv..(r + 1) * ys]
                        .iter()
                        .all(|v| v.to_bits() == SENTINEL),
                    "{ctx}: gap written"
                );
            }
            let yr = &y[r * ys..][..kv];
            let limit = q + causal.unwrap_or(0) + 1;
            let hi = if causal.is_some() { limit.min(kv) } else { kv };
            let lo = window.map_or(0, |w| limit.saturating_sub(w).min(hi));
            // The keys: exact in f64, or the kernel's f32 overflow.
            let mut z = vec![f64::NEG_INFINITY; kv];
            let mut d = vec![0.0f64; kv];
            for j in lo..hi {
                let sv = x[r * xs + j];
                let t = scale as f64 * sv as f64;
                let (mut v, mut e, mut k32) = (t, t.abs(), scale * sv);
                if let Some(c) = cap {
                    v = c as f64 * (t / c as f64).tanh();
                    e = 8.0 * v.abs();
                    k32 = if t.is_nan() { f32::NAN } else { v as f32 };
                }
                if mask_kind > 0 {
                    let mr = if per_head { r } else { q };
                    let m = mask_seen[mr * ms + j];
                    let b = slope_of(h) * m as f64;
                    e += (v + b).abs() + 2.0 * b.abs();
                    v += b;
                    k32 = (slope_of(h) as f32).mul_add(m, k32);
                }
                z[j] = if k32.is_finite() { v } else { k32 as f64 };
                d[j] = if z[j].is_finite() {
                    e * 2f64.powi(-24)
                } else {
                    0.0
                };
            }
            let sink = if sink_kind > 0 {
                sinks[h] as f64
            } else {
                f64::NEG_INFINITY
            };
            let ext = &z[lo..hi];
            if ext.iter().any(|v| v.is_nan()) || sink.is_nan() {
                assert!(yr.iter().all(|v| v.is_nan()), "{ctx}: row {r} not NaN");
                continue;
            }
            for j in (0..lo).chain(hi..kv) {
                assert!(
                    yr[j] == 0.0,
                    "{ctx}: row {r} y[{j}] = {} outside the extent",
                    yr[j]
                );
            }
            let inf = ext.iter().filter(|&&v| v == f64::INFINITY).count()
                + (sink == f64::INFINITY) as usize;
            let m = ext.iter().copied().fold(sink, f64::max);
            let dmax = d.iter().copied().fold(0.0, f64::max);
            let total: f64 = z.iter().map(|&v| (v - m).exp()).sum::<f64>() + (sink - m).exp();
            for j in lo..hi {
                let want = if inf > 0 {
                    if z[j] == f64::INFINITY {
                        1.0 / inf as f64
                    } else {
                        0.0
                    }
                } else if m == f64::NEG_INFINITY {
                    0.0
                } else {
                    (z[j] - m).exp() / total
                };
                let got = yr[j] as f64;
                // Masked entries and the `+∞` rule are exact; an entry whose
                // f64 term underflows takes the general bound (its key may
                // have lost every digit that separates it from the max).
                if z[j] == f64::NEG_INFINITY || inf > 0 {
                    let u = if want == 0.0 {
                        0.0
                    } else {
                        C_ULPS * ulp_f32(want)
                    };
                    assert!(
                        (got - want).abs() <= u,
                        "{ctx}: row {r} y[{j}] = {got:e}, want {want:e}"
                    );
                    continue;
                }
                let u = ulp_f32(want);
                let bound = C_ULPS + (z[j] - m).abs() + (d[j] + dmax).exp_m1() * 2f64.powi(24);
                let flushed = got < 2.0 * MIN_NORMAL && want - bound * u < 2.0 * MIN_NORMAL;
                assert!(
                    (got - want).abs() <= bound * u || flushed,
                    "{ctx}: row {r} y[{j}] = {got:e}, want {want:e} (bound {bound:.1} ULP)"
                );
            }
        }
    }
}
