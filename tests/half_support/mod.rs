//! Shared helpers of the half-precision tests (`tests/half.rs`,
//! `tests/half_no_alloc.rs`): the element types as the tests see them
//! ([`Ty`]: value conversions, bit patterns, the output type's ULP and
//! limits), the engines (every dispatched backend through the public API,
//! and the portable 16-lane kernel through `Target::softmax_rows_elems`),
//! and the per-element checkers of the half-precision bound.
//!
//! The bound (per element, `r_i` the f64 reference of the *widened* input,
//! `O` the output type): softmax `|y_i − r_i| ≤ ½·ulp_O(r_i) + (4 + |x_i −
//! m|)·ulp_f32(r_i)`, i.e. the f32 bound plus the one rounding to `O`;
//! log-softmax the f32 bound of `tests/common` plus `½·ulp_O(r_i)`.
#![allow(dead_code)]

use crate::common::{self, RowClass};
use half::{bf16, f16};
use simd_softmax::{Backend, Element, Error, Softmax};
use simd_softmax_kernels::convert::Format;
use simd_softmax_kernels::testing::Target;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// An element type as the tests handle it.
pub trait Ty: Element + Copy + Default + std::fmt::Debug {
    const FORMAT: Format;
    /// `v` rounded to the type (to nearest even, `half`'s conversion).
    fn from_f32(v: f32) -> Self;
    /// The value, exactly.
    fn to_f32(self) -> f32;
    /// The bit pattern (zero-extended).
    fn to_bits32(self) -> u32;
    /// The value with bit pattern `b` (truncated to the type's width).
    fn from_bits32(b: u32) -> Self;
    /// The largest finite value.
    const MAX: f32;
}

impl Ty for f32 {
    const FORMAT: Format = Format::F32;
    const MAX: f32 = f32::MAX;
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn to_bits32(self) -> u32 {
        self.to_bits()
    }
    fn from_bits32(b: u32) -> f32 {
        f32::from_bits(b)
    }
}

impl Ty for f16 {
    const FORMAT: Format = Format::F16;
    const MAX: f32 = 65504.0;
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn to_bits32(self) -> u32 {
        self.to_bits() as u32
    }
    fn from_bits32(b: u32) -> f16 {
        f16::from_bits(b as u16)
    }
}

impl Ty for bf16 {
    const FORMAT: Format = Format::Bf16;
    const MAX: f32 = 3.389_531_4e38;
    fn from_f32(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn to_bits32(self) -> u32 {
        self.to_bits() as u32
    }
    fn from_bits32(b: u32) -> bf16 {
        bf16::from_bits(b as u16)
    }
}

/// `a -> b`, e.g. `f16->bf16`.
pub fn pair_name<I: Ty, O: Ty>() -> String {
    format!("{}->{}", I::FORMAT.name(), O::FORMAT.name())
}

/// `ulp_O(r)`: f16 `2^(e−10)` with `e = ⌊log2 |r|⌋` clamped at −14 (the
/// subnormal ULP 2^-24); bf16 `2^(e−7)` with `e` clamped at −126; f32
/// `common::ulp_f32`.
pub fn ulp_of(f: Format, r: f64) -> f64 {
    let (mant, emin) = match f {
        Format::F32 => return common::ulp_f32(r),
        Format::F16 => (10, -14),
        Format::Bf16 => (7, -126),
    };
    let a = r.abs();
    let e = if a == 0.0 || !a.is_finite() {
        emin
    } else {
        (((a.to_bits() >> 52) & 0x7ff) as i32 - 1023).max(emin)
    };
    2f64.powi(e - mant)
}

/// The smallest positive normal of the format.
pub fn min_normal(f: Format) -> f64 {
    match f {
        Format::F16 => 2f64.powi(-14),
        _ => common::MIN_NORMAL,
    }
}

/// The magnitude from which round-to-nearest gives `±∞` in the format
/// (halfway between the largest finite value and the next power of two).
pub fn overflow_threshold(f: Format) -> f64 {
    match f {
        Format::F32 => (2.0 - 2f64.powi(-24)) * 2f64.powi(127),
        Format::F16 => 65520.0,
        Format::Bf16 => (2.0 - 2f64.powi(-8)) * 2f64.powi(127),
    }
}

/// Whether the bit pattern is a NaN of the format with the quiet bit set.
pub fn is_quiet_nan(f: Format, b: u32) -> bool {
    match f {
        Format::F32 => b & 0x7fc0_0000 == 0x7fc0_0000 && b & 0x7fff_ffff > 0x7f80_0000,
        Format::F16 => b & 0x7e00 == 0x7e00,
        Format::Bf16 => b & 0x7fc0 == 0x7fc0,
    }
}

/// What checking one output row found.
#[derive(Default, Clone, Debug)]
pub struct Rep {
    /// Max `|y − r| / ulp_O(r)` over the finite, unflushed elements.
    pub max_ulp: f64,
    /// Max `|y − r| / bound` (≤ 1 passes).
    pub max_ratio: f64,
    pub elems: usize,
    pub violations: usize,
    pub first: Vec<String>,
}

impl Rep {
    pub fn fail(&mut self, msg: String) {
        self.violations += 1;
        if self.first.len() < 4 {
            self.first.push(msg);
        }
    }

    pub fn merge(&mut self, o: &Rep, ctx: &str) {
        self.max_ulp = self.max_ulp.max(o.max_ulp);
        self.max_ratio = self.max_ratio.max(o.max_ratio);
        self.elems += o.elems;
        self.violations += o.violations;
        for m in &o.first {
            if self.first.len() < 6 {
                self.first.push(format!("{ctx}: {m}"));
            }
        }
    }

    fn error(&mut self, d: f64, ulp_o: f64, bound: f64) {
        if d.is_finite() {
            self.max_ulp = self.max_ulp.max(d / ulp_o);
            self.max_ratio = self.max_ratio.max(d / bound);
        }
    }
}

/// NaN in a NaN row: every output a quiet NaN of the output format.
fn check_nan<O: Ty>(y: &[O], rep: &mut Rep) {
    for (i, v) in y.iter().enumerate() {
        if !is_quiet_nan(O::FORMAT, v.to_bits32()) {
            rep.fail(format!(
                "NaN row: y[{i}] bits {:#x}, want a quiet NaN",
                v.to_bits32()
            ));
        }
    }
}

/// Checks `y = softmax(x)` (`x` the widened input, `r` its f64 reference):
/// NaN row → quiet NaNs; fully masked → 0; `k` entries `+∞` → `1/k` (f32
/// budget plus the rounding to `O`) there and exactly 0 elsewhere;
/// ordinary rows: `−∞` → exactly 0, else the half-precision bound, or 0
/// where the result lies below the output type's smallest normal.
pub fn check_softmax<O: Ty>(x: &[f32], r: &[f64], y: &[O]) -> Rep {
    assert_eq!(x.len(), y.len());
    let f = O::FORMAT;
    let mut rep = Rep {
        elems: y.len(),
        ..Rep::default()
    };
    match common::row_class(x) {
        RowClass::Nan => check_nan(y, &mut rep),
        RowClass::AllNegInf => {
            for (i, v) in y.iter().enumerate() {
                if v.to_f32() != 0.0 {
                    rep.fail(format!(
                        "fully masked row: y[{i}] = {:e}, want 0",
                        v.to_f32()
                    ));
                }
            }
        }
        RowClass::PosInf(k) => {
            let share = 1.0 / k as f64;
            let bound = 0.5 * ulp_of(f, share) + common::C_ULPS * common::ulp_f32(share);
            for (i, (&xi, v)) in x.iter().zip(y).enumerate() {
                let yi = v.to_f32();
                if xi == f32::INFINITY {
                    let d = (yi as f64 - share).abs();
                    rep.error(d, ulp_of(f, share), bound);
                    if d.is_nan() || d > bound {
                        rep.fail(format!("+inf row (k={k}): y[{i}] = {yi:e}, want 1/k"));
                    }
                } else if yi != 0.0 {
                    rep.fail(format!(
                        "+inf row (k={k}): y[{i}] = {yi:e} (x = {xi:e}), want 0"
                    ));
                }
            }
        }
        RowClass::Ordinary => {
            let m = common::row_max(x);
            for (i, ((&xi, &ri), v)) in x.iter().zip(r).zip(y).enumerate() {
                let yi = v.to_f32();
                if xi == f32::NEG_INFINITY {
                    if yi != 0.0 {
                        rep.fail(format!("masked x[{i}]: y = {yi:e}, want exactly 0"));
                    }
                    continue;
                }
                let bound =
                    0.5 * ulp_of(f, ri) + common::softmax_bound_ulps(xi, m) * common::ulp_f32(ri);
                let d = (yi as f64 - ri).abs();
                let flushed = yi == 0.0 && ri - bound < min_normal(f);
                if d.is_nan() || (d > bound && !flushed) {
                    rep.fail(format!(
                        "y[{i}] = {yi:e} (bits {:#x}), ref {ri:e}: {:.2} ULP_{} > bound {:.2} (x = {xi:e}, max = {m:e})",
                        v.to_bits32(),
                        d / ulp_of(f, ri),
                        f.name(),
                        bound / ulp_of(f, ri)
                    ));
                }
                if !flushed {
                    rep.error(d, ulp_of(f, ri), bound);
                }
            }
        }
    }
    rep
}

/// Checks `y = log_softmax(x)` against `r` (`common::log_softmax_ref` of
/// the widened input): NaN → quiet NaN; `r = −∞` → exactly `−∞`; an
/// infinite `y` only where `|r|` plus the bound reaches the output
/// format's overflow threshold (the f32 result rounds to `±∞` there);
/// otherwise `common::log_softmax_bound` plus the error inherited through
/// `ln Σ`, plus `½·ulp_O(r_i)` (special rows: `4·ulp_f32(r)` plus it).
pub fn check_log_softmax<O: Ty>(x: &[f32], r: &[f64], y: &[O]) -> Rep {
    assert_eq!(x.len(), y.len());
    let f = O::FORMAT;
    let mut rep = Rep {
        elems: y.len(),
        ..Rep::default()
    };
    let class = common::row_class(x);
    if class == RowClass::Nan {
        check_nan(y, &mut rep);
        return rep;
    }
    let m = common::row_max(x);
    let inherited = match class {
        RowClass::Ordinary => common::inherited_subtraction_error(x, r.iter().map(|l| l.exp())),
        _ => 0.0,
    };
    for (i, ((&xi, &ri), v)) in x.iter().zip(r).zip(y).enumerate() {
        let yi = v.to_f32();
        if ri == f64::NEG_INFINITY {
            if yi != f32::NEG_INFINITY {
                rep.fail(format!("y[{i}] = {yi:e}, want -inf (x = {xi:e})"));
            }
            continue;
        }
        let bound = 0.5 * ulp_of(f, ri)
            + match class {
                RowClass::Ordinary => common::log_softmax_bound(ri, xi, m) + inherited,
                _ => common::C_ULPS * common::ulp_f32(ri),
            };
        if yi.is_infinite() {
            let reaches = ri.abs() + bound >= overflow_threshold(f);
            if !(reaches && (yi < 0.0) == (ri < 0.0)) {
                rep.fail(format!(
                    "y[{i}] = {yi:e}, ref {ri:e} (x = {xi:e}, max = {m:e})"
                ));
            }
            continue;
        }
        let d = (yi as f64 - ri).abs();
        if d.is_nan() || d > bound {
            rep.fail(format!(
                "y[{i}] = {yi:e} (bits {:#x}), ref {ri:e}: |y-r| = {d:e} > bound {bound:e} ({:.2} ULP_{}; x = {xi:e}, max = {m:e})",
                v.to_bits32(),
                d / ulp_of(f, ri),
                f.name()
            ));
        }
        rep.error(d, ulp_of(f, ri), bound);
    }
    rep
}

/// One engine: a dispatched backend through the public API, or a kernel
/// target through `Target::softmax_rows_elems` (no in-place or logsumexp
/// entry there).
pub enum Eng {
    Api(Softmax),
    Tgt(Target),
}

pub struct Engine {
    pub name: String,
    pub eng: Eng,
}

impl Engine {
    /// `softmax_rows` / `log_softmax_rows`.
    pub fn rows<I: Ty, O: Ty>(&self, x: &[I], y: &mut [O], w: usize, log: bool) {
        match &self.eng {
            Eng::Api(sm) if log => sm.log_softmax_rows(x, y, w).unwrap(),
            Eng::Api(sm) => sm.softmax_rows(x, y, w).unwrap(),
            Eng::Tgt(t) => assert!(t.softmax_rows_elems(I::elems(x), O::elems_mut(y), w, log)),
        }
    }

    /// `softmax` / `log_softmax` of one row.
    pub fn single<I: Ty, O: Ty>(&self, x: &[I], y: &mut [O], log: bool) {
        match &self.eng {
            Eng::Api(sm) if log => sm.log_softmax(x, y).unwrap(),
            Eng::Api(sm) => sm.softmax(x, y).unwrap(),
            Eng::Tgt(_) => self.rows(x, y, x.len().max(1), log),
        }
    }

    /// In place, one row (`w = None`) or rows of `w`; `false` where the
    /// engine has no in-place entry.
    pub fn in_place<E: Ty>(&self, d: &mut [E], w: Option<usize>, log: bool) -> bool {
        let Eng::Api(sm) = &self.eng else {
            return false;
        };
        match (w, log) {
            (None, false) => sm.softmax_in_place(d),
            (None, true) => sm.log_softmax_in_place(d),
            (Some(w), false) => sm.softmax_rows_in_place(d, w).unwrap(),
            (Some(w), true) => sm.log_softmax_rows_in_place(d, w).unwrap(),
        }
        true
    }

    /// `logsumexp`; `None` where the engine has no entry for it.
    pub fn logsumexp<I: Ty>(&self, x: &[I]) -> Option<f32> {
        match &self.eng {
            Eng::Api(sm) => Some(sm.logsumexp(x)),
            Eng::Tgt(_) => None,
        }
    }
}

/// Every backend of `Backend::ALL` the CPU runs, then the portable 16-lane
/// kernel (x86-64, not in quick mode); prints what ran and what was
/// skipped, and why.
pub fn engines(test: &str) -> Vec<Engine> {
    let mut ran = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for &b in Backend::ALL {
        match Softmax::with_backend(b) {
            Ok(sm) => ran.push(Engine {
                name: b.name().to_string(),
                eng: Eng::Api(sm),
            }),
            Err(Error::UnsupportedBackend { reason, .. }) => {
                skipped.push((b.name().to_string(), reason.to_string()))
            }
            Err(e) => panic!("with_backend({b}): {e:?}"),
        }
    }
    let t = Target::Portable16;
    if common::quick() {
        let why = format!("{} is set (quick mode)", common::QUICK_ENV);
        skipped.push((t.name().to_string(), why));
    } else if t.available() {
        ran.push(Engine {
            name: t.name().to_string(),
            eng: Eng::Tgt(t),
        });
    } else {
        skipped.push((
            t.name().to_string(),
            "not in this build (x86-64 only)".to_string(),
        ));
    }
    let names: Vec<&str> = ran.iter().map(|e| e.name.as_str()).collect();
    let mut s = format!("[{test}] ran: {}", names.join(", "));
    for (n, why) in &skipped {
        let _ = write!(s, "\n  {n}: skipped, {why}");
    }
    eprintln!("{s}");
    assert!(!ran.is_empty(), "[{test}] no engine ran");
    ran
}

/// Max errors per (engine, pair, function), and every violation.
#[derive(Default)]
pub struct Table {
    cells: BTreeMap<(String, String, &'static str), Rep>,
}

impl Table {
    pub fn add(&mut self, engine: &str, pair: &str, what: &'static str, ctx: &str, rep: &Rep) {
        let key = (engine.to_string(), pair.to_string(), what);
        self.cells.entry(key).or_default().merge(rep, ctx);
    }

    pub fn print(&self, title: &str) {
        let mut s = format!("\n== {title}: max error in ULP of the output type ==\n");
        let _ = writeln!(
            s,
            "{:<12} {:<11} {:<22} {:>10} {:>10} {:>11} {:>6}",
            "engine", "pair", "function", "elements", "max ULP_O", "max/bound", "fails"
        );
        for ((e, p, w), c) in &self.cells {
            let _ = writeln!(
                s,
                "{e:<12} {p:<11} {w:<22} {:>10} {:>10.3} {:>11.3} {:>6}",
                c.elems, c.max_ulp, c.max_ratio, c.violations
            );
        }
        eprintln!("{s}");
    }

    pub fn assert_clean(&self, title: &str) {
        let n: usize = self.cells.values().map(|c| c.violations).sum();
        if n > 0 {
            let mut msg = format!("{title}: {n} violations; first ones:\n");
            for ((e, p, w), c) in &self.cells {
                for m in &c.first {
                    let _ = writeln!(msg, "  {e} {p} {w}: {m}");
                }
            }
            panic!("{msg}");
        }
        assert!(!self.cells.is_empty(), "{title}: nothing was checked");
    }
}

/// Calls `$f::<I, O>($args)` for every (input, output) pair of {f32, f16,
/// bf16} except f32 → f32.
macro_rules! each_pair {
    ($f:ident ( $($a:expr),* )) => {{
        $f::<f32, half::f16>($($a),*);
        $f::<f32, half::bf16>($($a),*);
        $f::<half::f16, f32>($($a),*);
        $f::<half::f16, half::f16>($($a),*);
        $f::<half::f16, half::bf16>($($a),*);
        $f::<half::bf16, f32>($($a),*);
        $f::<half::bf16, half::f16>($($a),*);
        $f::<half::bf16, half::bf16>($($a),*);
    }};
}
