//! Multi-core paths (feature `rayon`): batches split over threads by whole
//! rows, and one huge row split for both of its passes using the mergeable
//! `(max, Σ e^(x−max))` state. Results stay within the single-thread
//! accuracy bound (the merge rescales partial f64 sums exactly as the
//! single-thread online pass does between blocks).

use crate::api::Op;
use crate::dispatch::Imp;
use crate::dispatch::with_kernel;
use crate::{Element, Error, Softmax, SoftmaxState};
use rayon::prelude::*;
use simd_softmax_kernels::Elems;
use simd_softmax_kernels::{CHUNK, RowState};

/// Below this many elements the parallel functions run on the calling
/// thread: splitting costs more than it saves.
#[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
pub const PAR_MIN: usize = 1 << 16;

fn chunk_len(n: usize, row_len: usize) -> usize {
    let per_thread = n.div_ceil(4 * rayon::current_num_threads()).max(PAR_MIN);
    per_thread.div_ceil(row_len).max(1) * row_len
}

impl Softmax {
    /// [`Softmax::softmax_rows`] with the rows split over rayon's threads.
    ///
    /// ```
    /// let x = vec![1.0f32; 4096 * 64];
    /// let mut y = vec![0.0f32; x.len()];
    /// simd_softmax::Softmax::new().par_softmax_rows(&x, &mut y, 64)?;
    /// assert!(y.iter().all(|&v| v == 1.0 / 64.0));
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn par_softmax_rows<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        row_len: usize,
    ) -> Result<(), Error> {
        self.par_rows::<false, I, O>(input, output, row_len)
    }

    /// [`Softmax::log_softmax_rows`] with the rows split over rayon's threads.
    ///
    /// ```
    /// let x = vec![0.0f32; 1024 * 256];
    /// let mut y = vec![0.0f32; x.len()];
    /// simd_softmax::Softmax::new().par_log_softmax_rows(&x, &mut y, 256)?;
    /// assert!((y[0] + 256f32.ln()).abs() < 1e-5);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn par_log_softmax_rows<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        row_len: usize,
    ) -> Result<(), Error> {
        self.par_rows::<true, I, O>(input, output, row_len)
    }

    fn par_rows<const LOG: bool, I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
        row_len: usize,
    ) -> Result<(), Error> {
        // Validate once, exactly as the sequential call would.
        crate::api::check_len(input.len(), output.len())?;
        crate::api::check_rows(input.len(), row_len)?;
        let chunk = chunk_len(input.len(), row_len);
        let this = *self;
        input
            .par_chunks(chunk)
            .zip(output.par_chunks_mut(chunk))
            .for_each(|(x, y)| {
                let (x, y) = (I::elems(x), O::elems_mut(y));
                let op = if LOG { Op::LogSoftmax } else { Op::Softmax };
                this.rows_elems(op, x, y, row_len)
            });
        Ok(())
    }

    /// [`Softmax::softmax`] of one huge row split over rayon's threads,
    /// with the same bits as the row on one thread. Rows the kernel takes
    /// in two passes (2^21 elements or more: larger than L2) are split at
    /// fixed chunk boundaries: each chunk's mergeable `(max, Σ e^(x−max))`
    /// state in parallel, the states merged left to right exactly as the
    /// sequential pass merges them (as [`SoftmaxState`]s), then the output
    /// pass in parallel ([`SoftmaxState::normalize`]'s). Shorter rows run
    /// on the calling thread.
    ///
    /// ```
    /// let x: Vec<f32> = (0..1 << 22).map(|i| (i % 7) as f32).collect();
    /// let (mut y, mut z) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
    /// let sm = simd_softmax::Softmax::new();
    /// sm.par_softmax(&x, &mut y)?;
    /// sm.softmax(&x, &mut z)?;
    /// assert_eq!(y, z);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
    pub fn par_softmax<I: Element, O: Element>(
        &self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), Error> {
        crate::api::check_len(input.len(), output.len())?;
        let n = input.len();
        let imp = self.imp;
        if !with_kernel!(imp, k => k.splits_row(n)) {
            return self.softmax(input, output);
        }
        // Whole chunks per task, a few tasks per thread.
        let per_task = n.div_ceil(4 * rayon::current_num_threads()).div_ceil(CHUNK) * CHUNK;
        let mut states = vec![RowState::EMPTY; n.div_ceil(CHUNK)];
        input
            .par_chunks(per_task)
            .zip(states.par_chunks_mut(per_task / CHUNK))
            .for_each(|(x, st)| chunk_states(imp, I::elems(x), st));
        // The chunks' states merged left to right, exactly as the
        // sequential pass merges them, by the public state's merge; the
        // special rows' results come from it too (the kernel's chunk
        // states count the `+∞` entries and find the NaNs).
        let st = states.iter().fold(self.state(), |a, &b| {
            a.merge(SoftmaxState::of_softmax_pass(imp, b))
        });
        let stream = with_kernel!(imp, k => k.streams_row(n));
        input
            .par_chunks(per_task)
            .zip(output.par_chunks_mut(per_task))
            .for_each(|(x, y)| st.normalize_elems(I::elems(x), O::elems_mut(y), stream));
        Ok(())
    }
}

/// [`Softmax::par_softmax_rows`] on the default backend.
///
/// ```
/// let x = vec![0.5f32; 8 * 32000];
/// let mut y = vec![0.0f32; x.len()];
/// simd_softmax::par_softmax_rows(&x, &mut y, 32000)?;
/// assert!((y.iter().map(|&v| v as f64).sum::<f64>() - 8.0).abs() < 1e-4);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
pub fn par_softmax_rows<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    row_len: usize,
) -> Result<(), Error> {
    Softmax::new().par_softmax_rows(input, output, row_len)
}

/// [`Softmax::par_log_softmax_rows`] on the default backend.
///
/// ```
/// let x = vec![0.0f32; 2 * 4];
/// let mut y = vec![0.0f32; 8];
/// simd_softmax::par_log_softmax_rows(&x, &mut y, 4)?;
/// assert!((y[0] + 4f32.ln()).abs() < 1e-6);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
pub fn par_log_softmax_rows<I: Element, O: Element>(
    input: &[I],
    output: &mut [O],
    row_len: usize,
) -> Result<(), Error> {
    Softmax::new().par_log_softmax_rows(input, output, row_len)
}

/// [`Softmax::par_softmax`] on the default backend.
///
/// ```
/// let x = vec![1.0f32; 1 << 18];
/// let mut y = vec![0.0f32; x.len()];
/// simd_softmax::par_softmax(&x, &mut y)?;
/// assert!(y.iter().all(|&v| (v * (1 << 18) as f32 - 1.0).abs() < 1e-6));
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "rayon")))]
pub fn par_softmax<I: Element, O: Element>(input: &[I], output: &mut [O]) -> Result<(), Error> {
    Softmax::new().par_softmax(input, output)
}

/// The chunk states of `x` (non-generic: compiled once, in this crate).
#[inline(never)]
fn chunk_states(imp: Imp, x: Elems<'_>, st: &mut [RowState]) {
    with_kernel!(imp, k => k.chunk_states_elems(x, st))
}
