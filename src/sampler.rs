//! [`Sampler`]: the next token from a row of vocabulary logits, with
//! temperature, top-k, top-p and min-p, without sorting the vocabulary;
//! [`SamplerScratch`], the caller-owned memory it works in (or
//! [`SamplerScratchMut`] over the caller's own buffers), and
//! [`Candidate`], a survivor.
//!
//! One call reads the logits once or twice and then works on a short
//! list:
//! 1. the dispatched kernel's block maxima (`Kernel::block_max`, 64
//!    elements a block): the max `m`, whether a NaN or `+∞` is in the row,
//!    and which blocks later passes may skip;
//! 2. only for top-p without top-k, the kernel's state pass at scale
//!    `α = 1/T`: the normalizer `Z = Σ e^(α(x − m))`;
//! 3. a filter over the blocks that can hold a candidate: the logits at or
//!    above a threshold below which no entry can survive (min-p's
//!    `m + ln(min_p)/α`), with top-k as a bounded selection (a buffer of a
//!    few `k`, cut to the best `k` whenever it fills, the threshold raised
//!    to the k-th); or, for top-p without top-k, bands of weight from the
//!    max down (`e^(−c)` to `e^(−c−1)` of the max's) until they hold `p`
//!    of `Z` (never below `m + ln((1 − p)·Z/2n)/α`: all entries below it
//!    together hold less than `1 − p`);
//! 4. the candidates sorted (only they), their weights `w = e^(α(x − m))`
//!    in f64, and the rules applied in order on that list.
//!
//! The order is descending logit (descending probability), ties by lower
//! index, so every rule keeps a prefix of the list and the survivor set is
//! defined exactly: top-k keeps `k`; top-p keeps the shortest prefix whose
//! cumulative weight, summed in f64 in that order and divided by the
//! normalizer (the top-k set's f64 sum when top-k is on, the kernel's `Z`
//! otherwise), reaches `p`; min-p keeps the weights `≥ min_p` times the
//! largest. The survivors' probabilities are their weights over their f64
//! sum.

use crate::dispatch::{Imp, with_kernel};
use crate::{Backend, Error, Softmax};
use simd_softmax_kernels::MAX_BLOCK;

/// A survivor of [`Sampler::survivors`]: a vocabulary index and its
/// probability among the survivors.
///
/// ```
/// use simd_softmax::Candidate;
/// let c = Candidate { index: 7, prob: 0.25 };
/// assert_eq!((c.index, c.prob), (7, 0.25));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Candidate {
    /// The entry's index in the logits.
    pub index: u32,
    /// Its probability, renormalized over the survivors.
    pub prob: f32,
}

/// The caller-owned working memory of a [`Sampler`] for vocabularies of up
/// to [`SamplerScratch::vocab`] entries: allocated once
/// ([`SamplerScratch::new`]), reused by every call (which allocates
/// nothing). It holds the candidates and their f64 weights:
/// [`Sampler::scratch_bytes`] bytes.
///
/// ```
/// use simd_softmax::{Sampler, SamplerScratch};
/// let mut scratch = SamplerScratch::new(32_000);
/// assert_eq!(scratch.vocab(), 32_000);
/// let logits = vec![0.0f32; 32_000];
/// let next = Sampler::new().top_k(40).sample(&logits, 0.5, &mut scratch)?;
/// assert!(next.index < 40); // all equal: the 40 lowest indices survive
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SamplerScratch {
    cand: Vec<Candidate>,
    w: Vec<f64>,
    bmax: Vec<f32>,
}

impl SamplerScratch {
    /// Scratch for vocabularies of up to `vocab` entries.
    ///
    /// ```
    /// let s = simd_softmax::SamplerScratch::new(128_256);
    /// assert_eq!(s.vocab(), 128_256);
    /// ```
    pub fn new(vocab: usize) -> SamplerScratch {
        SamplerScratch {
            cand: vec![Candidate::default(); vocab],
            w: vec![0.0; vocab],
            bmax: vec![0.0; vocab.div_ceil(MAX_BLOCK)],
        }
    }

    /// The longest row of logits this scratch serves.
    ///
    /// ```
    /// assert_eq!(simd_softmax::SamplerScratch::new(5).vocab(), 5);
    /// ```
    pub fn vocab(&self) -> usize {
        self.cand.len()
    }
}

/// A [`Sampler`]'s working memory in buffers the caller owns (an arena, a
/// C caller's block): the candidates, their f64 weights and the block
/// maxima, as [`SamplerScratch`] holds them. It serves vocabularies of up
/// to [`SamplerScratchMut::vocab`] entries; `&mut SamplerScratch` converts
/// into one, and [`Sampler::sample`] and [`Sampler::survivors`] take
/// either ([`AsSamplerScratch`]).
///
/// ```
/// use simd_softmax::{Candidate, Sampler, SamplerScratchMut};
/// let (mut cand, mut w, mut bmax) = ([Candidate::default(); 8], [0.0f64; 8], [0.0f32; 1]);
/// let mut scratch = SamplerScratchMut::new(&mut cand, &mut w, &mut bmax);
/// assert_eq!(scratch.vocab(), 8);
/// let next = Sampler::new().temperature(0.0).sample(&[0.0, 2.0, 1.0], 0.5, &mut scratch)?;
/// assert_eq!(next.index, 1);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Debug)]
pub struct SamplerScratchMut<'a> {
    cand: &'a mut [Candidate],
    w: &'a mut [f64],
    bmax: &'a mut [f32],
}

impl<'a> SamplerScratchMut<'a> {
    /// Scratch over `cand` and `w` (one entry per logit) and `bmax` (one
    /// per [`Sampler::BLOCK`] logits): it serves the longest vocabulary
    /// all three cover. Their contents on entry do not matter.
    ///
    /// ```
    /// use simd_softmax::{Candidate, SamplerScratchMut};
    /// let (mut c, mut w, mut b) = ([Candidate::default(); 200], [0.0; 100], [0.0f32; 1]);
    /// assert_eq!(SamplerScratchMut::new(&mut c, &mut w, &mut b).vocab(), 64);
    /// ```
    pub fn new(cand: &'a mut [Candidate], w: &'a mut [f64], bmax: &'a mut [f32]) -> Self {
        let vocab = cand
            .len()
            .min(w.len())
            .min(bmax.len().saturating_mul(MAX_BLOCK));
        let bmax_len = vocab.div_ceil(MAX_BLOCK);
        SamplerScratchMut {
            cand: &mut cand[..vocab],
            w: &mut w[..vocab],
            bmax: &mut bmax[..bmax_len],
        }
    }

    /// The longest row of logits this scratch serves.
    ///
    /// ```
    /// let mut s = simd_softmax::SamplerScratch::new(5);
    /// assert_eq!(simd_softmax::SamplerScratchMut::from(&mut s).vocab(), 5);
    /// ```
    pub fn vocab(&self) -> usize {
        self.cand.len()
    }
}

/// What [`Sampler::sample`] and [`Sampler::survivors`] work in: a
/// [`SamplerScratch`] or a [`SamplerScratchMut`].
pub trait AsSamplerScratch {
    /// The scratch as borrowed buffers.
    ///
    /// ```
    /// use simd_softmax::{AsSamplerScratch, SamplerScratch};
    /// assert_eq!(SamplerScratch::new(3).as_scratch().vocab(), 3);
    /// ```
    fn as_scratch(&mut self) -> SamplerScratchMut<'_>;
}

impl AsSamplerScratch for SamplerScratch {
    fn as_scratch(&mut self) -> SamplerScratchMut<'_> {
        SamplerScratchMut::from(self)
    }
}

impl AsSamplerScratch for SamplerScratchMut<'_> {
    fn as_scratch(&mut self) -> SamplerScratchMut<'_> {
        SamplerScratchMut {
            cand: self.cand,
            w: self.w,
            bmax: self.bmax,
        }
    }
}

impl<'a> From<&'a mut SamplerScratch> for SamplerScratchMut<'a> {
    fn from(s: &'a mut SamplerScratch) -> Self {
        SamplerScratchMut {
            cand: &mut s.cand,
            w: &mut s.w,
            bmax: &mut s.bmax,
        }
    }
}

/// Samples the next token from vocabulary logits: probabilities
/// `softmax(x/T)`, then top-k, top-p and min-p in that order, the
/// survivors renormalized. Every filter is optional: [`Sampler::new`] is
/// `T = 1` with none.
///
/// - **Temperature** `T ≥ 0`: `T = 0` is greedy (the lowest index among
///   the maxima); `T = +∞` is uniform over the finite logits.
/// - **top-k** `k`: the `k` most probable (ties by lower index); `0` is
///   off, `1` is greedy.
/// - **top-p** `p ∈ (0, 1]`: of those, the shortest prefix by descending
///   probability whose mass, renormalized over the top-k set, reaches `p`;
///   the cumulative sum is taken in f64 in that order (ties by lower
///   index), so the set is defined exactly; `1` is off.
/// - **min-p** `p ∈ [0, 1]`: of those, the ones whose probability is at
///   least `p` times the largest; `0` is off.
///
/// `−∞` logits are never chosen, nor are those whose f64 weight
/// `e^((x − max)/T)` underflows to 0 (more than about `745·T` below the
/// max); `+∞` logits take all the mass (shared equally). Errors, with nothing written: a NaN logit, a row with no
/// finite or `+∞` logit (empty or all `−∞`), an out-of-range parameter,
/// `u ∉ [0, 1)`, a scratch for a shorter vocabulary. Selection is partial:
/// the vocabulary is never sorted, only the candidates that can survive
/// (see the module documentation of `sampler.rs` for the passes).
///
/// ```
/// use simd_softmax::{Sampler, SamplerScratch};
/// let logits = [1.0f32, 3.0, 2.0, -1.0, 3.0];
/// let mut scratch = SamplerScratch::new(logits.len());
/// let s = Sampler::new().temperature(0.8).top_k(3).top_p(0.9);
/// let survivors = s.survivors(&logits, &mut scratch)?;
/// // Descending probability, ties by index: 1 and 4 (equal), then 2.
/// let order: Vec<u32> = survivors.iter().map(|c| c.index).collect();
/// assert_eq!(order, [1, 4, 2]);
/// let next = s.sample(&logits, 0.1, &mut scratch)?;
/// assert_eq!(next.index, 1);
/// assert_eq!(Sampler::new().temperature(0.0).sample(&logits, 0.9, &mut scratch)?.index, 1);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Sampler {
    imp: Imp,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    min_p: f32,
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler::new()
    }
}

impl Softmax {
    /// A [`Sampler`] (`T = 1`, no filter) on this engine's backend.
    ///
    /// ```
    /// use simd_softmax::{Backend, Softmax};
    /// let s = Softmax::with_backend(Backend::Scalar)?.sampler();
    /// assert_eq!(s.backend(), Backend::Scalar);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn sampler(&self) -> Sampler {
        Sampler {
            imp: self.imp,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
        }
    }
}

/// The parameter a value was refused for, and why (the value shown as the
/// f64 it is used as).
fn param(name: &'static str, value: f64, expected: &'static str) -> Error {
    Error::invalid_parameter(name, value, expected)
}

/// How a candidate's weight follows from its logit.
#[derive(Clone, Copy)]
enum Weights {
    /// `e^(α(x − m))`, the ordinary case.
    Exp { alpha: f64, m: f32 },
    /// 1 at the given value (`+∞` entries, or the maxima when `1/T`
    /// overflows), 0 elsewhere.
    At(f32),
    /// 1 for every finite logit (`T = +∞`).
    Flat,
}

impl Weights {
    #[inline]
    fn of(self, x: f32) -> f64 {
        match self {
            Weights::Exp { alpha, m } => libm::exp(alpha * (f64::from(x) - f64::from(m))),
            Weights::At(v) => f64::from(u8::from(x == v)),
            Weights::Flat => f64::from(u8::from(x.is_finite())),
        }
    }
}

/// The sort key of a candidate: descending logit, then ascending index.
#[inline]
fn key(c: &Candidate) -> u64 {
    // f32 bits → an unsigned order (negative values reversed), inverted
    // for descending; −0 was stored as +0, so equal logits tie.
    let b = c.prob.to_bits();
    let ord = if b >> 31 == 1 { !b } else { b | 0x8000_0000 };
    (u64::from(!ord) << 32) | u64::from(c.index)
}

/// The largest f32 at least `ulps` steps below `t` (a threshold made
/// safe against the rounding of the f64 expression it came from).
fn below(t: f64, ulps: u32) -> f32 {
    let mut v = t as f32;
    if v.is_nan() {
        return f32::NEG_INFINITY;
    }
    for _ in 0..ulps {
        v = if v == f32::NEG_INFINITY {
            v
        } else if v == 0.0 {
            -f32::from_bits(1)
        } else if v > 0.0 {
            f32::from_bits(v.to_bits() - 1)
        } else {
            f32::from_bits(v.to_bits() + 1)
        };
    }
    v
}

impl Sampler {
    /// `T = 1`, no top-k, top-p or min-p, on the default backend.
    ///
    /// ```
    /// let s = simd_softmax::Sampler::new();
    /// assert_eq!(s.backend(), simd_softmax::Softmax::new().backend());
    /// ```
    pub fn new() -> Sampler {
        Softmax::new().sampler()
    }

    /// The temperature `T ≥ 0` (`0`: greedy; `+∞`: uniform over the
    /// finite logits). Checked when the sampler is used.
    ///
    /// ```
    /// let s = simd_softmax::Sampler::new().temperature(0.7);
    /// ```
    pub fn temperature(mut self, t: f32) -> Sampler {
        self.temperature = t;
        self
    }

    /// Keep the `k` most probable (ties by lower index); `0`: no top-k.
    ///
    /// ```
    /// let s = simd_softmax::Sampler::new().top_k(40);
    /// ```
    pub fn top_k(mut self, k: usize) -> Sampler {
        self.top_k = k;
        self
    }

    /// Keep the shortest most-probable prefix whose mass reaches
    /// `p ∈ (0, 1]`; `1`: no top-p. Checked when the sampler is used.
    ///
    /// ```
    /// let s = simd_softmax::Sampler::new().top_p(0.9);
    /// ```
    pub fn top_p(mut self, p: f32) -> Sampler {
        self.top_p = p;
        self
    }

    /// Keep the entries at least `p ∈ [0, 1]` times as probable as the
    /// most probable; `0`: no min-p. Checked when the sampler is used.
    ///
    /// ```
    /// let s = simd_softmax::Sampler::new().min_p(0.05);
    /// ```
    pub fn min_p(mut self, p: f32) -> Sampler {
        self.min_p = p;
        self
    }

    /// The backend whose kernels run the passes over the logits.
    ///
    /// ```
    /// use simd_softmax::{Backend, Softmax};
    /// let s = Softmax::with_backend(Backend::Scalar)?.sampler();
    /// assert_eq!(s.backend(), Backend::Scalar);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        Softmax { imp: self.imp }.backend()
    }

    /// Logits per block maximum: a scratch holds one `f32` per `BLOCK`
    /// logits ([`SamplerScratchMut::new`]'s `bmax`).
    ///
    /// ```
    /// assert_eq!(simd_softmax::Sampler::BLOCK, 64);
    /// ```
    pub const BLOCK: usize = MAX_BLOCK;

    /// The bytes a [`SamplerScratch`] for `vocab` entries holds (16 per
    /// entry and 4 per 64): what a caller budgets for one sampling thread.
    ///
    /// ```
    /// assert_eq!(simd_softmax::Sampler::scratch_bytes(1000), 16_064);
    /// ```
    pub const fn scratch_bytes(vocab: usize) -> usize {
        vocab * (core::mem::size_of::<Candidate>() + core::mem::size_of::<f64>())
            + vocab.div_ceil(MAX_BLOCK) * core::mem::size_of::<f32>()
    }

    /// The survivors of `logits`, by descending probability (ties by lower
    /// index), with their renormalized probabilities, in `scratch`.
    ///
    /// ```
    /// use simd_softmax::{Sampler, SamplerScratch};
    /// let logits = [0.0f32, 5.0, 4.0, f32::NEG_INFINITY];
    /// let mut scratch = SamplerScratch::new(4);
    /// let kept = Sampler::new().min_p(0.2).survivors(&logits, &mut scratch)?;
    /// // e^-1 ≥ 0.2 survives beside the max, e^-5 does not.
    /// assert_eq!(kept.len(), 2);
    /// assert_eq!((kept[0].index, kept[1].index), (1, 2));
    /// assert!((kept[0].prob + kept[1].prob - 1.0).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn survivors<'s>(
        &self,
        logits: &[f32],
        scratch: &'s mut impl AsSamplerScratch,
    ) -> Result<&'s [Candidate], Error> {
        let mut scratch = scratch.as_scratch();
        let (n, total) = self.select(logits, &mut scratch)?;
        let SamplerScratchMut { cand, w, .. } = scratch;
        for (c, &wj) in cand[..n].iter_mut().zip(&w[..n]) {
            c.prob = (wj / total) as f32;
        }
        Ok(&cand[..n])
    }

    /// One survivor drawn with a uniform `u ∈ [0, 1)`: the first, in the
    /// survivors' order, whose cumulative weight exceeds `u` times their
    /// total (f64), with its probability. Deterministic given `u`.
    ///
    /// ```
    /// use simd_softmax::{Sampler, SamplerScratch};
    /// let logits = [0.0f32, 0.0];
    /// let mut scratch = SamplerScratch::new(2);
    /// let s = Sampler::new();
    /// assert_eq!(s.sample(&logits, 0.25, &mut scratch)?.index, 0);
    /// assert_eq!(s.sample(&logits, 0.75, &mut scratch)?.index, 1);
    /// assert!(s.sample(&logits, 1.0, &mut scratch).is_err());
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn sample(
        &self,
        logits: &[f32],
        u: f64,
        scratch: &mut impl AsSamplerScratch,
    ) -> Result<Candidate, Error> {
        if !(0.0..1.0).contains(&u) {
            return Err(param("u", u, "a uniform sample in [0, 1)"));
        }
        let scratch = &mut scratch.as_scratch();
        let (n, total) = self.select(logits, scratch)?;
        let target = u * total;
        let mut acc = 0.0f64;
        let mut pick = n - 1;
        for (j, &wj) in scratch.w[..n].iter().enumerate() {
            acc += wj;
            if target < acc {
                pick = j;
                break;
            }
        }
        let c = scratch.cand[pick];
        Ok(Candidate {
            index: c.index,
            prob: (scratch.w[pick] / total) as f32,
        })
    }

    /// Checks the parameters and the scratch.
    fn check(&self, logits: &[f32], scratch: &SamplerScratchMut<'_>) -> Result<(), Error> {
        let t = self.temperature;
        if t.is_nan() || t < 0.0 {
            return Err(param("temperature", t.into(), "T ≥ 0 (0: greedy)"));
        }
        let p = self.top_p;
        if p.is_nan() || p <= 0.0 || p > 1.0 {
            return Err(param("top_p", p.into(), "p in (0, 1] (1: off)"));
        }
        let q = self.min_p;
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            return Err(param("min_p", q.into(), "p in [0, 1] (0: off)"));
        }
        if logits.len() > u32::MAX as usize {
            return Err(param(
                "vocabulary",
                logits.len() as f64,
                "at most 2^32 − 1 logits (indices are u32)",
            ));
        }
        if scratch.vocab() < logits.len() {
            return Err(Error::ScratchTooShort {
                vocab: logits.len(),
                scratch: scratch.vocab(),
            });
        }
        Ok(())
    }

    /// Leaves the survivors in `scratch.cand[..n]` (their logits in
    /// `prob`) and their weights in `scratch.w[..n]`; returns `n` and the
    /// weights' f64 sum.
    fn select(
        &self,
        x: &[f32],
        scratch: &mut SamplerScratchMut<'_>,
    ) -> Result<(usize, f64), Error> {
        self.check(x, scratch)?;
        let alpha = (1.0 / f64::from(self.temperature)) as f32;
        let greedy = self.temperature == 0.0 || self.top_k == 1;
        let SamplerScratchMut { cand, w, bmax } = scratch;
        // First pass: the block maxima (a NaN block is NaN), so the max,
        // and later passes skip the blocks below their threshold.
        let bmax = &mut bmax[..x.len().div_ceil(MAX_BLOCK)];
        with_kernel!(self.imp, kk => kk.block_max(x, bmax));
        let bmax = &*bmax;
        let m = bmax.iter().fold(f32::NEG_INFINITY, |a, &b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        });
        if m.is_nan() {
            let index = x.iter().position(|v| v.is_nan()).unwrap_or(0);
            return Err(Error::NanLogit { index });
        }
        if m == f32::NEG_INFINITY {
            return Err(Error::NoFiniteLogit);
        }
        if greedy {
            // The lowest index among the maxima (a `+∞` max included).
            let index = x.iter().position(|&v| v == m).unwrap_or(0);
            cand[0] = Candidate {
                index: index as u32,
                prob: m,
            };
            w[0] = 1.0;
            return Ok((1, 1.0));
        }
        let (p, min_p, k) = (f64::from(self.top_p), f64::from(self.min_p), self.top_k);
        let weights = if m == f32::INFINITY {
            Weights::At(f32::INFINITY)
        } else if alpha == 0.0 {
            Weights::Flat
        } else if !alpha.is_finite() {
            Weights::At(m)
        } else {
            Weights::Exp {
                alpha: f64::from(alpha),
                m,
            }
        };
        // Second pass, for top-p without top-k only: the normalizer.
        let z_of_row = k == 0 && p < 1.0 && matches!(weights, Weights::Exp { .. });
        let z = if z_of_row {
            with_kernel!(self.imp, kk => kk.scaled_row_state(x, alpha))
                .sum
                .total()
        } else {
            0.0
        };
        // The filter threshold: nothing below it can survive.
        let tau = match weights {
            Weights::At(v) => v,
            Weights::Flat => f32::MIN,
            Weights::Exp { alpha, m } => {
                let m = f64::from(m);
                let mut t = f32::MIN;
                // (Not under top-p with top-k: its normalizer is the whole
                // top-k set's, min-p's rejects included.)
                if min_p > 0.0 && !(k > 0 && p < 1.0) {
                    t = t.max(below(m + min_p.ln() / alpha, 4));
                }
                if k == 0 && p < 1.0 {
                    // All entries below it hold less than half of 1 − p.
                    let bound = 0.5 * (1.0 - p) * z / x.len() as f64;
                    t = t.max(below(m + bound.ln() / alpha, 4));
                }
                t
            }
        };
        let mut len = match weights {
            Weights::Exp { alpha, m } if k == 0 && p < 1.0 => {
                // Top-p without top-k: the candidates in bands of weight
                // from the max down, until they hold `p` of the row's
                // mass (or reach `tau`, below which nothing can survive).
                // Each band reads only the blocks whose max reaches it.
                let target = p * z * (1.0 + 1e-9);
                let (mut len, mut mass, mut hi, mut c) = (0, 0.0f64, f32::INFINITY, 2.0f64);
                loop {
                    let lo = below(f64::from(m) - c / alpha, 4).max(tau);
                    let new = collect_band(x, bmax, lo, hi, &mut cand[len..]);
                    mass += cand[len..len + new]
                        .iter()
                        .map(|c| weights.of(c.prob))
                        .sum::<f64>();
                    len += new;
                    if mass >= target || lo <= tau {
                        break len;
                    }
                    (hi, c) = (lo, c + 1.0);
                }
            }
            _ => {
                // With top-k, the k-th largest block max is a floor for the
                // k-th largest entry (the k largest block maxima are k
                // entries): start the bounded selection there.
                let mut tau = tau;
                if k > 0 && k <= bmax.len() {
                    let t = &mut w[..bmax.len()];
                    for (d, &b) in t.iter_mut().zip(bmax) {
                        *d = f64::from(b);
                    }
                    t.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                    tau = tau.max(t[k - 1] as f32);
                }
                collect(x, bmax, tau, k, cand)
            }
        };
        if k > 0 && len > k {
            cand[..len].select_nth_unstable_by_key(k - 1, key);
            len = k;
        }
        let cand = &mut cand[..len];
        cand.sort_unstable_by_key(key);

        // The rules, each a prefix of the sorted list. Weights are computed
        // in order; without top-k, top-p's normalizer is the kernel's `Z`
        // and the weights past its cut are never needed.
        let w = &mut w[..len];
        if !z_of_row {
            for (wj, c) in w.iter_mut().zip(cand.iter()) {
                *wj = weights.of(c.prob);
            }
        }
        let mut keep = len;
        if p < 1.0 {
            // The top-k set's f64 sum in the list's order (or the whole
            // candidate list's: with equal weights every nonzero one is in).
            let z = if z_of_row { z } else { w.iter().sum::<f64>() };
            let mut acc = 0.0f64;
            for (j, c) in cand.iter().enumerate() {
                if z_of_row {
                    w[j] = weights.of(c.prob);
                }
                acc += w[j];
                if acc / z >= p {
                    keep = j + 1;
                    break;
                }
            }
        }
        if min_p > 0.0 {
            let floor = min_p * w[0];
            keep = w[..keep].iter().take_while(|&&wj| wj >= floor).count();
        }
        // Zero weights (logits more than about 745·T below the max) are a
        // suffix; they are never chosen.
        keep = w[..keep].iter().take_while(|&&wj| wj > 0.0).count();
        let total = w[..keep].iter().sum::<f64>();
        Ok((keep, total))
    }
}

/// One band of top-p's candidates: the entries in `[lo, hi)` into `out`
/// (logit in `prob`, `−0` as `+0`), reading only the blocks whose max
/// (`bmax`, [`MAX_BLOCK`] elements each) reaches `lo`; returns how many.
fn collect_band(x: &[f32], bmax: &[f32], lo: f32, hi: f32, out: &mut [Candidate]) -> usize {
    let mut len = 0;
    for (b, block) in x.chunks(MAX_BLOCK).enumerate() {
        if bmax[b] < lo {
            continue;
        }
        // Branch-free compaction: every entry is written at `len`, which
        // advances only for a hit (dense bands would mispredict a branch).
        for (j, &v) in block.iter().enumerate() {
            if let Some(slot) = out.get_mut(len) {
                *slot = Candidate {
                    index: (b * MAX_BLOCK + j) as u32,
                    prob: v + 0.0,
                };
            }
            len += usize::from((v >= lo) & (v < hi));
        }
    }
    len
}

/// The filter pass: the entries `≥ tau` (never `−∞`) into `out` as
/// candidates (logit in `prob`, `−0` as `+0`), and with `k > 0` a bounded
/// selection: whenever the buffer of `4k` (at least 512) fills, it is cut
/// to its best `k` and the threshold raised to the k-th (later entries
/// must beat it: an equal one has a higher index). Returns how many
/// `out[..n]` holds; with `k > 0` they include the row's top `k` among the
/// entries `≥ tau`.
fn collect(x: &[f32], bmax: &[f32], tau: f32, k: usize, out: &mut [Candidate]) -> usize {
    let cap = if k > 0 {
        k.saturating_mul(4).max(512).min(out.len())
    } else {
        out.len()
    };
    let (mut tau, mut strict) = (tau.max(f32::MIN), false);
    let mut len = 0;
    for (b, block) in x.chunks(MAX_BLOCK).enumerate() {
        // Most blocks hold no candidate: their max says so.
        if bmax[b] < tau || (strict && bmax[b] == tau) {
            continue;
        }
        for (j, &v) in block.iter().enumerate() {
            if v > tau || (v == tau && !strict) {
                if len == cap {
                    // Full (only with k > 0: cap ≥ n otherwise).
                    out[..len].select_nth_unstable_by_key(k - 1, key);
                    len = k;
                    (tau, strict) = (out[k - 1].prob, true);
                    if v <= tau {
                        continue;
                    }
                }
                out[len] = Candidate {
                    index: (b * MAX_BLOCK + j) as u32,
                    prob: v + 0.0,
                };
                len += 1;
            }
        }
    }
    len
}
