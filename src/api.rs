//! The safe public functions: argument checks (a refused call writes
//! nothing), then one dispatch into the kernel. Each function exists as a
//! [`Softmax`] method (forced backend) and as a free function (the backend of
//! [`Softmax::new`]).

use crate::dispatch::with_kernel;
use crate::{Anchor, Element, Error, Softmax};
use simd_softmax_kernels::fpenv::DefaultEnv;
use simd_softmax_kernels::{Elems, ElemsMut, Terms};

pub(crate) fn check_len(input: usize, output: usize) -> Result<(), Error> {
    if input == output {
        Ok(())
    } else {
        Err(Error::LengthMismatch { input, output })
    }
}

fn check_alpha(alpha: f32) -> Result<(), Error> {
    if alpha.is_nan() {
        Err(Error::NanAlpha)
    } else {
        Ok(())
    }
}

pub(crate) fn check_rows(len: usize, row_len: usize) -> Result<(), Error> {
    if row_len > 0 && len.is_multiple_of(row_len) {
        Ok(())
    } else {
        Err(Error::InvalidRowLen { len, row_len })
    }
}

/// `rows` rows of `row_len`, `stride` apart, in a buffer of `len`: the
/// last row need not be padded to a full stride.
pub(crate) fn check_strided(
    len: usize,
    rows: usize,
    row_len: usize,
    stride: usize,
) -> Result<(), Error> {
    if row_len == 0 || stride < row_len {
        return Err(Error::InvalidStride { row_len, stride });
    }
    if rows == 0 {
        return Ok(());
    }
    let needed = (rows - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(row_len));
    match needed {
        Some(n) if n <= len => Ok(()),
        _ => Err(Error::RowsBeyondBuffer { len, needed }),
    }
}

/// A softmax-shaped operation over rows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Softmax,
    LogSoftmax,
}

/// The kernel entry points of the element-generic functions, non-generic
/// (the element types are a runtime `Elems` tag): compiled once, here, so
/// that a crate calling `softmax::<I, O>` instantiates only the thin
/// generic wrapper, not every regime on every backend.
impl Softmax {
    /// `op` over each `row_len`-long row of `x` into `y` (checked).
    #[inline(never)]
    pub(crate) fn rows_elems(&self, op: Op, x: Elems<'_>, y: ElemsMut<'_>, row_len: usize) {
        match op {
            Op::Softmax => with_kernel!(self.imp, k => k.softmax_rows_elems(x, y, row_len)),
            Op::LogSoftmax => with_kernel!(self.imp, k => k.log_softmax_rows_elems(x, y, row_len)),
        }
    }

    /// `op` over `rows` strided rows from `x` to `y` (checked).
    #[inline(never)]
    pub(crate) fn rows_strided_elems(
        &self,
        op: Op,
        x: Elems<'_>,
        y: ElemsMut<'_>,
        rows: usize,
        row_len: usize,
        (xs, ys): (usize, usize),
    ) {
        match op {
            Op::Softmax => with_kernel!(self.imp, k => {
                k.softmax_rows_strided_elems(x, y, rows, row_len, xs, ys)
            }),
            Op::LogSoftmax => with_kernel!(self.imp, k => {
                k.log_softmax_rows_strided_elems(x, y, rows, row_len, xs, ys)
            }),
        }
    }

    /// `op` over each `row_len`-long row of `d`, in place (checked).
    #[inline(never)]
    fn rows_elems_in_place(&self, op: Op, d: ElemsMut<'_>, row_len: usize) {
        match op {
            Op::Softmax => with_kernel!(self.imp, k => k.softmax_rows_elems_in_place(d, row_len)),
            Op::LogSoftmax => {
                with_kernel!(self.imp, k => k.log_softmax_rows_elems_in_place(d, row_len))
            }
        }
    }

    #[inline(never)]
    fn logsumexp_elems(&self, x: Elems<'_>) -> f32 {
        with_kernel!(self.imp, k => k.logsumexp_elems(x))
    }
}

impl Softmax {
    /// `output = softmax(input)`: `e^(x−max) / Σ e^(x−max)`.
    ///
    /// ```
    /// let sm = simd_softmax::Softmax::new();
    /// let mut y = [0.0f32; 2];
    /// sm.softmax(&[0.0, 0.0], &mut y)?;
    /// assert_eq!(y, [0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[inline]
    pub fn softmax<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        let (x, y, n) = (I::elems(input), O::elems_mut(output), input.len());
        self.rows_elems(Op::Softmax, x, y, n.max(1));
        Ok(())
    }

    /// `data = softmax(data)`.
    ///
    /// ```
    /// let mut x = [1.0f32, 1.0, 1.0, 1.0];
    /// simd_softmax::Softmax::new().softmax_in_place(&mut x);
    /// assert_eq!(x, [0.25; 4]);
    /// ```
    pub fn softmax_in_place<E: Element>(&self, data: &mut [E]) {
        let n = data.len().max(1);
        self.rows_elems_in_place(Op::Softmax, E::elems_mut(data), n);
    }

    /// `output = log_softmax(input)`: `x − max − ln Σ e^(x−max)`.
    ///
    /// ```
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::Softmax::new().log_softmax(&[3.0, 3.0], &mut y)?;
    /// assert!((y[0] + std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[inline]
    pub fn log_softmax<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        let (x, y, n) = (I::elems(input), O::elems_mut(output), input.len());
        self.rows_elems(Op::LogSoftmax, x, y, n.max(1));
        Ok(())
    }

    /// `data = log_softmax(data)`.
    ///
    /// ```
    /// let mut x = [0.0f32; 4];
    /// simd_softmax::Softmax::new().log_softmax_in_place(&mut x);
    /// assert!((x[0] + 4f32.ln()).abs() < 1e-6);
    /// ```
    pub fn log_softmax_in_place<E: Element>(&self, data: &mut [E]) {
        let n = data.len().max(1);
        self.rows_elems_in_place(Op::LogSoftmax, E::elems_mut(data), n);
    }

    /// `ln Σ e^x`, stably; `−∞` for an empty slice.
    ///
    /// ```
    /// let lse = simd_softmax::Softmax::new().logsumexp(&[1000.0, 1000.0]);
    /// assert!((lse - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
    /// ```
    pub fn logsumexp<I: Element>(&self, input: &[I]) -> f32 {
        self.logsumexp_elems(I::elems(input))
    }

    /// Softmax of each `row_len`-long row of a row-major matrix.
    ///
    /// ```
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().softmax_rows(&[0.0, 0.0, 5.0, 5.0], &mut y, 2)?;
    /// assert_eq!(y, [0.5; 4]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[inline]
    pub fn softmax_rows<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        row_len: usize,
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_rows(input.len(), row_len)?;
        let (x, y) = (I::elems(input), O::elems_mut(output));
        self.rows_elems(Op::Softmax, x, y, row_len);
        Ok(())
    }

    /// Softmax of each `row_len`-long row, in place.
    ///
    /// ```
    /// let mut x = [0.0f32, 0.0, 5.0, 5.0];
    /// simd_softmax::Softmax::new().softmax_rows_in_place(&mut x, 2)?;
    /// assert_eq!(x, [0.5; 4]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_rows_in_place<E: Element>(
        &self,
        data: &mut [E],
        row_len: usize,
    ) -> Result<(), Error> {
        check_rows(data.len(), row_len)?;
        self.rows_elems_in_place(Op::Softmax, E::elems_mut(data), row_len);
        Ok(())
    }

    /// Log-softmax of each `row_len`-long row of a row-major matrix.
    ///
    /// ```
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().log_softmax_rows(&[1.0, 1.0, 2.0, 2.0], &mut y, 2)?;
    /// assert!(y.iter().all(|v| (v + std::f32::consts::LN_2).abs() < 1e-6));
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[inline]
    pub fn log_softmax_rows<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        row_len: usize,
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_rows(input.len(), row_len)?;
        let (x, y) = (I::elems(input), O::elems_mut(output));
        self.rows_elems(Op::LogSoftmax, x, y, row_len);
        Ok(())
    }

    /// Softmax of `rows` rows of `row_len` whose starts are
    /// `input_stride` elements apart in `input` and `output_stride` apart
    /// in `output` (a KV cache whose capacity exceeds its current length):
    /// row `r` is `input[r·input_stride..][..row_len]` and goes to
    /// `output[r·output_stride..][..row_len]`. The elements between rows
    /// are neither read nor written, and the last row need not be padded to
    /// a full stride. Each row's result is the one
    /// [`Softmax::softmax_rows`] gives it, bit for bit.
    ///
    /// Errors: [`Error::InvalidStride`] for `row_len == 0` or a stride
    /// shorter than a row, [`Error::RowsBeyondBuffer`] where the rows do
    /// not fit a buffer; the output is then untouched.
    ///
    /// ```
    /// // Two rows of 2 in a cache of capacity 3, written packed.
    /// let cache = [0.0f32, 0.0, 9.0, 5.0, 5.0];
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().softmax_rows_strided(&cache, &mut y, 2, 2, 3, 2)?;
    /// assert_eq!(y, [0.5; 4]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_rows_strided<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        rows: usize,
        row_len: usize,
        input_stride: usize,
        output_stride: usize,
    ) -> Result<(), Error> {
        let strides = (input_stride, output_stride);
        self.rows_strided(Op::Softmax, input, output, rows, row_len, strides)
    }

    /// Log-softmax of strided rows (see [`Softmax::softmax_rows_strided`]).
    ///
    /// ```
    /// let cache = [1.0f32, 1.0, 0.0, 2.0, 2.0, 0.0];
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().log_softmax_rows_strided(&cache, &mut y, 2, 2, 3, 2)?;
    /// assert!(y.iter().all(|v| (v + std::f32::consts::LN_2).abs() < 1e-6));
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn log_softmax_rows_strided<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        rows: usize,
        row_len: usize,
        input_stride: usize,
        output_stride: usize,
    ) -> Result<(), Error> {
        let strides = (input_stride, output_stride);
        self.rows_strided(Op::LogSoftmax, input, output, rows, row_len, strides)
    }

    /// `op` over strided rows: the checks, then the kernel.
    fn rows_strided<I: Element, O: Element>(
        &self,
        op: Op,
        input: &[I],
        output: &mut [O],
        rows: usize,
        row_len: usize,
        (xs, ys): (usize, usize),
    ) -> Result<(), Error> {
        check_strided(input.len(), rows, row_len, xs)?;
        check_strided(output.len(), rows, row_len, ys)?;
        let (x, y) = (I::elems(input), O::elems_mut(output));
        self.rows_strided_elems(op, x, y, rows, row_len, (xs, ys));
        Ok(())
    }

    /// Log-softmax of each `row_len`-long row, in place.
    ///
    /// ```
    /// let mut x = [1.0f32, 1.0, 2.0, 2.0];
    /// simd_softmax::Softmax::new().log_softmax_rows_in_place(&mut x, 2)?;
    /// assert!(x.iter().all(|v| (v + std::f32::consts::LN_2).abs() < 1e-6));
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn log_softmax_rows_in_place<E: Element>(
        &self,
        data: &mut [E],
        row_len: usize,
    ) -> Result<(), Error> {
        check_rows(data.len(), row_len)?;
        let d = E::elems_mut(data);
        self.rows_elems_in_place(Op::LogSoftmax, d, row_len);
        Ok(())
    }

    /// `output = softmax(alpha · input)`: `alpha` is the inverse temperature.
    /// Exact limits: `+∞` shares the mass among the tied maxima, `0` gives
    /// the uniform `1/N`, negative values give the softmin, `−∞` shares
    /// among the tied minima. A NaN `alpha` is [`Error::NanAlpha`].
    ///
    /// ```
    /// let sm = simd_softmax::Softmax::new();
    /// let x = [1.0f32, 3.0, 3.0];
    /// let mut y = [0.0f32; 3];
    /// sm.softmax_scaled(&x, &mut y, f32::INFINITY)?;
    /// assert_eq!(y, [0.0, 0.5, 0.5]);
    /// sm.softmax_scaled(&x, &mut y, 0.0)?;
    /// assert_eq!(y, [1.0 / 3.0; 3]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_scaled(
        &self,
        input: &[f32],
        output: &mut [f32],
        alpha: f32,
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_alpha(alpha)?;
        with_kernel!(self.imp, k => k.softmax_scaled(input, output, alpha));
        Ok(())
    }

    /// [`Softmax::softmax_scaled`] of each `row_len`-long row.
    ///
    /// ```
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().softmax_scaled_rows(&[0.0, 1.0, 5.0, 2.0], &mut y, 2, -f32::INFINITY)?;
    /// assert_eq!(y, [1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_scaled_rows(
        &self,
        input: &[f32],
        output: &mut [f32],
        row_len: usize,
        alpha: f32,
    ) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_rows(input.len(), row_len)?;
        check_alpha(alpha)?;
        with_kernel!(self.imp, k => k.softmax_scaled_rows(input, output, row_len, alpha));
        Ok(())
    }

    /// The backward pass: `dx = Jᵀ dy = y ⊙ (dy − ⟨dy, y⟩)` for `y = softmax(x)`.
    ///
    /// ```
    /// let y = [0.25f32, 0.75];
    /// let mut dx = [0.0f32; 2];
    /// simd_softmax::Softmax::new().softmax_backward(&y, &[1.0, 0.0], &mut dx)?;
    /// assert!((dx[0] - 0.1875).abs() < 1e-7 && (dx[1] + 0.1875).abs() < 1e-7);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), Error> {
        if y.len() != dy.len() || y.len() != dx.len() {
            return Err(Error::GradientLength {
                y: y.len(),
                dy: dy.len(),
                dx: dx.len(),
            });
        }
        with_kernel!(self.imp, k => k.softmax_backward(y, dy, dx));
        Ok(())
    }

    /// The Jacobian `J = diag(y) − y yᵀ` of the softmax at `y`, `N×N` row-major.
    ///
    /// ```
    /// let mut j = [0.0f32; 4];
    /// simd_softmax::Softmax::new().jacobian(&[0.5, 0.5], &mut j)?;
    /// assert_eq!(j, [0.25, -0.25, -0.25, 0.25]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn jacobian(&self, y: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let n = y.len();
        let expected = n.checked_mul(n);
        if expected != Some(out.len()) {
            return Err(Error::JacobianSize {
                n,
                expected,
                output: out.len(),
            });
        }
        with_kernel!(self.imp, k => k.jacobian(y, out));
        Ok(())
    }

    /// The inverse of the softmax: `out = ln p + c`, with `c` fixed by
    /// `anchor`. Zeros give `−∞` (an error with [`Anchor::ZeroMean`] or at
    /// the anchored component); negative, NaN or `+∞` entries are
    /// [`Error::InvalidProbability`].
    ///
    /// ```
    /// use simd_softmax::{Anchor, Softmax};
    /// let mut x = [0.0f32; 3];
    /// Softmax::new().logits_from_probs(&[0.5, 0.25, 0.25], &mut x, Anchor::Component(1))?;
    /// assert_eq!(x[1], 0.0);
    /// assert!((x[0] - std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn logits_from_probs(
        &self,
        p: &[f32],
        out: &mut [f32],
        anchor: Anchor,
    ) -> Result<(), Error> {
        check_len(p.len(), out.len())?;
        // The scan and the comparisons with 0 below read subnormal
        // probabilities as 0 under denormals-are-zero: they run in the
        // default environment, as the kernel does.
        let _env = DefaultEnv::enter();
        let scan = with_kernel!(self.imp, k => k.scan_probs(p));
        if scan.invalid {
            let index = p
                .iter()
                .position(|v| !(*v >= 0.0 && *v < f32::INFINITY))
                .unwrap_or(0);
            return Err(Error::InvalidProbability { index });
        }
        match anchor {
            Anchor::Component(index) if index >= p.len() => {
                return Err(Error::AnchorOutOfRange {
                    index,
                    len: p.len(),
                });
            }
            Anchor::Component(index) if p[index] == 0.0 => {
                return Err(Error::ZeroProbability { index });
            }
            Anchor::ZeroMean if scan.zero => {
                let index = p.iter().position(|v| *v == 0.0).unwrap_or(0);
                return Err(Error::ZeroProbability { index });
            }
            _ => {}
        }
        with_kernel!(self.imp, k => k.logits_from_probs(p, out, anchor));
        Ok(())
    }

    /// Superposition: `output = softmax(Σ_k α_k x_k)` for `terms = [(α_k, x_k)]`,
    /// which equals the normalized `⊙_k softmax(x_k)^α_k`. One pass over the
    /// terms, no temporary. Every term must match the output's length; a NaN
    /// weight is [`Error::NanAlpha`]; no terms give the uniform distribution.
    ///
    /// ```
    /// // Classifier-free guidance: softmax(u + g·(c − u)) = softmax((1−g)·u + g·c).
    /// let (u, c, g) = ([0.0f32, 1.0, 2.0], [0.0f32, 2.0, 1.0], 3.0);
    /// let mut y = [0.0f32; 3];
    /// simd_softmax::Softmax::new().softmax_of_combination(&[(1.0 - g, &u), (g, &c)], &mut y)?;
    /// assert!(y[1] > y[0] && y[0] > y[2]); // logits (1−g)·u + g·c = [0, 4, −1]
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_of_combination(
        &self,
        terms: &[(f32, &[f32])],
        output: &mut [f32],
    ) -> Result<(), Error> {
        self.softmax_of_terms(&terms, output)
    }

    /// [`Softmax::softmax_of_combination`] of `count` terms given by a
    /// function of their index, `term(k) = (α_k, x_k)`, for terms that do
    /// not sit in one slice of pairs (gathering them would allocate).
    /// `term` is called several times per term and must return the same
    /// pair each time.
    ///
    /// ```
    /// let xs = [[0.0f32, 1.0], [1.0, 0.0]];
    /// let weights = [1.0f32, 1.0];
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::Softmax::new()
    ///     .softmax_of_combination_with(2, |k| (weights[k], &xs[k][..]), &mut y)?;
    /// assert_eq!(y, [0.5, 0.5]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_of_combination_with<'t>(
        &self,
        count: usize,
        term: impl Fn(usize) -> (f32, &'t [f32]),
        output: &mut [f32],
    ) -> Result<(), Error> {
        self.softmax_of_terms(&(count, term), output)
    }

    fn softmax_of_terms<'t>(
        &self,
        terms: &impl Terms<'t>,
        output: &mut [f32],
    ) -> Result<(), Error> {
        for k in 0..terms.count() {
            let (alpha, x) = terms.term(k);
            check_alpha(alpha)?;
            if x.len() != output.len() {
                return Err(Error::TermLength {
                    term: k,
                    len: x.len(),
                    expected: output.len(),
                });
            }
        }
        with_kernel!(self.imp, k => k.softmax_of_terms(terms, output));
        Ok(())
    }

    /// The logistic sigmoid `1 / (1 + e^(−z))`, the 2-class softmax:
    /// `softmax([a, b])[0] == sigmoid(a − b)`. Stable for any `|z|`.
    ///
    /// ```
    /// let mut y = [0.0f32; 3];
    /// simd_softmax::Softmax::new().sigmoid(&[0.0, f32::INFINITY, -1e30], &mut y)?;
    /// assert_eq!(y, [0.5, 1.0, 0.0]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn sigmoid(&self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        with_kernel!(self.imp, k => k.sigmoid(input, output));
        Ok(())
    }
}

/// `output = softmax(input)` on the default backend ([`Softmax::new`]).
///
/// ```
/// let mut y = [0.0f32; 3];
/// simd_softmax::softmax(&[1.0, 2.0, 3.0], &mut y)?;
/// assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert!(y[2] > y[1] && y[1] > y[0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax<I: Element, O: Element>(input: &[I], output: &mut [O]) -> Result<(), Error> {
    Softmax::new().softmax(input, output)
}

/// `data = softmax(data)` on the default backend.
///
/// ```
/// let mut x = [f32::NEG_INFINITY, 0.0];
/// simd_softmax::softmax_in_place(&mut x);
/// assert_eq!(x, [0.0, 1.0]);
/// ```
pub fn softmax_in_place<E: Element>(data: &mut [E]) {
    Softmax::new().softmax_in_place(data)
}

/// `output = log_softmax(input)` on the default backend.
///
/// ```
/// let mut y = [0.0f32; 2];
/// simd_softmax::log_softmax(&[0.0, f32::NEG_INFINITY], &mut y)?;
/// assert_eq!(y, [0.0, f32::NEG_INFINITY]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn log_softmax<I: Element, O: Element>(input: &[I], output: &mut [O]) -> Result<(), Error> {
    Softmax::new().log_softmax(input, output)
}

/// `data = log_softmax(data)` on the default backend.
///
/// ```
/// let mut x = [2.0f32, 2.0];
/// simd_softmax::log_softmax_in_place(&mut x);
/// assert!((x[0] + std::f32::consts::LN_2).abs() < 1e-6);
/// ```
pub fn log_softmax_in_place<E: Element>(data: &mut [E]) {
    Softmax::new().log_softmax_in_place(data)
}

/// `ln Σ e^x` on the default backend; `−∞` for an empty slice.
///
/// ```
/// assert_eq!(simd_softmax::logsumexp::<f32>(&[]), f32::NEG_INFINITY);
/// assert!((simd_softmax::logsumexp(&[0.0, 0.0]) - std::f32::consts::LN_2).abs() < 1e-6);
/// ```
pub fn logsumexp<I: Element>(input: &[I]) -> f32 {
    Softmax::new().logsumexp(input)
}

/// Softmax of each `row_len`-long row of a row-major matrix, default backend.
///
/// ```
/// use simd_softmax::{softmax_rows, Error};
/// let x = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0];
/// let mut y = [0.0f32; 6];
/// softmax_rows(&x, &mut y, 2)?;
/// assert_eq!(y, [0.5; 6]);
/// assert_eq!(softmax_rows(&x, &mut y, 4), Err(Error::InvalidRowLen { len: 6, row_len: 4 }));
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_rows<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    row_len: usize,
) -> Result<(), Error> {
    Softmax::new().softmax_rows(input, output, row_len)
}

/// Softmax of each `row_len`-long row, in place, default backend.
///
/// ```
/// let mut x = [3.0f32, 3.0, 3.0];
/// simd_softmax::softmax_rows_in_place(&mut x, 1)?;
/// assert_eq!(x, [1.0; 3]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_rows_in_place<E: Element>(data: &mut [E], row_len: usize) -> Result<(), Error> {
    Softmax::new().softmax_rows_in_place(data, row_len)
}

/// Softmax of `rows` rows of `row_len`, `input_stride` and
/// `output_stride` elements apart, default backend (see
/// [`Softmax::softmax_rows_strided`]).
///
/// ```
/// use simd_softmax::{softmax_rows_strided, Error};
/// // Scores of 3 queries over 5 cached keys, in a cache of capacity 8.
/// let cache = vec![0.5f32; 8 * 2 + 5];
/// let mut probs = vec![0.0f32; 3 * 5];
/// softmax_rows_strided(&cache, &mut probs, 3, 5, 8, 5)?;
/// assert!(probs.iter().all(|&p| (p - 0.2).abs() < 1e-6));
/// assert_eq!(
///     softmax_rows_strided(&cache, &mut probs, 3, 5, 4, 5),
///     Err(Error::InvalidStride { row_len: 5, stride: 4 })
/// );
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_rows_strided<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    rows: usize,
    row_len: usize,
    input_stride: usize,
    output_stride: usize,
) -> Result<(), Error> {
    Softmax::new().softmax_rows_strided(input, output, rows, row_len, input_stride, output_stride)
}

/// Log-softmax of strided rows, default backend (see
/// [`Softmax::softmax_rows_strided`]).
///
/// ```
/// let cache = [5.0f32, 0.0, -5.0];
/// let mut y = [1.0f32; 2];
/// simd_softmax::log_softmax_rows_strided(&cache, &mut y, 2, 1, 2, 1)?;
/// assert_eq!(y, [0.0, 0.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn log_softmax_rows_strided<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    rows: usize,
    row_len: usize,
    input_stride: usize,
    output_stride: usize,
) -> Result<(), Error> {
    Softmax::new().log_softmax_rows_strided(
        input,
        output,
        rows,
        row_len,
        input_stride,
        output_stride,
    )
}

/// Log-softmax of each `row_len`-long row of a row-major matrix, default backend.
///
/// ```
/// let mut y = [1.0f32; 2];
/// simd_softmax::log_softmax_rows(&[5.0, -5.0], &mut y, 1)?;
/// assert_eq!(y, [0.0, 0.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn log_softmax_rows<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    row_len: usize,
) -> Result<(), Error> {
    Softmax::new().log_softmax_rows(input, output, row_len)
}

/// Log-softmax of each `row_len`-long row, in place, default backend.
///
/// ```
/// let mut x = [5.0f32, -5.0];
/// simd_softmax::log_softmax_rows_in_place(&mut x, 1)?;
/// assert_eq!(x, [0.0, 0.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn log_softmax_rows_in_place<E: Element>(data: &mut [E], row_len: usize) -> Result<(), Error> {
    Softmax::new().log_softmax_rows_in_place(data, row_len)
}

/// `output = softmax(alpha · input)` on the default backend; see
/// [`Softmax::softmax_scaled`] for the limits.
///
/// ```
/// // Temperature sampling: alpha = 1 / T.
/// let logits = [2.0f32, 1.0, 0.1];
/// let (mut hot, mut cold) = ([0.0f32; 3], [0.0f32; 3]);
/// simd_softmax::softmax_scaled(&logits, &mut hot, 1.0 / 2.0)?;   // T = 2
/// simd_softmax::softmax_scaled(&logits, &mut cold, 1.0 / 0.5)?;  // T = 0.5
/// assert!(cold[0] > hot[0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_scaled(input: &[f32], output: &mut [f32], alpha: f32) -> Result<(), Error> {
    Softmax::new().softmax_scaled(input, output, alpha)
}

/// [`softmax_scaled`] of each `row_len`-long row, default backend.
///
/// ```
/// let mut y = [0.0f32; 4];
/// simd_softmax::softmax_scaled_rows(&[1.0, 2.0, 3.0, 3.0], &mut y, 2, f32::INFINITY)?;
/// assert_eq!(y, [0.0, 1.0, 0.5, 0.5]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_scaled_rows(
    input: &[f32],
    output: &mut [f32],
    row_len: usize,
    alpha: f32,
) -> Result<(), Error> {
    Softmax::new().softmax_scaled_rows(input, output, row_len, alpha)
}

/// The backward pass `dx = y ⊙ (dy − ⟨dy, y⟩)`, default backend.
///
/// ```
/// // Cross-entropy backward through softmax: dL/dx = y − onehot.
/// let x = [1.0f32, 2.0, 3.0];
/// let mut y = [0.0f32; 3];
/// simd_softmax::softmax(&x, &mut y)?;
/// let dy = [0.0, -1.0 / y[1], 0.0]; // dL/dy for L = −ln y[1]
/// let mut dx = [0.0f32; 3];
/// simd_softmax::softmax_backward(&y, &dy, &mut dx)?;
/// assert!((dx[1] - (y[1] - 1.0)).abs() < 1e-6 && (dx[0] - y[0]).abs() < 1e-6);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<(), Error> {
    Softmax::new().softmax_backward(y, dy, dx)
}

/// The Jacobian `diag(y) − y yᵀ`, `N×N` row-major, default backend.
///
/// ```
/// let mut j = [0.0f32; 9];
/// simd_softmax::jacobian(&[0.2, 0.3, 0.5], &mut j)?;
/// for row in j.chunks(3) {
///     assert!(row.iter().sum::<f32>().abs() < 1e-7); // rows sum to 0
/// }
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn jacobian(y: &[f32], out: &mut [f32]) -> Result<(), Error> {
    Softmax::new().jacobian(y, out)
}

/// The inverse `x = ln p + c`, default backend; see [`Softmax::logits_from_probs`].
///
/// ```
/// use simd_softmax::{logits_from_probs, Anchor};
/// let mut x = [0.0f32; 2];
/// logits_from_probs(&[0.5, 0.5], &mut x, Anchor::ZeroMean)?;
/// assert_eq!(x, [0.0, 0.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn logits_from_probs(p: &[f32], out: &mut [f32], anchor: Anchor) -> Result<(), Error> {
    Softmax::new().logits_from_probs(p, out, anchor)
}

/// `softmax(Σ_k α_k x_k)`, default backend; see [`Softmax::softmax_of_combination`].
///
/// ```
/// // Product of experts: softmax(a + b) ∝ softmax(a) ⊙ softmax(b).
/// let (a, b) = ([0.0f32, 1.0], [1.0f32, 0.0]);
/// let mut y = [0.0f32; 2];
/// simd_softmax::softmax_of_combination(&[(1.0, &a), (1.0, &b)], &mut y)?;
/// assert_eq!(y, [0.5, 0.5]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn softmax_of_combination(terms: &[(f32, &[f32])], output: &mut [f32]) -> Result<(), Error> {
    Softmax::new().softmax_of_combination(terms, output)
}

/// The logistic sigmoid, default backend.
///
/// ```
/// let mut y = [0.0f32; 1];
/// simd_softmax::sigmoid(&[2.0], &mut y)?;
/// assert!((y[0] - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn sigmoid(input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    Softmax::new().sigmoid(input, output)
}
