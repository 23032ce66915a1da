//! The attention softmax: [`AttentionSoftmax`], a builder for the options
//! an attention layer applies to its scores before the softmax (scale,
//! softcap, additive mask, ALiBi slopes, causal limit, sliding window,
//! sinks, row strides), its argument checks, and the one dispatch that runs
//! a whole `[heads, q_len, kv_len]` score tensor.

use crate::dispatch::{Imp, with_kernel};
use crate::{Element, Error, Softmax};
use simd_softmax_kernels::attention::{AttentionMask, AttentionOptions, AttentionShape, Slopes};
use simd_softmax_kernels::{Elems, ElemsMut};

/// The softmax of an attention layer's scores, with its options fused into
/// the one pass. Row `(h, q)` of a `[heads, q_len, kv_len]` score tensor
/// `s` gives
///
/// ```text
/// z_j = softcap(scale·s_j) + slope_h·mask[q, j]
/// z_j = −∞   where causal and j > q + q_offset, or a window w is set and j ≤ q + q_offset − w
/// y_j = e^(z_j) / (e^(σ_h) + Σ_k e^(z_k))
/// ```
///
/// with `softcap(t) = c·tanh(t/c)` when a cap is set, `slope_h` 1 unless
/// ALiBi is set, and `σ_h` the head's sink logit (a sink takes mass but has
/// no output; `−∞` is no sink). Entries masked by the causal limit or the
/// window are never read and get 0. Defaults: scale 1, no cap, no mask,
/// no ALiBi, not causal, no window, no sinks, contiguous rows: then
/// [`run`](AttentionSoftmax::run) is exactly
/// [`softmax_rows`](crate::softmax_rows), bit for bit.
///
/// Special values: a fully masked row gives zeros (with a sink too: the
/// sink takes the mass); a sink of `+∞` takes all the mass; a NaN score,
/// mask entry or sink makes its row NaN; `+∞` logits share the mass. The
/// arithmetic is f32; scores, mask and output may each be `f32`, `f16` or
/// `bf16`.
///
/// ```
/// use simd_softmax::AttentionSoftmax;
/// // 2 heads, 2 queries, 3 keys; causal over a cache of 1 earlier entry.
/// let scores = [0.0f32; 12];
/// let mut probs = [9.0f32; 12];
/// AttentionSoftmax::new()
///     .scale(0.125)
///     .causal(1)
///     .run(&scores, &mut probs, 2, 2, 3)?;
/// assert_eq!(&probs[..6], &[0.5, 0.5, 0.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct AttentionSoftmax<'a> {
    imp: Imp,
    scale: f32,
    softcap: Option<f32>,
    mask: Option<(Elems<'a>, bool)>,
    mask_stride: Option<usize>,
    slopes: Option<Slopes<'a>>,
    causal: Option<usize>,
    window: Option<usize>,
    sinks: Option<&'a [f32]>,
    row_stride: Option<usize>,
    out_stride: Option<usize>,
}

impl Default for AttentionSoftmax<'_> {
    fn default() -> Self {
        AttentionSoftmax::new()
    }
}

impl Softmax {
    /// An [`AttentionSoftmax`] with no option set, on this engine's backend.
    ///
    /// ```
    /// use simd_softmax::{Backend, Softmax};
    /// let a = Softmax::with_backend(Backend::Scalar)?.attention();
    /// assert_eq!(a.backend(), Backend::Scalar);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn attention(&self) -> AttentionSoftmax<'static> {
        AttentionSoftmax {
            imp: self.imp,
            scale: 1.0,
            softcap: None,
            mask: None,
            mask_stride: None,
            slopes: None,
            causal: None,
            window: None,
            sinks: None,
            row_stride: None,
            out_stride: None,
        }
    }
}

impl<'a> AttentionSoftmax<'a> {
    /// No option set, on the default backend.
    ///
    /// ```
    /// let a = simd_softmax::AttentionSoftmax::new();
    /// assert_eq!(a.backend(), simd_softmax::Softmax::new().backend());
    /// ```
    pub fn new() -> AttentionSoftmax<'static> {
        Softmax::new().attention()
    }

    /// The backend that runs it.
    ///
    /// ```
    /// let a = simd_softmax::AttentionSoftmax::new();
    /// println!("{}", a.backend());
    /// ```
    pub fn backend(&self) -> crate::Backend {
        Softmax { imp: self.imp }.backend()
    }

    /// Multiplies every score first (typically `1/√head_dim`); not NaN.
    ///
    /// ```
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::AttentionSoftmax::new().scale(0.5).run(&[0.0f32, 2.0 * 2f32.ln()], &mut y, 1, 1, 2)?;
    /// assert!((y[1] - 2.0 / 3.0).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = scale;
        self
    }

    /// Caps the scaled scores at `±c` smoothly: `c·tanh(t/c)` (Gemma 2 uses
    /// 50); `c > 0`.
    ///
    /// ```
    /// let mut y = [0.0f32; 2];
    /// // Capped at 1: the two logits become tanh(1e6) = 1 and tanh(0) = 0.
    /// simd_softmax::AttentionSoftmax::new().softcap(1.0).run(&[1e6f32, 0.0], &mut y, 1, 1, 2)?;
    /// assert!((y[0] - 1.0 / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softcap(mut self, c: f32) -> Self {
        self.softcap = Some(c);
        self
    }

    /// An additive mask `[q_len, kv_len]` shared by every head (`f32`,
    /// `f16` or `bf16`; `−∞` masks an entry), rows [`mask_stride`] apart.
    ///
    /// [`mask_stride`]: AttentionSoftmax::mask_stride
    ///
    /// ```
    /// let mask = [0.0f32, f32::NEG_INFINITY];
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::AttentionSoftmax::new().mask(&mask).run(&[1.0f32, 2.0, 3.0, 4.0], &mut y, 2, 1, 2)?;
    /// assert_eq!(y, [1.0, 0.0, 1.0, 0.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn mask<M: Element>(mut self, mask: &'a [M]) -> Self {
        self.mask = Some((M::elems(mask), false));
        self
    }

    /// An additive mask per head, `[heads, q_len, kv_len]` (see
    /// [`mask`](AttentionSoftmax::mask)).
    ///
    /// ```
    /// let mask = [0.0f32, f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0];
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::AttentionSoftmax::new().head_mask(&mask).run(&[1.0f32; 4], &mut y, 2, 1, 2)?;
    /// assert_eq!(y, [1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn head_mask<M: Element>(mut self, mask: &'a [M]) -> Self {
        self.mask = Some((M::elems(mask), true));
        self
    }

    /// Elements between the starts of two mask rows (default `kv_len`;
    /// at least `kv_len`).
    ///
    /// ```
    /// let mask = [0.0f32, f32::NEG_INFINITY, 7.0]; // a row of 2 in a stride of 3
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::AttentionSoftmax::new().mask(&mask).mask_stride(3).run(&[0.0f32; 2], &mut y, 1, 1, 2)?;
    /// assert_eq!(y, [1.0, 0.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn mask_stride(mut self, stride: usize) -> Self {
        self.mask_stride = Some(stride);
        self
    }

    /// ALiBi: head `h`'s mask is multiplied by `slopes[h]` (one per head;
    /// needs a mask, which holds the position term).
    ///
    /// ```
    /// let mask = [-1.0f32, 0.0];
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::AttentionSoftmax::new().mask(&mask).alibi_slopes(&[2f32.ln()])
    ///     .run(&[0.0f32; 2], &mut y, 1, 1, 2)?;
    /// assert!((y[1] - 2.0 / 3.0).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn alibi_slopes(mut self, slopes: &'a [f32]) -> Self {
        self.slopes = Some(Slopes::Given(slopes));
        self
    }

    /// ALiBi with ggml's slopes from `max_bias` (`n` the largest power of
    /// two `≤ heads`, `m0 = 2^(−max_bias/n)`, `m1 = 2^(−max_bias/(2n))`; head
    /// `h < n` gets `m0^(h+1)`, the others `m1^(2(h−n)+1)`); needs a mask.
    ///
    /// ```
    /// let mask = [-1.0f32, 0.0];
    /// let mut y = [0.0f32; 2];
    /// // One head: n = 1, slope 2^-max_bias = 1/2.
    /// simd_softmax::AttentionSoftmax::new().mask(&mask).alibi_max_bias(1.0)
    ///     .run(&[0.0f32; 2], &mut y, 1, 1, 2)?;
    /// assert!((y[1] - 1.0 / (1.0 + (-0.5f32).exp())).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn alibi_max_bias(mut self, max_bias: f32) -> Self {
        self.slopes = Some(Slopes::MaxBias(max_bias));
        self
    }

    /// Causal: query `q` sees keys `j ≤ q + q_offset` (`q_offset`: the
    /// cache length before this block of queries; 0 for a prefill from
    /// scratch). The keys after the limit are not read.
    ///
    /// ```
    /// let mut y = [9.0f32; 4];
    /// simd_softmax::AttentionSoftmax::new().causal(0).run(&[5.0f32; 4], &mut y, 1, 2, 2)?;
    /// assert_eq!(y, [1.0, 0.0, 0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn causal(mut self, q_offset: usize) -> Self {
        self.causal = Some(q_offset);
        self
    }

    /// A sliding window of `w ≥ 1` keys: query `q` sees keys `j > q +
    /// q_offset − w` only (with [`causal`](AttentionSoftmax::causal), the
    /// `w` keys up to its limit). The keys before the window are not
    /// read: a 128-key window over an 8192-key cache reads 128 scores.
    ///
    /// ```
    /// let mut y = [9.0f32; 4];
    /// simd_softmax::AttentionSoftmax::new().causal(3).window(2).run(&[0.0f32; 4], &mut y, 1, 1, 4)?;
    /// assert_eq!(y, [0.0, 0.0, 0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn window(mut self, w: usize) -> Self {
        self.window = Some(w);
        self
    }

    /// One sink logit per head: it joins each row's denominator and gets
    /// no output (gpt-oss); `−∞` is no sink.
    ///
    /// ```
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::AttentionSoftmax::new().sinks(&[0.0]).run(&[0.0f32; 2], &mut y, 1, 1, 2)?;
    /// assert!((y[0] - 1.0 / 3.0).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn sinks(mut self, sinks: &'a [f32]) -> Self {
        self.sinks = Some(sinks);
        self
    }

    /// Elements between the starts of two score rows (a KV cache whose
    /// capacity exceeds `kv_len`; default `kv_len`). The elements between
    /// rows are not read, and the last row need not be padded.
    ///
    /// ```
    /// let cache = [1.0f32, 1.0, 42.0]; // one row of 2 in a capacity of 3
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::AttentionSoftmax::new().row_stride(3).run(&cache[..2], &mut y, 1, 1, 2)?;
    /// assert_eq!(y, [0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn row_stride(mut self, stride: usize) -> Self {
        self.row_stride = Some(stride);
        self
    }

    /// Elements between the starts of two output rows (default `kv_len`);
    /// the elements between rows are never written.
    ///
    /// ```
    /// let mut y = [7.0f32; 5];
    /// simd_softmax::AttentionSoftmax::new().out_stride(3).run(&[0.0f32; 4], &mut y, 2, 1, 2)?;
    /// assert_eq!(y, [0.5, 0.5, 7.0, 0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn out_stride(mut self, stride: usize) -> Self {
        self.out_stride = Some(stride);
        self
    }

    /// Runs over a `[heads, q_len, kv_len]` score tensor (rows
    /// [`row_stride`](AttentionSoftmax::row_stride) apart) into `output`
    /// (rows [`out_stride`](AttentionSoftmax::out_stride) apart), one
    /// dispatch for the whole tensor. Nothing is allocated.
    ///
    /// # Errors
    /// Nothing is written when it fails: [`Error::InvalidStride`] for a
    /// stride below `kv_len`; [`Error::AttentionLength`] for scores, output,
    /// mask, slopes or sinks whose length does not match the shape (a
    /// strided buffer may end anywhere from its last row's end to its last
    /// full stride); [`Error::InvalidParameter`] for a NaN scale, a cap that
    /// is not `> 0`, a window of 0, a NaN `max_bias`, or ALiBi without a
    /// mask.
    ///
    /// ```
    /// use simd_softmax::{AttentionSoftmax, Error};
    /// let mut y = [0.0f32; 4];
    /// let err = AttentionSoftmax::new().sinks(&[0.0]).run(&[0.0f32; 4], &mut y, 2, 1, 2);
    /// assert!(matches!(err, Err(Error::AttentionLength { what: "sinks", .. })));
    /// assert_eq!(y, [0.0; 4]);
    /// ```
    pub fn run<I: Element, O: Element>(
        &self,
        scores: &[I],
        output: &mut [O],
        heads: usize,
        q_len: usize,
        kv_len: usize,
    ) -> Result<(), Error> {
        let (o, sh) = self.check(scores.len(), output.len(), heads, q_len, kv_len)?;
        self.dispatch(&o, sh, I::elems(scores), O::elems_mut(output));
        Ok(())
    }

    /// The one dispatch, not generic (compiled once, in this crate).
    #[inline(never)]
    fn dispatch(
        &self,
        o: &AttentionOptions<'_>,
        sh: AttentionShape,
        x: Elems<'_>,
        y: ElemsMut<'_>,
    ) {
        with_kernel!(self.imp, k => k.attention_softmax(o, sh, x, y))
    }

    /// Every argument check; the kernel's options and shape.
    fn check(
        &self,
        scores: usize,
        output: usize,
        heads: usize,
        q_len: usize,
        kv_len: usize,
    ) -> Result<(AttentionOptions<'a>, AttentionShape), Error> {
        if self.scale.is_nan() {
            return Err(Error::invalid_parameter("scale", self.scale, "not NaN"));
        }
        if let Some(c) = self.softcap
            && (c.is_nan() || c <= 0.0)
        {
            return Err(Error::invalid_parameter("softcap", c, "> 0"));
        }
        if self.window == Some(0) {
            return Err(Error::invalid_parameter("window", 0, "≥ 1"));
        }
        if let Some(Slopes::MaxBias(b)) = self.slopes
            && b.is_nan()
        {
            return Err(Error::invalid_parameter("alibi_max_bias", b, "not NaN"));
        }
        if self.slopes.is_some() && self.mask.is_none() {
            // (The value: the mask's length, 0.)
            return Err(Error::invalid_parameter(
                "alibi",
                0,
                "a mask for the slopes to multiply",
            ));
        }
        let stride = |s: Option<usize>| -> Result<usize, Error> {
            let s = s.unwrap_or(kv_len);
            if s < kv_len {
                return Err(Error::InvalidStride {
                    row_len: kv_len,
                    stride: s,
                });
            }
            Ok(s)
        };
        let sh = AttentionShape {
            heads,
            q_len,
            kv_len,
            row_stride: stride(self.row_stride)?,
            out_stride: stride(self.out_stride)?,
        };
        let rows = heads.checked_mul(q_len);
        fits("scores", scores, rows, kv_len, sh.row_stride)?;
        fits("output", output, rows, kv_len, sh.out_stride)?;
        let mask = match self.mask {
            None => None,
            Some((elems, per_head)) => {
                let stride = stride(self.mask_stride)?;
                let mrows = if per_head { rows } else { Some(q_len) };
                fits("mask", elems.len(), mrows, kv_len, stride)?;
                Some(AttentionMask {
                    elems,
                    stride,
                    per_head,
                })
            }
        };
        if let Some(Slopes::Given(v)) = self.slopes {
            exact("alibi_slopes", v.len(), heads)?;
        }
        if let Some(v) = self.sinks {
            exact("sinks", v.len(), heads)?;
        }
        let o = AttentionOptions {
            scale: self.scale,
            softcap: self.softcap,
            mask,
            slopes: self.slopes.unwrap_or(Slopes::One),
            causal: self.causal,
            window: self.window,
            sinks: self.sinks,
        };
        Ok((o, sh))
    }
}

/// `len` must be exactly `expected`.
fn exact(what: &'static str, len: usize, expected: usize) -> Result<(), Error> {
    match len == expected {
        true => Ok(()),
        false => Err(Error::AttentionLength {
            what,
            len,
            min: Some(expected),
            max: Some(expected),
        }),
    }
}

/// A buffer of `len` holding `rows` rows of `kv_len`, `stride` apart: from
/// the end of the last row to the end of its full stride (exactly
/// `rows·kv_len` when contiguous).
fn fits(
    what: &'static str,
    len: usize,
    rows: Option<usize>,
    kv_len: usize,
    stride: usize,
) -> Result<(), Error> {
    let (min, max) = match rows {
        Some(0) => (Some(0), Some(0)),
        Some(r) => (
            (r - 1)
                .checked_mul(stride)
                .and_then(|v| v.checked_add(kv_len)),
            r.checked_mul(stride),
        ),
        None => (None, None),
    };
    match (min, max) {
        (Some(lo), Some(hi)) if lo <= len && len <= hi => Ok(()),
        (Some(lo), None) if lo <= len => Ok(()),
        _ => Err(Error::AttentionLength {
            what,
            len,
            min,
            max,
        }),
    }
}
