//! The attention softmax (`AttentionSoftmax`), on every dispatched backend:
//!
//! 1. With no option set it is `softmax_rows`, bit for bit (f32 and half).
//! 2. Every option alone and in combination, at row lengths that reach
//!    every regime (short rows, the pipeline, rows longer than a tile with
//!    and without a sink, into f32 and half outputs), against an f64
//!    reference of the whole formula: within the softmax bound on the
//!    keys plus the keys' own rounding (the scale, the softcap's tanh, the
//!    mask's multiply-add; docs/ACCURACY.md derives it). Prints the max
//!    error per option and backend.
//! 3. Special values: sinks of `−∞` (no sink, same bits), `+∞` (zeros)
//!    and NaN (a NaN row); fully masked rows (zeros, with or without a
//!    sink); `−∞` in masks; `+∞` scores; NaN scores outside the causal
//!    limit or the window are never read.
//! 4. Strides: the gaps of the output are never written, the last rows
//!    need no padding; broadcast and per-head masks; f16/bf16 masks.
//! 5. ALiBi slopes from `max_bias` against ggml's formula for 1–64 heads,
//!    and the same bits as the slopes passed explicitly.
//! 6. Every error, with the output untouched.

mod common;

use common::{EPS, MIN_NORMAL, dispatched, quick, rng, ulp_f32};
use rand::RngExt;
use simd_softmax::{AttentionSoftmax, Element, Error, Softmax, bf16, f16};
use std::collections::BTreeMap;

/// One attention case: shape and options (the mask and slopes owned).
#[derive(Clone, Default)]
struct Case {
    heads: usize,
    q_len: usize,
    kv_len: usize,
    scale: Option<f32>,
    cap: Option<f32>,
    /// The mask, `[q_len, kv_len]` or `[heads, q_len, kv_len]`, in f32.
    mask: Option<Vec<f32>>,
    per_head: bool,
    /// The mask's element type: 0 f32, 1 f16, 2 bf16.
    mask_ty: u8,
    slopes: Option<Vec<f32>>,
    max_bias: Option<f32>,
    causal: Option<usize>,
    window: Option<usize>,
    sinks: Option<Vec<f32>>,
}

impl Case {
    fn new(heads: usize, q_len: usize, kv_len: usize) -> Case {
        Case {
            heads,
            q_len,
            kv_len,
            ..Case::default()
        }
    }

    /// The mask as the call sees it (rounded to its element type).
    fn mask_f32(&self) -> Option<Vec<f32>> {
        self.mask.as_ref().map(|m| match self.mask_ty {
            1 => m.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
            2 => m.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
            _ => m.clone(),
        })
    }

    fn slope(&self, h: usize) -> f64 {
        if let Some(s) = &self.slopes {
            return s[h] as f64;
        }
        match self.max_bias {
            None => 1.0,
            Some(b) => {
                let n = 1usize << (usize::BITS - 1 - self.heads.leading_zeros());
                let (m0, m1) = (
                    2f64.powf(-(b as f64) / n as f64),
                    2f64.powf(-(b as f64) / (2 * n) as f64),
                );
                if h < n {
                    m0.powi(h as i32 + 1)
                } else {
                    m1.powi(2 * (h - n) as i32 + 1)
                }
            }
        }
    }

    fn extent(&self, q: usize) -> (usize, usize) {
        let limit = q + self.causal.unwrap_or(0) + 1;
        let hi = if self.causal.is_some() {
            limit.min(self.kv_len)
        } else {
            self.kv_len
        };
        let lo = self.window.map_or(0, |w| limit.saturating_sub(w).min(hi));
        (lo, hi)
    }

    /// Runs the case on `sm` from f32 scores (converted to `I`) into `O`,
    /// the output widened back to f32.
    fn run<I: Element + FromF32, O: Element + FromF32>(&self, sm: &Softmax, s: &[f32]) -> Vec<f32> {
        let x: Vec<I> = s.iter().map(|&v| I::from_f32(v)).collect();
        let mut y = vec![O::from_f32(-7.0); s.len()];
        let m16: Vec<f16>;
        let mb16: Vec<bf16>;
        let mut a = sm.attention();
        if let Some(v) = self.scale {
            a = a.scale(v);
        }
        if let Some(v) = self.cap {
            a = a.softcap(v);
        }
        if let Some(m) = &self.mask {
            a = match (self.mask_ty, self.per_head) {
                (1, ph) => {
                    m16 = m.iter().map(|&v| f16::from_f32(v)).collect();
                    if ph { a.head_mask(&m16) } else { a.mask(&m16) }
                }
                (2, ph) => {
                    mb16 = m.iter().map(|&v| bf16::from_f32(v)).collect();
                    if ph {
                        a.head_mask(&mb16)
                    } else {
                        a.mask(&mb16)
                    }
                }
                (_, true) => a.head_mask(m),
                (_, false) => a.mask(m),
            };
        }
        if let Some(v) = &self.slopes {
            a = a.alibi_slopes(v);
        }
        if let Some(b) = self.max_bias {
            a = a.alibi_max_bias(b);
        }
        if let Some(o) = self.causal {
            a = a.causal(o);
        }
        if let Some(w) = self.window {
            a = a.window(w);
        }
        if let Some(v) = &self.sinks {
            a = a.sinks(v);
        }
        a.run(&x, &mut y, self.heads, self.q_len, self.kv_len)
            .expect("valid arguments refused");
        y.iter().map(|v| v.to_f32()).collect()
    }

    /// The f64 reference of row `(h, q)` and each entry's error allowance
    /// in ULPs beyond the softmax bound (the keys' rounding), or `None`
    /// per entry for a NaN row.
    fn reference(&self, s: &[f32], h: usize, q: usize) -> (Vec<f64>, Vec<f64>) {
        let kv = self.kv_len;
        let row = &s[(h * self.q_len + q) * kv..][..kv];
        let mask = self.mask_f32();
        let mrow = mask.as_ref().map(|m| {
            let r = if self.per_head { h * self.q_len + q } else { q };
            m[r * kv..][..kv].to_vec()
        });
        let (lo, hi) = self.extent(q);
        let slope = self.slope(h);
        let sink = self
            .sinks
            .as_ref()
            .map_or(f64::NEG_INFINITY, |v| v[h] as f64);
        let scale = self.scale.unwrap_or(1.0) as f64;
        // Keys, and the bound on each key's rounding in the kernel (in
        // units of 2^-24): the scale's product, the cap's evaluation
        // (TANH_ULPS relative to the capped value), the mask's fused
        // multiply-add (the sum and the slope·mask product's magnitude).
        let mut z = vec![f64::NEG_INFINITY; kv];
        let mut d = vec![0.0f64; kv];
        for j in lo..hi {
            let t = scale * row[j] as f64;
            let (mut v, mut e) = (t, t.abs());
            if let Some(c) = self.cap {
                let c = c as f64;
                v = c * (t / c).tanh();
                e = TANH_ULPS * v.abs();
            }
            if let Some(m) = &mrow {
                let b = slope * m[j] as f64;
                let zz = v + b;
                // A slope rounded to f32 (max_bias) adds one more rounding
                // of the product.
                e += zz.abs() + 2.0 * b.abs();
                v = zz;
            }
            z[j] = v;
            d[j] = e * 2f64.powi(-24);
        }
        let ext = &z[lo..hi];
        let nan = ext.iter().any(|v| v.is_nan()) || sink.is_nan();
        if nan {
            return (vec![f64::NAN; kv], vec![0.0; kv]);
        }
        let inf =
            ext.iter().filter(|&&v| v == f64::INFINITY).count() + (sink == f64::INFINITY) as usize;
        if inf > 0 {
            let r = z
                .iter()
                .map(|&v| {
                    if v == f64::INFINITY {
                        1.0 / inf as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            return (r, vec![0.0; kv]);
        }
        let m = ext.iter().copied().fold(sink, f64::max);
        if m == f64::NEG_INFINITY {
            return (vec![0.0; kv], vec![0.0; kv]);
        }
        let e: Vec<f64> = z.iter().map(|&v| (v - m).exp()).collect();
        let total: f64 = e.iter().sum::<f64>() + (sink - m).exp();
        let dmax = d.iter().copied().fold(0.0, f64::max);
        let r: Vec<f64> = e.iter().map(|v| v / total).collect();
        // The allowance: the softmax bound on the computed keys (C + |z − m|)
        // plus the keys' errors, e^(d_j + max d) − 1 relative, in ULPs (<
        // 2^24 of them per unit of relative error).
        let allow = z
            .iter()
            .zip(&d)
            .map(|(&zj, &dj)| {
                common::C_ULPS + (zj - m).abs() + (dj + dmax).exp_m1() * 2f64.powi(24)
            })
            .collect();
        (r, allow)
    }

    /// Checks `y` (widened) against the reference; returns the max error in
    /// ULPs and the max ratio to the bound. `out_rel`: the output type's
    /// rounding, relative (0 for f32).
    fn check(&self, s: &[f32], y: &[f32], out_rel: f64, what: &str) -> (f64, f64) {
        // f16's subnormals (below 2^-14) are 2^-24 apart: half of that
        // absolute where the output is f16.
        let out_abs = if out_rel == 2f64.powi(-11) {
            2f64.powi(-25)
        } else {
            0.0
        };
        let (mut worst, mut ratio) = (0.0f64, 0.0f64);
        for h in 0..self.heads {
            for q in 0..self.q_len {
                let (r, allow) = self.reference(s, h, q);
                let yr = &y[(h * self.q_len + q) * self.kv_len..][..self.kv_len];
                for j in 0..self.kv_len {
                    let (v, rj) = (yr[j] as f64, r[j]);
                    if rj.is_nan() {
                        assert!(v.is_nan(), "{what}: row ({h},{q}) y[{j}] = {v:e}, want NaN");
                        continue;
                    }
                    if rj == 0.0 {
                        // Masked (or below f64's range, far below f32's).
                        assert!(v == 0.0, "{what}: row ({h},{q}) y[{j}] = {v:e}, want 0");
                        continue;
                    }
                    let u = ulp_f32(rj);
                    let bound = allow[j].max(common::C_ULPS) + (out_rel * rj + out_abs) / u;
                    let err = (v - rj).abs() / u;
                    let flushed = v < 2.0 * MIN_NORMAL && rj - bound * u < 2.0 * MIN_NORMAL;
                    assert!(
                        err <= bound || flushed,
                        "{what}: row ({h},{q}) y[{j}] = {v:e}, ref {rj:e}: {err:.2} ULP > {bound:.2}"
                    );
                    if !flushed && out_rel == 0.0 {
                        worst = worst.max(err);
                        ratio = ratio.max(err / bound);
                    }
                }
            }
        }
        (worst, ratio)
    }
}

/// The cap's evaluation error bound, relative to the capped value, in
/// units of 2^-24: `t/c` as `t·fl(1/c)` (two roundings, and the scale's
/// one, each at most the value's own size through `|x|·sech²x ≤
/// |tanh x|`), the tanh (its polynomial or `(1 − e)/(1 + e)`: at most 4),
/// the final product by `c` (1).
const TANH_ULPS: f64 = 3.0 + 4.0 + 1.0;

/// Conversion from f32 for the element types.
trait FromF32: Element {
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
}
impl FromF32 for f32 {
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
}
impl FromF32 for f16 {
    fn from_f32(v: f32) -> f16 {
        f16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}
impl FromF32 for bf16 {
    fn from_f32(v: f32) -> bf16 {
        bf16::from_f32(v)
    }
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

/// Scores as `engines.py` makes them: normal, σ = 4.
fn scores(n: usize, seed: u64) -> Vec<f32> {
    let mut g = rng(seed);
    (0..n)
        .map(|_| (common::normal(&mut g) * 4.0) as f32)
        .collect()
}

/// A padding mask: 2 % of the columns `−∞`, the others small offsets.
fn padding_mask(rows: usize, kv: usize, seed: u64) -> Vec<f32> {
    let mut g = rng(seed);
    let cols: Vec<bool> = (0..kv).map(|_| g.random::<f64>() < 0.02).collect();
    (0..rows * kv)
        .map(|i| {
            if cols[i % kv] {
                f32::NEG_INFINITY
            } else {
                (g.random::<f64>() - 0.5) as f32
            }
        })
        .collect()
}

/// ALiBi's position mask `−|i − j|` (query `i` at `q + offset`).
fn alibi_mask(q_len: usize, kv: usize) -> Vec<f32> {
    let off = kv.saturating_sub(q_len);
    (0..q_len * kv)
        .map(|i| -((i / kv + off) as f32 - (i % kv) as f32).abs())
        .collect()
}

/// The option sets every test runs, each named.
fn option_sets(heads: usize, q_len: usize, kv: usize, seed: u64) -> Vec<(&'static str, Case)> {
    let base = Case::new(heads, q_len, kv);
    let scale = Some(1.0 / 128f32.sqrt());
    let mut g = rng(seed ^ 0x5157);
    let sinks: Vec<f32> = (0..heads).map(|_| common::normal(&mut g) as f32).collect();
    let off = kv.saturating_sub(q_len);
    vec![
        (
            "scale",
            Case {
                scale,
                ..base.clone()
            },
        ),
        (
            "softcap",
            Case {
                scale,
                cap: Some(50.0),
                ..base.clone()
            },
        ),
        (
            "softcap 1",
            Case {
                cap: Some(1.0),
                ..base.clone()
            },
        ),
        (
            "mask f32",
            Case {
                scale,
                mask: Some(padding_mask(q_len, kv, seed)),
                ..base.clone()
            },
        ),
        (
            "mask f16",
            Case {
                scale,
                mask: Some(padding_mask(q_len, kv, seed)),
                mask_ty: 1,
                ..base.clone()
            },
        ),
        (
            "mask bf16 per head",
            Case {
                mask: Some(padding_mask(heads * q_len, kv, seed)),
                mask_ty: 2,
                per_head: true,
                ..base.clone()
            },
        ),
        (
            "alibi",
            Case {
                mask: Some(alibi_mask(q_len, kv)),
                max_bias: Some(8.0),
                ..base.clone()
            },
        ),
        (
            "causal",
            Case {
                scale,
                causal: Some(off),
                ..base.clone()
            },
        ),
        (
            "causal 0",
            Case {
                causal: Some(0),
                ..base.clone()
            },
        ),
        (
            "window",
            Case {
                scale,
                causal: Some(off),
                window: Some(5.max(kv / 3)),
                ..base.clone()
            },
        ),
        (
            "sinks",
            Case {
                scale,
                sinks: Some(sinks.clone()),
                ..base.clone()
            },
        ),
        (
            "window + sinks",
            Case {
                scale,
                causal: Some(off),
                window: Some(3),
                sinks: Some(sinks.clone()),
                ..base.clone()
            },
        ),
        (
            "all",
            Case {
                scale,
                cap: Some(20.0),
                mask: Some(padding_mask(q_len, kv, seed)),
                mask_ty: 1,
                slopes: Some((0..heads).map(|h| 0.5 + h as f32 / 8.0).collect()),
                causal: Some(off),
                window: Some(7.max(kv / 2)),
                sinks: Some(sinks),
                ..base.clone()
            },
        ),
    ]
}

/// Shapes reaching every path: short rows (grouped in a tile and alone),
/// the pipeline, rows filling a tile, rows longer than a tile.
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut v = vec![
        (2, 3, 1),
        (3, 5, 7),
        (2, 4, 16),
        (2, 3, 64),
        (2, 3, 100),
        (1, 2, 1000),
        (1, 2, 4095),
        (1, 2, 4096),
    ];
    v.push((2, 1, 4097));
    if !quick() {
        v.push((1, 2, 40_000));
    }
    v
}

#[test]
fn no_options_is_softmax_rows_bit_for_bit() {
    for sm in dispatched("attention: no options = softmax_rows") {
        for &(h, q, kv) in &shapes() {
            let s = scores(h * q * kv, kv as u64);
            let mut want = vec![0.0f32; s.len()];
            sm.softmax_rows(&s, &mut want, kv).unwrap();
            let got = Case::new(h, q, kv).run::<f32, f32>(&sm, &s);
            assert_eq!(
                common::bits(&got),
                common::bits(&want),
                "{} {h}x{q}x{kv}",
                sm.backend()
            );
            let x: Vec<bf16> = s.iter().map(|&v| bf16::from_f32(v)).collect();
            let mut want = vec![f16::ZERO; s.len()];
            sm.softmax_rows(&x, &mut want, kv).unwrap();
            let mut y = vec![f16::ZERO; s.len()];
            sm.attention().run(&x, &mut y, h, q, kv).unwrap();
            assert_eq!(y, want, "{} bf16→f16 {h}x{q}x{kv}", sm.backend());
        }
    }
}

#[test]
fn every_option_against_the_reference() {
    let mut table: BTreeMap<(String, &'static str), (f64, f64)> = BTreeMap::new();
    for sm in dispatched("attention: options vs f64 reference") {
        let b = sm.backend().to_string();
        for &(h, q, kv) in &shapes() {
            let s = scores(h * q * kv, 7 + kv as u64);
            for (name, case) in option_sets(h, q, kv, kv as u64) {
                let what = format!("{b} {name} {h}x{q}x{kv}");
                let y = case.run::<f32, f32>(&sm, &s);
                let (worst, ratio) = case.check(&s, &y, 0.0, &what);
                let e = table.entry((b.clone(), name)).or_default();
                e.0 = e.0.max(worst);
                e.1 = e.1.max(ratio);
                // Half scores and outputs: the scores rounded first, the
                // output within one more rounding (2^-9 or 2^-12 relative).
                let sb: Vec<f32> = s.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
                let y = case.run::<bf16, bf16>(&sm, &sb);
                case.check(&sb, &y, 2f64.powi(-8), &format!("{what} bf16→bf16"));
                let sh: Vec<f32> = s.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
                let y = case.run::<f16, f32>(&sm, &sh);
                case.check(&sh, &y, 0.0, &format!("{what} f16→f32"));
                let y = case.run::<f32, f16>(&sm, &s);
                case.check(&s, &y, 2f64.powi(-11), &format!("{what} f32→f16"));
            }
        }
    }
    eprintln!("max error (ULP) and max ratio to the bound, f32 → f32, per backend and option:");
    for ((b, name), (w, r)) in &table {
        eprintln!("  {b:8} {name:20} {w:8.2} ULP  {r:.3} of bound");
    }
}

#[test]
fn special_values() {
    for sm in dispatched("attention: special values") {
        let b = sm.backend();
        for &kv in &[5usize, 64, 300, 5000] {
            let (h, q) = (2, 3);
            let s = scores(h * q * kv, kv as u64);
            // A sink of −∞ is no sink: the same bits.
            let c = Case {
                scale: Some(0.3),
                causal: Some(kv - q),
                ..Case::new(h, q, kv)
            };
            let want = c.run::<f32, f32>(&sm, &s);
            let got = Case {
                sinks: Some(vec![f32::NEG_INFINITY; h]),
                ..c.clone()
            }
            .run::<f32, f32>(&sm, &s);
            assert_eq!(
                common::bits(&got),
                common::bits(&want),
                "{b} kv {kv}: −∞ sink"
            );
            // +∞ sink: zeros. NaN sink: NaN rows (head 1 only).
            let y = Case {
                sinks: Some(vec![f32::INFINITY, f32::NAN]),
                ..c.clone()
            }
            .run::<f32, f32>(&sm, &s);
            assert!(
                y[..q * kv].iter().all(|&v| v == 0.0),
                "{b} kv {kv}: +∞ sink"
            );
            assert!(
                y[q * kv..].iter().all(|v| v.is_nan()),
                "{b} kv {kv}: NaN sink"
            );
            // Fully masked rows: zeros, with and without a sink.
            let mut mask = vec![0.0f32; q * kv];
            mask[kv..2 * kv].fill(f32::NEG_INFINITY);
            for sinks in [None, Some(vec![1.0, -1.0])] {
                let c = Case {
                    mask: Some(mask.clone()),
                    sinks: sinks.clone(),
                    ..Case::new(h, q, kv)
                };
                let y = c.run::<f32, f32>(&sm, &s);
                for hh in 0..h {
                    let row = &y[(hh * q + 1) * kv..][..kv];
                    assert!(
                        row.iter().all(|&v| v == 0.0),
                        "{b} kv {kv}: masked row, sinks {sinks:?}"
                    );
                }
                c.check(&s, &y, 0.0, &format!("{b} kv {kv} masked rows"));
            }
            // +∞ scores share the mass; a NaN score makes its row NaN; NaN
            // scores outside the causal limit and the window are not read.
            let mut s2 = s.clone();
            s2[2] = f32::INFINITY;
            s2[kv + 1] = f32::INFINITY;
            s2[kv + kv - 1] = f32::INFINITY;
            s2[kv * 2] = f32::NAN;
            let c = Case {
                sinks: Some(vec![0.5, 0.5]),
                ..Case::new(h, q, kv)
            };
            let y = c.run::<f32, f32>(&sm, &s2);
            c.check(&s2, &y, 0.0, &format!("{b} kv {kv} specials"));
            assert_eq!(y[2], 1.0);
            assert_eq!(y[kv + 1], 0.5);
            assert!(y[2 * kv..3 * kv].iter().all(|v| v.is_nan()));
            // Causal with offset 0: row q reads keys 0..=q; window 2: q−1, q.
            let mut s3 = s.clone();
            for qq in 0..q {
                for j in 0..kv {
                    let (lo, hi) = (qq.saturating_sub(1), qq + 1);
                    if j < lo || j >= hi {
                        s3[qq * kv + j] = f32::NAN;
                        s3[(q + qq) * kv + j] = f32::NAN;
                    }
                }
            }
            let c = Case {
                causal: Some(0),
                window: Some(2),
                ..Case::new(h, q, kv)
            };
            let y = c.run::<f32, f32>(&sm, &s3);
            assert!(
                y.iter().all(|v| !v.is_nan()),
                "{b} kv {kv}: read outside the extent"
            );
            c.check(&s3, &y, 0.0, &format!("{b} kv {kv} extent"));
        }
    }
}

#[test]
fn strides_and_gaps() {
    const GAP: f32 = 12345.0;
    for sm in dispatched("attention: strides") {
        for &kv in &[3usize, 64, 1000, 5000] {
            let (h, q, xs, ys) = (2, 3, kv + 5, kv + 2);
            let packed = scores(h * q * kv, kv as u64);
            let rows = h * q;
            let mut x = vec![f32::NAN; (rows - 1) * xs + kv];
            for r in 0..rows {
                x[r * xs..r * xs + kv].copy_from_slice(&packed[r * kv..][..kv]);
            }
            let sinks = [0.25f32, -3.0];
            let mask = padding_mask(q, kv, 3);
            let mut mpad = vec![f32::NAN; (q - 1) * (kv + 1) + kv];
            for r in 0..q {
                mpad[r * (kv + 1)..][..kv].copy_from_slice(&mask[r * kv..][..kv]);
            }
            let want = {
                let c = Case {
                    scale: Some(0.5),
                    causal: Some(kv - 1),
                    sinks: Some(sinks.to_vec()),
                    mask: Some(mask.clone()),
                    ..Case::new(h, q, kv)
                };
                c.run::<f32, f32>(&sm, &packed)
            };
            let mut y = vec![GAP; (rows - 1) * ys + kv];
            sm.attention()
                .scale(0.5)
                .causal(kv - 1)
                .sinks(&sinks)
                .mask(&mpad)
                .mask_stride(kv + 1)
                .row_stride(xs)
                .out_stride(ys)
                .run(&x, &mut y, h, q, kv)
                .unwrap();
            for r in 0..rows {
                assert_eq!(
                    common::bits(&y[r * ys..][..kv]),
                    common::bits(&want[r * kv..][..kv]),
                    "{} kv {kv} row {r}",
                    sm.backend()
                );
                if r + 1 < rows {
                    assert!(
                        y[r * ys + kv..(r + 1) * ys].iter().all(|&v| v == GAP),
                        "gap written"
                    );
                }
            }
        }
    }
}

#[test]
fn alibi_slopes_follow_ggml() {
    use simd_softmax_kernels::attention::alibi_slope;
    for heads in 1..=64usize {
        for &b in &[8.0f32, 1.0, 0.5] {
            // ggml's formula, in f32 powf as ggml evaluates it.
            let n = 1usize << (usize::BITS - 1 - heads.leading_zeros());
            let m0 = 2f32.powf(-b / n as f32);
            let m1 = 2f32.powf(-b / 2.0 / n as f32);
            let case = Case {
                max_bias: Some(b),
                ..Case::new(heads, 1, 1)
            };
            for h in 0..heads {
                let ggml = if h < n {
                    m0.powi(h as i32 + 1)
                } else {
                    m1.powi(2 * (h - n) as i32 + 1)
                };
                let ours = alibi_slope(heads, b, h);
                let exact = case.slope(h);
                assert!(
                    ((ours as f64 - exact) / exact).abs() <= 0.5 * EPS,
                    "heads {heads} h {h}: {ours} vs {exact}"
                );
                assert!(
                    ((ours - ggml) / ggml).abs() <= 64.0 * f32::EPSILON,
                    "heads {heads} h {h}: {ours} vs ggml {ggml}"
                );
            }
        }
    }
    // max_bias gives the bits of the same slopes passed explicitly.
    for sm in dispatched("attention: alibi") {
        let (h, q, kv) = (12, 2, 300);
        let s = scores(h * q * kv, 5);
        let mask = alibi_mask(q, kv);
        let slopes: Vec<f32> = (0..h).map(|i| alibi_slope(h, 8.0, i)).collect();
        let a = Case {
            mask: Some(mask.clone()),
            max_bias: Some(8.0),
            ..Case::new(h, q, kv)
        };
        let b = Case {
            mask: Some(mask),
            slopes: Some(slopes),
            ..Case::new(h, q, kv)
        };
        assert_eq!(
            common::bits(&a.run::<f32, f32>(&sm, &s)),
            common::bits(&b.run::<f32, f32>(&sm, &s))
        );
    }
}

#[test]
fn errors_leave_the_output_untouched() {
    let x = [0.0f32; 12];
    let mut y = [3.5f32; 12];
    let a = AttentionSoftmax::new();
    let param = |e: Result<(), Error>, n: &str| match e {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, n),
        other => panic!("{n}: {other:?}"),
    };
    param(a.scale(f32::NAN).run(&x, &mut y, 2, 2, 3), "scale");
    param(a.softcap(0.0).run(&x, &mut y, 2, 2, 3), "softcap");
    param(a.softcap(-1.0).run(&x, &mut y, 2, 2, 3), "softcap");
    param(a.softcap(f32::NAN).run(&x, &mut y, 2, 2, 3), "softcap");
    param(a.window(0).run(&x, &mut y, 2, 2, 3), "window");
    param(a.alibi_max_bias(8.0).run(&x, &mut y, 2, 2, 3), "alibi");
    let m6 = [0.0f32; 6];
    param(
        a.mask(&m6)
            .alibi_max_bias(f32::NAN)
            .run(&x, &mut y, 2, 2, 3),
        "alibi_max_bias",
    );
    let len = |e: Result<(), Error>, w: &str| match e {
        Err(Error::AttentionLength { what, .. }) => assert_eq!(what, w),
        other => panic!("{w}: {other:?}"),
    };
    len(a.run(&x[..11], &mut y, 2, 2, 3), "scores");
    len(a.run(&x, &mut y[..11], 2, 2, 3), "output");
    len(a.run(&x, &mut y, 2, 2, 2), "scores");
    len(a.mask(&m6[..5]).run(&x, &mut y, 2, 2, 3), "mask");
    len(a.head_mask(&m6).run(&x, &mut y, 2, 2, 3), "mask");
    len(
        a.mask(&m6).alibi_slopes(&[1.0]).run(&x, &mut y, 2, 2, 3),
        "alibi_slopes",
    );
    len(a.sinks(&[1.0, 2.0, 3.0]).run(&x, &mut y, 2, 2, 3), "sinks");
    len(a.row_stride(4).run(&x, &mut y, 2, 2, 3), "scores");
    let stride = |e: Result<(), Error>| {
        assert!(
            matches!(
                e,
                Err(Error::InvalidStride {
                    row_len: 3,
                    stride: 2
                })
            ),
            "{e:?}"
        )
    };
    stride(a.row_stride(2).run(&x, &mut y, 2, 2, 3));
    stride(a.out_stride(2).run(&x, &mut y, 2, 2, 3));
    stride(a.mask(&m6).mask_stride(2).run(&x, &mut y, 2, 2, 3));
    assert!(y.iter().all(|&v| v == 3.5), "a refused call wrote");
    // Overflowing shapes are refused, not wrapped.
    len(a.run(&x, &mut y, usize::MAX, 2, 3), "scores");
    // Empty shapes are fine and write nothing.
    a.run::<f32, f32>(&[], &mut [], 0, 5, 3).unwrap();
    a.run::<f32, f32>(&[], &mut [], 2, 5, 0).unwrap();
}

#[test]
fn softcap_across_its_split() {
    // Rows [t, 0]: y_0 = 1/(1 + e^(−c·tanh(t/c))), over t/c from 0 to 12
    // densely, both signs, around the split of the tanh's two forms.
    let mut t: Vec<f32> = (0..4000).map(|i| i as f32 * 0.003).collect();
    t.extend((0..2000).map(|i| 0.62 + i as f32 * 5e-6));
    t.extend([1e-30, 1e-7, 20.0, 1e6, f32::MAX]);
    let neg: Vec<f32> = t.iter().map(|v| -v).collect();
    t.extend(neg);
    for sm in dispatched("attention: softcap sweep") {
        for c in [1.0f32, 50.0] {
            let s: Vec<f32> = t.iter().flat_map(|&v| [v * c, 0.0]).collect();
            let case = Case {
                cap: Some(c),
                ..Case::new(1, t.len(), 2)
            };
            let y = case.run::<f32, f32>(&sm, &s);
            let (worst, ratio) = case.check(&s, &y, 0.0, &format!("{} cap {c}", sm.backend()));
            eprintln!(
                "  {} cap {c}: {worst:.2} ULP, {ratio:.3} of bound",
                sm.backend()
            );
        }
    }
}

#[test]
fn out_of_cache_tensors_stream_whole_rows() {
    // 2^22 scores: the output is written non-temporally, whole rows
    // assembled in the tile (zeros included), for f32 and half outputs,
    // with and without sinks.
    let (h, q, kv) = (2, 512, 4096);
    let s = scores(h * q * kv, 99);
    let sinks = vec![0.5f32, f32::NAN];
    for sm in dispatched("attention: out of cache") {
        let b = sm.backend();
        let causal = Case {
            scale: Some(0.1),
            causal: Some(kv - q),
            ..Case::new(h, q, kv)
        };
        let with_sinks = Case {
            sinks: Some(sinks.clone()),
            window: Some(1000),
            ..causal.clone()
        };
        for (name, c) in [("causal", causal), ("window + sinks", with_sinks)] {
            let y = c.run::<f32, f32>(&sm, &s);
            c.check(&s, &y, 0.0, &format!("{b} {name} f32"));
            let y = c.run::<f32, bf16>(&sm, &s);
            c.check(&s, &y, 2f64.powi(-8), &format!("{b} {name} bf16"));
        }
    }
}

/// The portable 16-lane kernel (AVX-512's lane logic in plain Rust, for
/// CPUs without AVX-512): every option set at every shape, f32 → f32,
/// against the reference; with no option, `softmax_rows` bit for bit.
#[cfg(target_arch = "x86_64")]
#[test]
fn portable_16_lanes() {
    use simd_softmax_kernels::attention::{
        AttentionMask, AttentionOptions, AttentionShape, Slopes,
    };
    use simd_softmax_kernels::portable::{DynKernel, lanes16_dyn};
    use simd_softmax_kernels::{Elems, ElemsMut};
    let k = lanes16_dyn();
    eprintln!("[attention: portable] ran: portable16 (AVX-512 lane logic)");
    for &(h, q, kv) in &shapes() {
        let s = scores(h * q * kv, 7 + kv as u64);
        let sh = AttentionShape {
            heads: h,
            q_len: q,
            kv_len: kv,
            row_stride: kv,
            out_stride: kv,
        };
        let mut y = vec![0.0f32; s.len()];
        k.attention_softmax(
            &AttentionOptions::NONE,
            sh,
            Elems::F32(&s),
            ElemsMut::F32(&mut y),
        );
        let mut want = vec![0.0f32; s.len()];
        DynKernel::softmax_rows(k, &s, &mut want, kv);
        assert_eq!(
            common::bits(&y),
            common::bits(&want),
            "portable16 {h}x{q}x{kv} no options"
        );
        for (name, c) in option_sets(h, q, kv, kv as u64) {
            let mask = c.mask_f32();
            let slopes = match (&c.slopes, c.max_bias) {
                (Some(v), _) => Slopes::Given(v),
                (None, Some(b)) => Slopes::MaxBias(b),
                _ => Slopes::One,
            };
            let o = AttentionOptions {
                scale: c.scale.unwrap_or(1.0),
                softcap: c.cap,
                mask: mask.as_deref().map(|m| AttentionMask {
                    elems: Elems::F32(m),
                    stride: kv,
                    per_head: c.per_head,
                }),
                slopes,
                causal: c.causal,
                window: c.window,
                sinks: c.sinks.as_deref(),
            };
            k.attention_softmax(&o, sh, Elems::F32(&s), ElemsMut::F32(&mut y));
            c.check(&s, &y, 0.0, &format!("portable16 {name} {h}x{q}x{kv}"));
        }
    }
}
