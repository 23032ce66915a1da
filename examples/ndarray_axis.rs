//! Softmax over any axis of an `ndarray` array with the row functions:
//!
//! ```text
//! cargo run --example ndarray_axis
//! ```
//!
//! The functions take row-major rows, `row_len` apart (`softmax_rows`) or a
//! stride apart (`softmax_rows_strided`: each row contiguous, the row
//! starts evenly spaced). An array's lanes along an axis map onto them in
//! three ways, each shown on an `Array3<f32>` of attention scores
//! `[batch, heads, seq]`:
//!
//! 1. the last axis of a standard-layout array: the lanes are back-to-back
//!    rows, so `softmax_rows` takes `as_slice()` as it is;
//! 2. the last axis of a view whose lanes are contiguous but whose lane
//!    starts are evenly spaced further apart, such as the first `len`
//!    slots of a key cache of capacity `cap`: `softmax_rows_strided` on
//!    the owning array's buffer, stride `cap`, nothing copied. (It needs
//!    unit steps within a row, so a lane whose *elements* are strided,
//!    an axis other than the last, does not fit it: case 3.)
//! 3. any other axis (here the heads, axis 1): the axis is moved last
//!    (`permuted_axes` + `as_standard_layout`, one copy), `softmax_rows`
//!    runs on the contiguous rows, and the result is written back through
//!    the inverse permutation.
//!
//! Each result is checked against a naive f64 softmax computed lane by
//! lane with ndarray's own `lanes(Axis(k))`; a mismatch panics.

use ndarray::{Array3, ArrayView3, Axis, s};
use simd_softmax::{softmax_rows, softmax_rows_strided};

/// The f64 softmax of every lane along `axis`, with ndarray's iterators.
fn reference(x: ArrayView3<'_, f32>, axis: usize) -> Array3<f64> {
    let mut y = Array3::<f64>::zeros(x.raw_dim());
    for (xl, mut yl) in x.lanes(Axis(axis)).into_iter().zip(y.lanes_mut(Axis(axis))) {
        let m = xl
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = xl.iter().map(|&v| (f64::from(v) - m).exp()).sum();
        for (o, &v) in yl.iter_mut().zip(xl.iter()) {
            *o = (f64::from(v) - m).exp() / sum;
        }
    }
    y
}

/// Panics unless `got` is within 1e-6 + 1e-5·|want| of `want` everywhere;
/// returns the largest absolute error.
fn check(what: &str, got: &Array3<f32>, want: &Array3<f64>) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let mut max_err = 0.0f64;
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let err = (f64::from(g) - w).abs();
        assert!(
            err <= 1e-6 + 1e-5 * w.abs(),
            "{what}: at {idx:?} got {g:e}, the f64 softmax is {w:e}"
        );
        max_err = max_err.max(err);
    }
    max_err
}

/// Scores with some spread, a few large, a masked (−∞) key per row.
fn scores(shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_fn(shape, |(b, h, s)| {
        if (b + h + s) % 11 == 10 {
            f32::NEG_INFINITY
        } else {
            ((b * 131 + h * 37 + s * 17) % 97) as f32 / 8.0 - 6.0
        }
    })
}

fn main() -> Result<(), simd_softmax::Error> {
    let (batch, heads, seq) = (2, 4, 37);
    let x = scores((batch, heads, seq));

    // 1. The last axis of a standard-layout array: contiguous rows of `seq`.
    let mut y = Array3::<f32>::zeros(x.raw_dim());
    let src = x.as_slice().expect("standard layout");
    softmax_rows(src, y.as_slice_mut().expect("standard layout"), seq)?;
    let err = check("axis 2", &y, &reference(x.view(), 2));
    println!(
        "1. axis 2 (seq) of {:?}, standard layout: softmax_rows on as_slice(), {} rows of {seq}; \
         max error {err:.1e} against the f64 softmax",
        x.shape(),
        batch * heads
    );

    // 2. A key cache of capacity `cap`, its first `len` slots in use: the
    //    view's lanes along seq are contiguous, `cap` apart.
    let (cap, len) = (48, seq);
    let cache = scores((batch, heads, cap));
    let view = cache.slice(s![.., .., ..len]);
    let (r, c) = (view.strides()[0], view.strides()[1]);
    assert!(view.strides()[2] == 1 && r == heads as isize * c && c >= len as isize);
    let stride = c as usize;
    let mut y = Array3::<f32>::zeros((batch, heads, len));
    let buf = cache.as_slice().expect("the owner is standard layout");
    let out = y.as_slice_mut().expect("standard layout");
    softmax_rows_strided(buf, out, batch * heads, len, stride, len)?;
    let err = check("cache view", &y, &reference(view, 2));
    println!(
        "2. axis 2 of the view {:?} of a cache {:?} (strides {:?}): softmax_rows_strided, \
         {} rows of {len} read {stride} apart, written packed; max error {err:.1e}",
        view.shape(),
        cache.shape(),
        view.strides(),
        batch * heads
    );

    // 3. Axis 1 (heads): its lanes are `seq` apart element by element.
    //    Move it last, one contiguous copy [batch, seq, heads], and back.
    let moved = x.view().permuted_axes([0, 2, 1]);
    let moved = moved.as_standard_layout();
    let mut out = Array3::<f32>::zeros(moved.raw_dim());
    let src = moved.as_slice().expect("as_standard_layout is contiguous");
    softmax_rows(src, out.as_slice_mut().expect("standard layout"), heads)?;
    let mut y = Array3::<f32>::zeros(x.raw_dim());
    y.view_mut().permuted_axes([0, 2, 1]).assign(&out);
    let err = check("axis 1", &y, &reference(x.view(), 1));
    println!(
        "3. axis 1 (heads) of {:?}, element stride {}: permuted to {:?}, as_standard_layout, \
         softmax_rows ({} rows of {heads}), written back through the inverse permutation; \
         max error {err:.1e}",
        x.shape(),
        x.strides()[1],
        out.shape(),
        batch * seq
    );
    Ok(())
}
