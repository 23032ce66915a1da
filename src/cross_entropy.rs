//! Cross-entropy over rows of logits (a classifier's or a language model's
//! training loss): the loss, each row's loss, the gradient with respect to
//! the logits, and the loss with its gradient from one state pass and one
//! output pass per row. This module owns the argument checks of these
//! functions, the per-row loss from a row's `(max, Σ)` state, the target
//! entry of the gradient, and their `rayon` forms; the passes are the
//! kernels' (`Kernel::log_row_state`, the two-pass regime's first pass,
//! and `Kernel::softmax_affine_piece`, its output pass with the affine
//! map `g·p − g·ε/N` applied in the store).
//!
//! Per row `x` of `N` logits with target `t` and label smoothing `ε`
//! (`q = (1 − ε)·onehot(t) + ε/N`):
//!
//! ```text
//! state   (m, Σ)  = max x, Σ e^(x − m)           one pass (log-softmax's split sum)
//! loss            = ln Σ + (1 − ε)·(m − x_t) + ε·(m − mean x)     in f64
//! gradient        = g·(S(x) − q): g·p_j − g·ε/N   one pass (fused in the store)
//!                   then entry t from (m, Σ) in f64
//! ```
//!
//! The loss is `logsumexp(x) − Σ q_j x_j` written from the state, never
//! `−ln` of a rounded probability; the mean is an f64 sum in row order
//! (so the `rayon` forms, which sum the same f64 row losses in the same
//! order, give the same bits). With `ε > 0` the row's mean costs one more
//! read of it (an f64 sum).
//!
//! Special rows follow log-softmax's limits (SPEC §3): the loss is
//! `−Σ q_j·log_softmax(x)_j` with `0·(−∞) = 0`, the gradient `g·(S(x) −
//! q)` with softmax's special results:
//! - a NaN logit: the row's loss and every gradient entry NaN;
//! - `+∞` logits (`k` of them): `ln k` when all of `q`'s mass lies on
//!   them (`ε = 0` and `x_t = +∞`, or every entry `+∞`), `+∞` otherwise;
//!   `S(x)` is `1/k` on them and 0 elsewhere;
//! - a `−∞` target logit (a masked class) in a finite row: `+∞`; with
//!   `ε > 0` any `−∞` logit gives `+∞`; a fully masked row: `+∞`, its
//!   gradient `−g·q` (softmax's zeros minus `q`).

use crate::api::check_rows;
use crate::dispatch::with_kernel;
use crate::{Element, Error, Softmax};
use simd_softmax_kernels::convert::{Bf16, F16, HalfFormat};
use simd_softmax_kernels::isa::Isa;
use simd_softmax_kernels::plan::STREAM_MIN;
use simd_softmax_kernels::{Elems, ElemsMut, Kernel, RowState, TILE};

/// The options of the cross-entropy functions: which target marks a row
/// to ignore (as PyTorch's `ignore_index`, e.g. padding), and the label
/// smoothing `ε ∈ [0, 1]` (the target distribution is `(1 − ε)·onehot +
/// ε/N`). The default is no ignored index and no smoothing.
///
/// ```
/// use simd_softmax::CrossEntropyOptions;
/// let o = CrossEntropyOptions { ignore_index: Some(0), ..Default::default() };
/// assert_eq!(o.label_smoothing, 0.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropyOptions {
    /// Rows whose target equals it contribute no loss, are not counted in
    /// the mean, and get a zero gradient. Need not be below `row_len`.
    pub ignore_index: Option<u32>,
    /// `ε` in `[0, 1]`: the weight moved from the target to the uniform
    /// distribution.
    pub label_smoothing: f32,
}

/// The number of rows, after every check a cross-entropy call makes
/// (the same for all forms, serial or parallel).
fn check(
    len: usize,
    row_len: usize,
    targets: &[u32],
    o: &CrossEntropyOptions,
) -> Result<usize, Error> {
    check_rows(len, row_len)?;
    let rows = len / row_len;
    if targets.len() != rows {
        return Err(Error::TargetsLength {
            rows,
            targets: targets.len(),
        });
    }
    if !(0.0..=1.0).contains(&o.label_smoothing) {
        return Err(Error::invalid_parameter(
            "label_smoothing",
            o.label_smoothing,
            "ε in [0, 1]",
        ));
    }
    for (row, &target) in targets.iter().enumerate() {
        if Some(target) != o.ignore_index && target as usize >= row_len {
            return Err(Error::TargetOutOfRange {
                row,
                target,
                row_len,
            });
        }
    }
    Ok(rows)
}

/// One call's rows: what to read and what to write.
struct Job<'a> {
    x: Elems<'a>,
    row_len: usize,
    targets: &'a [u32],
    o: CrossEntropyOptions,
    /// The gradient's output and `g`.
    grad: Option<(ElemsMut<'a>, f32)>,
    /// Whether the row losses are wanted (else only the gradient).
    loss: bool,
    /// Non-temporal stores for the gradient (the whole call's batch is
    /// out of cache; a `rayon` piece passes the whole batch's answer).
    stream: bool,
}

/// Each row's loss to `put(row, loss)` (not for ignored rows), and the
/// gradient where asked. `f16`/`bf16` rows are read through a stack tile
/// ([`TILE`] floats: their state by the kernel's half edge, which gives the
/// widened row's bits; the gradient and the mean piece by piece, each
/// element as the f32 row gives it), so no call allocates.
fn run_rows<S: Isa>(k: Kernel<S>, job: Job<'_>, put: &mut dyn FnMut(usize, f64)) {
    let Job {
        x,
        row_len: n,
        targets,
        o,
        mut grad,
        loss,
        stream,
    } = job;
    let mut xt = [0.0f32; TILE];
    let mut yt = [0.0f32; TILE];
    for (r, &t) in targets.iter().enumerate() {
        let span = r * n..(r + 1) * n;
        let ignored = Some(t) == o.ignore_index;
        if ignored {
            match &mut grad {
                Some((ElemsMut::F32(y), _)) => y[span].fill(0.0),
                Some((ElemsMut::F16(y) | ElemsMut::Bf16(y), _)) => y[span].fill(0),
                None => {}
            }
            continue;
        }
        let row = match x {
            Elems::F32(x) => Elems::F32(&x[span.clone()]),
            Elems::F16(h) => Elems::F16(&h[span.clone()]),
            Elems::Bf16(h) => Elems::Bf16(&h[span.clone()]),
        };
        let t = t as usize;
        let st = k.log_row_state_elems(row);
        let xt_of = |i: usize| match row {
            Elems::F32(x) => x[i],
            Elems::F16(h) => F16::widen(h[i]),
            Elems::Bf16(h) => Bf16::widen(h[i]),
        };
        if let Some((y, g)) = &mut grad {
            let g = *g;
            let offset = -(g as f64 * o.label_smoothing as f64 / n as f64) as f32;
            let target = target_grad(st, n, xt_of(t), o.label_smoothing, g);
            if let (Elems::F32(row), ElemsMut::F32(y)) = (row, &mut *y) {
                let y = &mut y[span];
                k.softmax_affine_piece(row, y, st, g, offset, stream);
                y[t] = target;
            } else {
                // Piece by piece through the tiles: the f32 input as it
                // is or widened, the f32 output in place or the tile
                // narrowed (the affine piece is elementwise, so the bits
                // are the whole row's).
                let half_f16 = matches!(y, ElemsMut::F16(_));
                for i in (0..n).step_by(TILE) {
                    let len = TILE.min(n - i);
                    let piece = widened(row, i, len, &mut xt);
                    match y {
                        ElemsMut::F32(y) => {
                            let y = &mut y[span.start + i..][..len];
                            k.softmax_affine_piece(piece, y, st, g, offset, stream);
                            if (i..i + len).contains(&t) {
                                y[t - i] = target;
                            }
                        }
                        ElemsMut::F16(h) | ElemsMut::Bf16(h) => {
                            let yt = &mut yt[..len];
                            k.softmax_affine_piece(piece, yt, st, g, offset, false);
                            if (i..i + len).contains(&t) {
                                yt[t - i] = target;
                            }
                            let h = &mut h[span.start + i..][..len];
                            if half_f16 {
                                narrow::<F16>(yt, h);
                            } else {
                                narrow::<Bf16>(yt, h);
                            }
                        }
                    }
                }
            }
        }
        if loss {
            let sum = || {
                let mut acc = Sum8::default();
                for i in (0..n).step_by(TILE) {
                    acc.add(widened(row, i, TILE.min(n - i), &mut xt));
                }
                acc.total()
            };
            put(r, row_loss(st, n, xt_of(t), o.label_smoothing, sum));
        }
    }
}

/// Elements `i..i + len` of `row` as f32: the f32 row's own, or the half
/// row's widened into `tile`.
fn widened<'b>(row: Elems<'b>, i: usize, len: usize, tile: &'b mut [f32; TILE]) -> &'b [f32] {
    match row {
        Elems::F32(x) => &x[i..i + len],
        Elems::F16(h) => widen::<F16>(&h[i..i + len], &mut tile[..len]),
        Elems::Bf16(h) => widen::<Bf16>(&h[i..i + len], &mut tile[..len]),
    }
}

/// `h` widened into `buf` (one loop per format, so that it vectorizes).
fn widen<'b, H: HalfFormat>(h: &[u16], buf: &'b mut [f32]) -> &'b [f32] {
    for (d, &v) in buf.iter_mut().zip(h) {
        *d = H::widen(v);
    }
    buf
}

/// `v` rounded into `out` (one loop per format, so that it vectorizes).
fn narrow<H: HalfFormat>(v: &[f32], out: &mut [u16]) {
    for (d, &v) in out.iter_mut().zip(v) {
        *d = H::narrow(v);
    }
}

/// The loss of a row of `n` with target `t` (whose logit is `xt`) from its
/// complete state (see the module doc for the special rows), in f64;
/// `sum` gives the row's f64 sum when label smoothing needs its mean.
fn row_loss(st: RowState, n: usize, xt: f32, eps: f32, sum: impl FnOnce() -> f64) -> f64 {
    let (n, e, m) = (n as f64, eps as f64, st.m);
    if m.is_nan() {
        return f64::NAN;
    }
    if m == f32::INFINITY {
        // log_softmax: −ln k at the k `+∞` entries, −∞ elsewhere.
        let k = st.sum.k;
        let target_off = if xt == f32::INFINITY { 0.0 } else { 1.0 - e };
        let off_mass = target_off + e * (n - k) / n;
        return if off_mass > 0.0 {
            f64::INFINITY
        } else {
            libm::log(k)
        };
    }
    if m == f32::NEG_INFINITY {
        return f64::INFINITY; // log_softmax is −∞ everywhere
    }
    let m = m as f64;
    let mut loss = st.sum.ln();
    if e < 1.0 {
        loss += (1.0 - e) * (m - xt as f64);
    }
    if e > 0.0 {
        loss += e * (m - sum() / n);
    }
    loss
}

/// `Σ x` in f64, eight independent sums (so that it vectorizes), fed in
/// pieces whose lengths are multiples of 8 but the last: the same sums,
/// and so the same bits, as one pass over the row.
#[derive(Default)]
struct Sum8 {
    acc: [f64; 8],
    tail: f64,
}

impl Sum8 {
    fn add(&mut self, x: &[f32]) {
        let mut chunks = x.chunks_exact(8);
        for c in &mut chunks {
            for (a, &v) in self.acc.iter_mut().zip(c) {
                *a += v as f64;
            }
        }
        self.tail += chunks.remainder().iter().map(|&v| v as f64).sum::<f64>();
    }

    fn total(&self) -> f64 {
        self.acc.iter().sum::<f64>() + self.tail
    }
}

/// The gradient's target entry `g·(p_t − q_t)`, in f64 from the state and
/// rounded once: at the row's max (`e_t = 1`), `1 − p_t` is the other
/// terms' sum over `Σ`, kept exact by the split sum (`(k − 1) + δ`), not
/// `1 − fl(p_t)`.
fn target_grad(st: RowState, n: usize, xt: f32, eps: f32, g: f32) -> f32 {
    let (n, e, g) = (n as f64, eps as f64, g as f64);
    // p_t and 1 − p_t.
    let (p, rest) = if st.m.is_nan() {
        (f64::NAN, f64::NAN)
    } else if st.m == f32::INFINITY {
        let p = if xt == f32::INFINITY {
            1.0 / st.sum.k
        } else {
            0.0
        };
        (p, 1.0 - p)
    } else if st.m == f32::NEG_INFINITY {
        (0.0, 1.0)
    } else {
        let total = st.sum.total();
        let (et, rest) = if xt == st.m && st.sum.k >= 1.0 {
            (1.0, (st.sum.k - 1.0) + st.sum.delta)
        } else {
            let et = libm::exp(xt as f64 - st.m as f64);
            (et, total - et)
        };
        (et / total, rest / total)
    };
    let mut d = -(1.0 - e) * rest;
    if e > 0.0 {
        d += e * (p - 1.0 / n);
    }
    (g * d) as f32
}

/// The mean of the row losses `put` received, summed in row order.
#[derive(Default)]
struct Mean {
    sum: f64,
    count: usize,
}

impl Mean {
    fn add(&mut self, loss: f64) {
        self.sum += loss;
        self.count += 1;
    }
    /// NaN for no rows (every one ignored), as PyTorch.
    fn get(&self) -> f32 {
        (self.sum / self.count as f64) as f32
    }
}

impl Softmax {
    /// The rows of a checked job, on this engine's backend (not generic:
    /// compiled once, the element types a run-time tag).
    #[inline(never)]
    fn ce_rows(&self, job: Job<'_>, put: &mut dyn FnMut(usize, f64)) {
        with_kernel!(self.imp, k => run_rows(k, job, put))
    }

    /// The mean cross-entropy of the rows of `logits` (row-major, rows of
    /// `row_len`) against `targets` (one class index per row): `ln Σ e^x −
    /// Σ_j q_j x_j` per row, averaged over the rows whose target is not
    /// `options.ignore_index`; NaN when every row is ignored (as PyTorch).
    /// One pass per row (its max and `Σ e^(x − max)`); see the module
    /// documentation of `src/cross_entropy.rs` and the README for special
    /// values.
    ///
    /// # Errors
    /// [`Error::InvalidRowLen`], [`Error::TargetsLength`],
    /// [`Error::InvalidParameter`] (label smoothing), [`Error::TargetOutOfRange`].
    ///
    /// ```
    /// use simd_softmax::{CrossEntropyOptions, Softmax};
    /// let logits = [0.0f32, 0.0, 5.0, 5.0];
    /// let loss = Softmax::new().cross_entropy(&logits, 2, &[0, 1], CrossEntropyOptions::default())?;
    /// assert!((loss - std::f32::consts::LN_2).abs() < 1e-7);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn cross_entropy<I: Element>(
        &self,
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
    ) -> Result<f32, Error> {
        check(logits.len(), row_len, targets, &options)?;
        let mut mean = Mean::default();
        let job = Job {
            x: I::elems(logits),
            row_len,
            targets,
            o: options,
            grad: None,
            loss: true,
            stream: false,
        };
        self.ce_rows(job, &mut |_, l| mean.add(l));
        Ok(mean.get())
    }

    /// Each row's cross-entropy into `losses` (one per row; 0 for an
    /// ignored row), as [`Softmax::cross_entropy`] computes it before the
    /// mean (rounded once to f32).
    ///
    /// # Errors
    /// As [`Softmax::cross_entropy`], and [`Error::LossesLength`];
    /// `losses` is then untouched.
    ///
    /// ```
    /// use simd_softmax::{CrossEntropyOptions, Softmax};
    /// let o = CrossEntropyOptions { ignore_index: Some(9), ..Default::default() };
    /// let mut losses = [1.0f32; 2];
    /// Softmax::new().cross_entropy_rows(&[0.0f32, 0.0, 1.0, 2.0], 2, &[1, 9], o, &mut losses)?;
    /// assert_eq!(losses, [std::f32::consts::LN_2, 0.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn cross_entropy_rows<I: Element>(
        &self,
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
        losses: &mut [f32],
    ) -> Result<(), Error> {
        let rows = check(logits.len(), row_len, targets, &options)?;
        check_losses(rows, losses.len())?;
        losses.fill(0.0);
        let job = Job {
            x: I::elems(logits),
            row_len,
            targets,
            o: options,
            grad: None,
            loss: true,
            stream: false,
        };
        self.ce_rows(job, &mut |r, l| losses[r] = l as f32);
        Ok(())
    }

    /// The gradient of `grad_scale ×` each row's cross-entropy with
    /// respect to its logits: `dlogits = grad_scale·(S(x) − q)` per row,
    /// `q` the one-hot target, or `(1 − ε)·onehot + ε/N` with label
    /// smoothing `ε`; 0 for an ignored row. For the gradient of the mean
    /// loss, `grad_scale` is 1 over the number of rows not ignored. One
    /// pass for the row's `(max, Σ)`, one that writes the gradient
    /// (softmax's output pass with `grad_scale·p − grad_scale·ε/N` fused
    /// into its stores), then the target entry, computed from the state in
    /// f64 (exact where `p_t ≈ 1`).
    ///
    /// # Errors
    /// As [`Softmax::cross_entropy`], and [`Error::LengthMismatch`] when
    /// `dlogits` and `logits` differ in length; `dlogits` is then
    /// untouched.
    ///
    /// ```
    /// use simd_softmax::{CrossEntropyOptions, Softmax};
    /// let mut d = [0.0f32; 2];
    /// Softmax::new().cross_entropy_backward(&[0.0f32, 0.0], 2, &[1], CrossEntropyOptions::default(), 1.0, &mut d)?;
    /// assert_eq!(d, [0.5, -0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn cross_entropy_backward<I: Element, O: Element>(
        &self,
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
        grad_scale: f32,
        dlogits: &mut [O],
    ) -> Result<(), Error> {
        check(logits.len(), row_len, targets, &options)?;
        crate::api::check_len(logits.len(), dlogits.len())?;
        let job = Job {
            x: I::elems(logits),
            row_len,
            targets,
            o: options,
            grad: Some((O::elems_mut(dlogits), grad_scale)),
            loss: false,
            stream: logits.len() >= STREAM_MIN,
        };
        self.ce_rows(job, &mut |_, _| {});
        Ok(())
    }

    /// [`Softmax::cross_entropy`] and [`Softmax::cross_entropy_backward`]
    /// in one call, from one state pass and one gradient pass per row
    /// (what a training step calls): returns the mean loss and writes
    /// `grad_scale·(S(x) − q)` to `dlogits`. Both are the bits the two
    /// separate calls give.
    ///
    /// # Errors
    /// As [`Softmax::cross_entropy_backward`]; `dlogits` is then untouched.
    ///
    /// ```
    /// use simd_softmax::{CrossEntropyOptions, Softmax};
    /// let (logits, targets) = ([1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 0]);
    /// let mut d = [0.0f32; 6];
    /// let loss = Softmax::new().cross_entropy_with_grad(
    ///     &logits, 3, &targets, CrossEntropyOptions::default(), 0.5, &mut d)?;
    /// assert!(loss > 0.0);
    /// // Each row's gradient sums to 0.
    /// assert!(d[..3].iter().sum::<f32>().abs() < 1e-7);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn cross_entropy_with_grad<I: Element, O: Element>(
        &self,
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
        grad_scale: f32,
        dlogits: &mut [O],
    ) -> Result<f32, Error> {
        check(logits.len(), row_len, targets, &options)?;
        crate::api::check_len(logits.len(), dlogits.len())?;
        let mut mean = Mean::default();
        let job = Job {
            x: I::elems(logits),
            row_len,
            targets,
            o: options,
            grad: Some((O::elems_mut(dlogits), grad_scale)),
            loss: true,
            stream: logits.len() >= STREAM_MIN,
        };
        self.ce_rows(job, &mut |_, l| mean.add(l));
        Ok(mean.get())
    }
}

fn check_losses(rows: usize, losses: usize) -> Result<(), Error> {
    if rows == losses {
        Ok(())
    } else {
        Err(Error::LossesLength { rows, losses })
    }
}

/// [`Softmax::cross_entropy`] on the default backend: the mean loss over
/// the rows not ignored (NaN if all are).
///
/// ```
/// use simd_softmax::{cross_entropy, CrossEntropyOptions};
/// let o = CrossEntropyOptions { ignore_index: Some(u32::MAX), label_smoothing: 0.1 };
/// let loss = cross_entropy(&[2.0f32, 1.0, 0.0, 0.0], 2, &[0, u32::MAX], o)?;
/// assert!(loss > 0.0);
/// assert!(cross_entropy(&[0.0f32; 2], 2, &[u32::MAX], o)?.is_nan());
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn cross_entropy<I: Element>(
    logits: &[I],
    row_len: usize,
    targets: &[u32],
    options: CrossEntropyOptions,
) -> Result<f32, Error> {
    Softmax::new().cross_entropy(logits, row_len, targets, options)
}

/// [`Softmax::cross_entropy_rows`] on the default backend.
///
/// ```
/// use simd_softmax::{cross_entropy_rows, CrossEntropyOptions};
/// let mut l = [0.0f32; 1];
/// cross_entropy_rows(&[0.0f32; 4], 4, &[3], CrossEntropyOptions::default(), &mut l)?;
/// assert!((l[0] - 4f32.ln()).abs() < 1e-6);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn cross_entropy_rows<I: Element>(
    logits: &[I],
    row_len: usize,
    targets: &[u32],
    options: CrossEntropyOptions,
    losses: &mut [f32],
) -> Result<(), Error> {
    Softmax::new().cross_entropy_rows(logits, row_len, targets, options, losses)
}

/// [`Softmax::cross_entropy_backward`] on the default backend.
///
/// ```
/// use simd_softmax::{cross_entropy_backward, CrossEntropyOptions, Error};
/// let mut d = [9.0f32; 2];
/// let bad = cross_entropy_backward(&[0.0f32; 2], 2, &[2], CrossEntropyOptions::default(), 1.0, &mut d);
/// assert_eq!(bad, Err(Error::TargetOutOfRange { row: 0, target: 2, row_len: 2 }));
/// assert_eq!(d, [9.0; 2]);
/// ```
pub fn cross_entropy_backward<I: Element, O: Element>(
    logits: &[I],
    row_len: usize,
    targets: &[u32],
    options: CrossEntropyOptions,
    grad_scale: f32,
    dlogits: &mut [O],
) -> Result<(), Error> {
    Softmax::new().cross_entropy_backward(logits, row_len, targets, options, grad_scale, dlogits)
}

/// [`Softmax::cross_entropy_with_grad`] on the default backend: the mean
/// loss, and `grad_scale·(S(x) − q)` in `dlogits`.
///
/// ```
/// use half::bf16;
/// use simd_softmax::{cross_entropy_with_grad, CrossEntropyOptions};
/// let logits: Vec<bf16> = [0.0f32, 0.0].iter().map(|&v| bf16::from_f32(v)).collect();
/// let mut d = [bf16::ZERO; 2];
/// let loss = cross_entropy_with_grad(&logits, 2, &[0], CrossEntropyOptions::default(), 1.0, &mut d)?;
/// assert!((loss - std::f32::consts::LN_2).abs() < 1e-7);
/// assert_eq!(d, [bf16::from_f32(-0.5), bf16::from_f32(0.5)]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn cross_entropy_with_grad<I: Element, O: Element>(
    logits: &[I],
    row_len: usize,
    targets: &[u32],
    options: CrossEntropyOptions,
    grad_scale: f32,
    dlogits: &mut [O],
) -> Result<f32, Error> {
    Softmax::new().cross_entropy_with_grad(logits, row_len, targets, options, grad_scale, dlogits)
}

#[cfg(feature = "rayon")]
mod par {
    //! The `rayon` forms: rows split over threads in groups of whole
    //! rows; each row's loss and gradient are one thread's bits, and the
    //! mean sums the f64 row losses in row order on the calling thread.

    use super::{CrossEntropyOptions, Job, Mean, check, check_losses};
    use crate::{Element, Error, Softmax};
    use rayon::prelude::*;
    use simd_softmax_kernels::plan::STREAM_MIN;

    /// Rows per task: about four tasks per thread, at least
    /// [`crate::PAR_MIN`] elements each.
    fn rows_per_task(rows: usize, row_len: usize) -> usize {
        let per = (rows * row_len)
            .div_ceil(4 * rayon::current_num_threads())
            .max(crate::PAR_MIN);
        per.div_ceil(row_len).max(1)
    }

    /// The row losses (NaN-free marker: `None` for ignored rows) of a
    /// checked call, in row order, the gradient written where asked.
    fn losses<I: Element, O: Element>(
        sm: &Softmax,
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        o: CrossEntropyOptions,
        grad: Option<(&mut [O], f32)>,
        loss: bool,
    ) -> Vec<Option<f64>> {
        let rows = targets.len();
        let per = rows_per_task(rows, row_len);
        let stream = grad.is_some() && logits.len() >= STREAM_MIN;
        let mut out = vec![None; if loss { rows } else { 0 }];
        let sm = *sm;
        let task = |x: &[I], t: &[u32], y: Option<(&mut [O], f32)>, l: &mut [Option<f64>]| {
            let job = Job {
                x: I::elems(x),
                row_len,
                targets: t,
                o,
                grad: y.map(|(y, g)| (O::elems_mut(y), g)),
                loss,
                stream,
            };
            sm.ce_rows(job, &mut |r, v| l[r] = Some(v));
        };
        let xs = logits.par_chunks(per * row_len);
        let ts = targets.par_chunks(per);
        match (grad, loss) {
            (Some((y, g)), true) => xs
                .zip(ts)
                .zip(y.par_chunks_mut(per * row_len))
                .zip(out.par_chunks_mut(per))
                .for_each(|(((x, t), y), l)| task(x, t, Some((y, g)), l)),
            (Some((y, g)), false) => xs
                .zip(ts)
                .zip(y.par_chunks_mut(per * row_len))
                .for_each(|((x, t), y)| task(x, t, Some((y, g)), &mut [])),
            (None, _) => xs
                .zip(ts)
                .zip(out.par_chunks_mut(per))
                .for_each(|((x, t), l)| task(x, t, None, l)),
        }
        out
    }

    fn mean(losses: &[Option<f64>]) -> f32 {
        let mut m = Mean::default();
        for l in losses.iter().flatten() {
            m.add(*l);
        }
        m.get()
    }

    impl Softmax {
        /// [`Softmax::cross_entropy`] with the rows split over rayon's
        /// threads: the same bits (the row losses are summed in row order).
        ///
        /// ```
        /// use simd_softmax::{CrossEntropyOptions, Softmax};
        /// let x: Vec<f32> = (0..1000 * 100).map(|i| (i % 13) as f32).collect();
        /// let t: Vec<u32> = (0..1000).map(|r| r % 100).collect();
        /// let (sm, o) = (Softmax::new(), CrossEntropyOptions::default());
        /// assert_eq!(sm.par_cross_entropy(&x, 100, &t, o)?, sm.cross_entropy(&x, 100, &t, o)?);
        /// # Ok::<(), simd_softmax::Error>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
        pub fn par_cross_entropy<I: Element>(
            &self,
            logits: &[I],
            row_len: usize,
            targets: &[u32],
            options: CrossEntropyOptions,
        ) -> Result<f32, Error> {
            check(logits.len(), row_len, targets, &options)?;
            let l = losses::<I, f32>(self, logits, row_len, targets, options, None, true);
            Ok(mean(&l))
        }

        /// [`Softmax::cross_entropy_rows`] with the rows split over
        /// rayon's threads: the same bits.
        ///
        /// ```
        /// use simd_softmax::{CrossEntropyOptions, Softmax};
        /// let mut l = [0.0f32; 2];
        /// Softmax::new().par_cross_entropy_rows(&[0.0f32; 4], 2, &[0, 1], CrossEntropyOptions::default(), &mut l)?;
        /// assert_eq!(l, [std::f32::consts::LN_2; 2]);
        /// # Ok::<(), simd_softmax::Error>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
        pub fn par_cross_entropy_rows<I: Element>(
            &self,
            logits: &[I],
            row_len: usize,
            targets: &[u32],
            options: CrossEntropyOptions,
            out: &mut [f32],
        ) -> Result<(), Error> {
            let rows = check(logits.len(), row_len, targets, &options)?;
            check_losses(rows, out.len())?;
            let l = losses::<I, f32>(self, logits, row_len, targets, options, None, true);
            for (d, v) in out.iter_mut().zip(l) {
                *d = v.map_or(0.0, |v| v as f32);
            }
            Ok(())
        }

        /// [`Softmax::cross_entropy_backward`] with the rows split over
        /// rayon's threads: the same bits.
        ///
        /// ```
        /// use simd_softmax::{CrossEntropyOptions, Softmax};
        /// let mut d = [0.0f32; 2];
        /// Softmax::new().par_cross_entropy_backward(&[0.0f32; 2], 2, &[0], CrossEntropyOptions::default(), 1.0, &mut d)?;
        /// assert_eq!(d, [-0.5, 0.5]);
        /// # Ok::<(), simd_softmax::Error>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
        pub fn par_cross_entropy_backward<I: Element, O: Element>(
            &self,
            logits: &[I],
            row_len: usize,
            targets: &[u32],
            options: CrossEntropyOptions,
            grad_scale: f32,
            dlogits: &mut [O],
        ) -> Result<(), Error> {
            check(logits.len(), row_len, targets, &options)?;
            crate::api::check_len(logits.len(), dlogits.len())?;
            let grad = Some((dlogits, grad_scale));
            losses(self, logits, row_len, targets, options, grad, false);
            Ok(())
        }

        /// [`Softmax::cross_entropy_with_grad`] with the rows split over
        /// rayon's threads: the same bits.
        ///
        /// ```
        /// use simd_softmax::{CrossEntropyOptions, Softmax};
        /// let mut d = [0.0f32; 2];
        /// let l = Softmax::new().par_cross_entropy_with_grad(&[0.0f32; 2], 2, &[0], CrossEntropyOptions::default(), 1.0, &mut d)?;
        /// assert_eq!((l, d), (std::f32::consts::LN_2, [-0.5, 0.5]));
        /// # Ok::<(), simd_softmax::Error>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
        pub fn par_cross_entropy_with_grad<I: Element, O: Element>(
            &self,
            logits: &[I],
            row_len: usize,
            targets: &[u32],
            options: CrossEntropyOptions,
            grad_scale: f32,
            dlogits: &mut [O],
        ) -> Result<f32, Error> {
            check(logits.len(), row_len, targets, &options)?;
            crate::api::check_len(logits.len(), dlogits.len())?;
            let grad = Some((dlogits, grad_scale));
            let l = losses(self, logits, row_len, targets, options, grad, true);
            Ok(mean(&l))
        }
    }

    /// [`Softmax::par_cross_entropy`] on the default backend.
    ///
    /// ```
    /// let l = simd_softmax::par_cross_entropy(&[0.0f32; 4], 2, &[0, 1], Default::default())?;
    /// assert_eq!(l, std::f32::consts::LN_2);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn par_cross_entropy<I: Element>(
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
    ) -> Result<f32, Error> {
        Softmax::new().par_cross_entropy(logits, row_len, targets, options)
    }

    /// [`Softmax::par_cross_entropy_with_grad`] on the default backend.
    ///
    /// ```
    /// let mut d = [0.0f32; 4];
    /// let l = simd_softmax::par_cross_entropy_with_grad(&[0.0f32; 4], 2, &[0, 1], Default::default(), 0.5, &mut d)?;
    /// assert_eq!((l, d), (std::f32::consts::LN_2, [-0.25, 0.25, 0.25, -0.25]));
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn par_cross_entropy_with_grad<I: Element, O: Element>(
        logits: &[I],
        row_len: usize,
        targets: &[u32],
        options: CrossEntropyOptions,
        grad_scale: f32,
        dlogits: &mut [O],
    ) -> Result<f32, Error> {
        Softmax::new()
            .par_cross_entropy_with_grad(logits, row_len, targets, options, grad_scale, dlogits)
    }
}

#[cfg(feature = "rayon")]
pub use par::{par_cross_entropy, par_cross_entropy_with_grad};
