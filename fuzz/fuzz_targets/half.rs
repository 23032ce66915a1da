//! The half-precision pairs: softmax, log_softmax, their `*_rows` and
//! in-place forms and logsumexp with `f16`/`bf16` inputs and outputs, on
//! every backend. Each half call must equal, bit for bit, the f32 call on
//! the widened input with its output rounded once (`half`'s `from_f32`),
//! and follow the special-value rules in the output type (NaN row → quiet
//! NaNs, `+∞` entries share the mass, masks give exactly 0 / `−∞`), without
//! writing outside its output slice.
//!
//! An input is: a byte for the (input, output) pair and the value mode, a
//! byte of flags (slice offsets, long rows), two bytes of row length, a
//! byte for the `*_rows` row length, then the row's bit patterns in the
//! input type (raw, so NaN payloads, infinities and subnormals occur; or
//! with the exponent folded into a moderate range, so that f32 and bf16
//! rows are not all one-hot). `replay half PATH...` runs the same checks.
#![no_main]

use simd_softmax::{Element, bf16, f16};
use simd_softmax_fuzz::engines;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));

/// Elements of sentinel on each side of every output slice.
const GUARD: usize = 4;

/// An element type as the checks see it.
trait Ty: Element + Copy + Default {
    /// Bytes per element of the encoded row.
    const BYTES: usize;
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
    fn bits(self) -> u32;
    fn from_bits(b: u32) -> Self;
    /// `b` with its exponent folded into a moderate range.
    fn fold(b: u32) -> u32;
    /// Whether `b` is a quiet NaN of the type.
    fn quiet_nan(b: u32) -> bool;
}

impl Ty for f32 {
    const BYTES: usize = 4;
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn from_bits(b: u32) -> f32 {
        f32::from_bits(b)
    }
    fn fold(b: u32) -> u32 {
        // Exponents 2^-8 .. 2^7.
        (b & 0x807f_ffff) | ((119 + (b >> 23 & 0xff) % 16) << 23)
    }
    fn quiet_nan(b: u32) -> bool {
        b & 0x7fc0_0000 == 0x7fc0_0000 && b & 0x7fff_ffff > 0x7f80_0000
    }
}

impl Ty for f16 {
    const BYTES: usize = 2;
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn from_bits(b: u32) -> f16 {
        f16::from_bits(b as u16)
    }
    fn fold(b: u32) -> u32 {
        // Exponents 2^-8 .. 2^7 (f16 bias 15).
        (b & 0x83ff) | ((7 + (b >> 10 & 0x1f) % 16) << 10)
    }
    fn quiet_nan(b: u32) -> bool {
        b & 0x7e00 == 0x7e00
    }
}

impl Ty for bf16 {
    const BYTES: usize = 2;
    fn from_f32(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn from_bits(b: u32) -> bf16 {
        bf16::from_bits(b as u16)
    }
    fn fold(b: u32) -> u32 {
        (b & 0x807f) | ((119 + (b >> 7 & 0xff) % 16) << 7)
    }
    fn quiet_nan(b: u32) -> bool {
        b & 0x7fc0 == 0x7fc0
    }
}

/// The header and the row.
struct Case<'a> {
    n: usize,
    row_len: usize,
    off: usize,
    folded: bool,
    pool: &'a [u8],
}

/// `n` elements of `I` from the pool's bytes (cycled; zeros when empty).
fn values<I: Ty>(c: &Case) -> Vec<I> {
    (0..c.n)
        .map(|i| {
            let mut b = 0u32;
            for k in 0..I::BYTES {
                let j = i * I::BYTES + k;
                let byte = if c.pool.is_empty() {
                    0
                } else {
                    c.pool[j % c.pool.len()]
                };
                b |= (byte as u32) << (8 * k);
            }
            I::from_bits(if c.folded { I::fold(b) } else { b })
        })
        .collect()
}

pub fn check(data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let (sel, flags) = (byte(0), byte(1));
    let len = u16::from_le_bytes([byte(2), byte(3)]) as usize;
    // Mostly up to 4096 (the tile); now and then long rows (tile by tile).
    let n = if flags & 0x80 != 0 && flags & 0x40 != 0 {
        len * 3
    } else {
        len % 4097
    };
    let row_len = {
        let divs: Vec<usize> = (1..=n.min(300)).filter(|d| n % d == 0).collect();
        match divs.len() {
            0 => 1,
            k => divs[byte(4) as usize % k].max(if byte(4) & 0x80 != 0 { n } else { 1 }),
        }
    };
    let case = Case {
        n,
        row_len: if n == 0 { 1 } else { row_len },
        off: (flags & 3) as usize,
        folded: sel & 0x10 != 0,
        pool: data.get(5..).unwrap_or(&[]),
    };
    match sel % 8 {
        0 => pair::<f32, f16>(&case),
        1 => pair::<f32, bf16>(&case),
        2 => pair::<f16, f32>(&case),
        3 => pair::<f16, f16>(&case),
        4 => pair::<f16, bf16>(&case),
        5 => pair::<bf16, f32>(&case),
        6 => pair::<bf16, f16>(&case),
        _ => pair::<bf16, bf16>(&case),
    }
}

/// An output buffer `[sentinel × (off + GUARD)][n][sentinel × GUARD]`.
fn guarded<O: Ty>(n: usize, off: usize) -> Vec<O> {
    vec![O::from_bits(0x7fa5_7fa5); off + GUARD + n + GUARD]
}

fn unguard<O: Ty>(b: &[O], off: usize, what: &str) -> Vec<u32> {
    let s = off + GUARD;
    let n = b.len() - s - GUARD;
    for (i, v) in b.iter().enumerate() {
        if (i < s || i >= s + n) && v.bits() != O::from_bits(0x7fa5_7fa5).bits() {
            panic!(
                "{what}: wrote outside the output slice at {i} (slice [{s}, {}))",
                s + n
            );
        }
    }
    b[s..s + n].iter().map(|v| v.bits()).collect()
}

fn pair<I: Ty, O: Ty>(c: &Case) {
    let x: Vec<I> = values(c);
    let xw: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
    let (n, w, off) = (c.n, c.row_len, c.off);
    let round = |y: &[f32]| -> Vec<u32> { y.iter().map(|&v| O::from_f32(v).bits()).collect() };
    let same = std::any::TypeId::of::<I>() == std::any::TypeId::of::<O>();
    for sm in engines() {
        let name = sm.backend().name();
        let what = |f: &str| format!("{f} {}->{} [{name}, n={n}, row_len={w}]", I::NAME, O::NAME);
        for log in [false, true] {
            // The f32 calls on the widened input: the expected bits.
            let mut y32 = vec![0f32; n];
            let mut r32 = vec![0f32; n];
            if log {
                sm.log_softmax(&xw, &mut y32).unwrap();
                sm.log_softmax_rows(&xw, &mut r32, w).unwrap();
            } else {
                sm.softmax(&xw, &mut y32).unwrap();
                sm.softmax_rows(&xw, &mut r32, w).unwrap();
            }
            let (want, want_rows) = (round(&y32), round(&r32));
            let f = if log { "log_softmax" } else { "softmax" };

            let mut yb = guarded::<O>(n, off);
            let s = off + GUARD;
            if log {
                sm.log_softmax(&x, &mut yb[s..s + n]).unwrap();
            } else {
                sm.softmax(&x, &mut yb[s..s + n]).unwrap();
            }
            let got = unguard(&yb, off, &what(f));
            compare(&got, &want, &xw, &what(f));
            special::<O>(&xw, n.max(1), &got, log, &what(f));

            let mut yb = guarded::<O>(n, off);
            if log {
                sm.log_softmax_rows(&x, &mut yb[s..s + n], w).unwrap();
            } else {
                sm.softmax_rows(&x, &mut yb[s..s + n], w).unwrap();
            }
            let fr = format!("{f}_rows");
            let got = unguard(&yb, off, &what(&fr));
            compare(&got, &want_rows, &xw, &what(&fr));
            special::<O>(&xw, w, &got, log, &what(&fr));

            if same {
                // In place: the input type is the output type.
                let mut d: Vec<O> = x.iter().map(|v| O::from_bits(v.bits())).collect();
                let mut e = d.clone();
                if log {
                    sm.log_softmax_in_place(&mut d);
                    sm.log_softmax_rows_in_place(&mut e, w).unwrap();
                } else {
                    sm.softmax_in_place(&mut d);
                    sm.softmax_rows_in_place(&mut e, w).unwrap();
                }
                let bits = |v: &[O]| -> Vec<u32> { v.iter().map(|v| v.bits()).collect() };
                compare(&bits(&d), &want, &xw, &what(&format!("{f}_in_place")));
                compare(
                    &bits(&e),
                    &want_rows,
                    &xw,
                    &what(&format!("{f}_rows_in_place")),
                );
            }
        }
        // logsumexp of the input type: the f32 call's bits.
        let (a, b) = (sm.logsumexp(&x), sm.logsumexp(&xw));
        assert!(
            a.to_bits() == b.to_bits(),
            "{}: {a:e} vs the f32 call's {b:e}",
            what("logsumexp")
        );
    }
}

fn compare(got: &[u32], want: &[u32], xw: &[f32], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: element {i} bits {:#x}, want {:#x} (the f32 result rounded once; x = {:e})",
            got[i], want[i], xw[i]
        );
    }
}

/// The special-value rules, per row of `w`, in the output type: a NaN row
/// gives quiet NaNs; `+∞` entries share the mass (`1/k` within the f32
/// budget plus one rounding), everything else exactly 0 (log: `−∞`); a
/// fully masked row gives 0 (log: `−∞`); a masked entry of an ordinary row
/// exactly 0 (log: `−∞`).
fn special<O: Ty>(xw: &[f32], w: usize, y: &[u32], log: bool, what: &str) {
    for (r, (x, y)) in xw.chunks(w).zip(y.chunks(w)).enumerate() {
        let yv: Vec<f32> = y.iter().map(|&b| O::from_bits(b).to_f32()).collect();
        let zero = if log { f32::NEG_INFINITY } else { 0.0 };
        if x.iter().any(|v| v.is_nan()) {
            for (i, &b) in y.iter().enumerate() {
                assert!(
                    O::quiet_nan(b),
                    "{what}: NaN row {r}: y[{i}] bits {b:#x}, want quiet NaN"
                );
            }
            continue;
        }
        let k = x.iter().filter(|&&v| v == f32::INFINITY).count();
        if k > 0 {
            let share = 1.0 / k as f64;
            let want = if log { -(k as f64).ln() } else { share };
            for (i, (&xi, &yi)) in x.iter().zip(&yv).enumerate() {
                if xi == f32::INFINITY {
                    // 4 f32 ULPs, then the rounding to the output type
                    // (at most 2^-8 relative, bf16).
                    let tol = want.abs() * (4.0 * 2f64.powi(-23) + 2f64.powi(-8));
                    assert!(
                        (yi as f64 - want).abs() <= tol,
                        "{what}: +inf row {r} (k={k}): y[{i}] = {yi:e}, want {want:e}"
                    );
                } else {
                    assert!(
                        yi == zero,
                        "{what}: +inf row {r}: y[{i}] = {yi:e}, want {zero}"
                    );
                }
            }
            continue;
        }
        for (i, (&xi, &yi)) in x.iter().zip(&yv).enumerate() {
            if xi == f32::NEG_INFINITY {
                assert!(
                    yi == zero,
                    "{what}: row {r}: masked y[{i}] = {yi:e}, want {zero}"
                );
            }
        }
    }
}
