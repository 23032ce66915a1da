//! The safe public functions: argument checks (a refused call writes
//! nothing), then one dispatch into the kernel. Each function exists as a
//! [`Softmax`] method (forced backend) and as a free function (the backend of
//! [`Softmax::new`]).

use crate::dispatch::with_kernel;
use crate::{Error, Softmax};

fn check_len(input: usize, output: usize) -> Result<(), Error> {
    if input == output { Ok(()) } else { Err(Error::LengthMismatch { input, output }) }
}

fn check_rows(len: usize, row_len: usize) -> Result<(), Error> {
    if row_len > 0 && len % row_len == 0 { Ok(()) } else { Err(Error::InvalidRowLen { len, row_len }) }
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
    pub fn softmax(&self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        with_kernel!(self.imp, k => k.softmax(input, output));
        Ok(())
    }

    /// `data = softmax(data)`.
    ///
    /// ```
    /// let mut x = [1.0f32, 1.0, 1.0, 1.0];
    /// simd_softmax::Softmax::new().softmax_in_place(&mut x);
    /// assert_eq!(x, [0.25; 4]);
    /// ```
    pub fn softmax_in_place(&self, data: &mut [f32]) {
        with_kernel!(self.imp, k => k.softmax_in_place(data));
    }

    /// `output = log_softmax(input)`: `x − max − ln Σ e^(x−max)`.
    ///
    /// ```
    /// let mut y = [0.0f32; 2];
    /// simd_softmax::Softmax::new().log_softmax(&[3.0, 3.0], &mut y)?;
    /// assert!((y[0] + std::f32::consts::LN_2).abs() < 1e-6);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn log_softmax(&self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        with_kernel!(self.imp, k => k.log_softmax(input, output));
        Ok(())
    }

    /// `data = log_softmax(data)`.
    ///
    /// ```
    /// let mut x = [0.0f32; 4];
    /// simd_softmax::Softmax::new().log_softmax_in_place(&mut x);
    /// assert!((x[0] + 4f32.ln()).abs() < 1e-6);
    /// ```
    pub fn log_softmax_in_place(&self, data: &mut [f32]) {
        with_kernel!(self.imp, k => k.log_softmax_in_place(data));
    }

    /// `ln Σ e^x`, stably; `−∞` for an empty slice.
    ///
    /// ```
    /// let lse = simd_softmax::Softmax::new().logsumexp(&[1000.0, 1000.0]);
    /// assert!((lse - (1000.0 + std::f32::consts::LN_2)).abs() < 1e-3);
    /// ```
    pub fn logsumexp(&self, input: &[f32]) -> f32 {
        with_kernel!(self.imp, k => k.logsumexp(input))
    }

    /// Softmax of each `row_len`-long row of a row-major matrix.
    ///
    /// ```
    /// let mut y = [0.0f32; 4];
    /// simd_softmax::Softmax::new().softmax_rows(&[0.0, 0.0, 5.0, 5.0], &mut y, 2)?;
    /// assert_eq!(y, [0.5; 4]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_rows(input.len(), row_len)?;
        with_kernel!(self.imp, k => k.softmax_rows(input, output, row_len));
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
    pub fn softmax_rows_in_place(&self, data: &mut [f32], row_len: usize) -> Result<(), Error> {
        check_rows(data.len(), row_len)?;
        with_kernel!(self.imp, k => k.softmax_rows_in_place(data, row_len));
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
    pub fn log_softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize) -> Result<(), Error> {
        check_len(input.len(), output.len())?;
        check_rows(input.len(), row_len)?;
        with_kernel!(self.imp, k => k.log_softmax_rows(input, output, row_len));
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
    pub fn log_softmax_rows_in_place(&self, data: &mut [f32], row_len: usize) -> Result<(), Error> {
        check_rows(data.len(), row_len)?;
        with_kernel!(self.imp, k => k.log_softmax_rows_in_place(data, row_len));
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
pub fn softmax(input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    Softmax::new().softmax(input, output)
}

/// `data = softmax(data)` on the default backend.
///
/// ```
/// let mut x = [f32::NEG_INFINITY, 0.0];
/// simd_softmax::softmax_in_place(&mut x);
/// assert_eq!(x, [0.0, 1.0]);
/// ```
pub fn softmax_in_place(data: &mut [f32]) {
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
pub fn log_softmax(input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    Softmax::new().log_softmax(input, output)
}

/// `data = log_softmax(data)` on the default backend.
///
/// ```
/// let mut x = [2.0f32, 2.0];
/// simd_softmax::log_softmax_in_place(&mut x);
/// assert!((x[0] + std::f32::consts::LN_2).abs() < 1e-6);
/// ```
pub fn log_softmax_in_place(data: &mut [f32]) {
    Softmax::new().log_softmax_in_place(data)
}

/// `ln Σ e^x` on the default backend; `−∞` for an empty slice.
///
/// ```
/// assert_eq!(simd_softmax::logsumexp(&[]), f32::NEG_INFINITY);
/// assert!((simd_softmax::logsumexp(&[0.0, 0.0]) - std::f32::consts::LN_2).abs() < 1e-6);
/// ```
pub fn logsumexp(input: &[f32]) -> f32 {
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
pub fn softmax_rows(input: &[f32], output: &mut [f32], row_len: usize) -> Result<(), Error> {
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
pub fn softmax_rows_in_place(data: &mut [f32], row_len: usize) -> Result<(), Error> {
    Softmax::new().softmax_rows_in_place(data, row_len)
}

/// Log-softmax of each `row_len`-long row of a row-major matrix, default backend.
///
/// ```
/// let mut y = [1.0f32; 2];
/// simd_softmax::log_softmax_rows(&[5.0, -5.0], &mut y, 1)?;
/// assert_eq!(y, [0.0, 0.0]);
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub fn log_softmax_rows(input: &[f32], output: &mut [f32], row_len: usize) -> Result<(), Error> {
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
pub fn log_softmax_rows_in_place(data: &mut [f32], row_len: usize) -> Result<(), Error> {
    Softmax::new().log_softmax_rows_in_place(data, row_len)
}
