//! Strided rows (`softmax_rows_strided`, `log_softmax_rows_strided`): on
//! every backend, rows read `input_stride` apart and written
//! `output_stride` apart give, bit for bit, what `softmax_rows` gives the
//! same rows packed, through every regime (short rows, the pipeline, its
//! streaming form, two-pass rows) and for the half pairs; the elements
//! between rows are never written (and never read: they hold NaN, which
//! would make a row NaN); the last row is not padded to a full stride; bad
//! strides and short buffers are refused with the output untouched.

mod common;

use common::{Family, gen_row, quick};
use simd_softmax::{Element, Error, Softmax, bf16, f16};
use simd_softmax_kernels::plan::{STREAM_MIN, TWO_PASS_MIN};

/// What the gaps of an output hold before the call (and must after).
const GAP: f32 = 12345.0;

/// `rows` rows of `w` with special rows among them (a NaN, a `+∞`, a fully
/// masked row) where there are enough rows.
fn packed_rows(rows: usize, w: usize, salt: u64) -> Vec<f32> {
    let mut x = gen_row(Family::ALL[0], rows * w, salt);
    if rows >= 4 {
        x[w + w / 2] = f32::NAN;
        x[2 * w] = f32::INFINITY;
        x[3 * w..4 * w].fill(f32::NEG_INFINITY);
    }
    x
}

/// The packed rows placed `stride` apart, NaN between them, the last row
/// not padded.
fn spread<T: Copy>(packed: &[T], rows: usize, w: usize, stride: usize, gap: T) -> Vec<T> {
    let len = if rows == 0 {
        0
    } else {
        (rows - 1) * stride + w
    };
    let mut v = vec![gap; len];
    for r in 0..rows {
        v[r * stride..r * stride + w].copy_from_slice(&packed[r * w..(r + 1) * w]);
    }
    v
}

/// One element type's view as bits and from f32, for the comparisons.
trait Ty: Element + Copy + PartialEq + std::fmt::Debug {
    fn of(v: f32) -> Self;
    fn bits(self) -> u32;
}
impl Ty for f32 {
    fn of(v: f32) -> Self {
        v
    }
    fn bits(self) -> u32 {
        self.to_bits()
    }
}
impl Ty for bf16 {
    fn of(v: f32) -> Self {
        bf16::from_f32(v)
    }
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
}
impl Ty for f16 {
    fn of(v: f32) -> Self {
        f16::from_f32(v)
    }
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
}

/// Strided against packed on one engine, one op, one shape; returns the
/// elements compared.
fn compare<I: Ty, O: Ty>(
    sm: &Softmax,
    log: bool,
    (rows, w): (usize, usize),
    (xs, ys): (usize, usize),
) -> usize {
    let packed: Vec<I> = packed_rows(rows, w, (w * 31 + rows) as u64)
        .iter()
        .map(|&v| I::of(v))
        .collect();
    let mut want = vec![O::of(0.0); rows * w];
    let x = spread(&packed, rows, w, xs, I::of(f32::NAN));
    let mut y = spread(&vec![O::of(0.0); rows * w], rows, w, ys, O::of(GAP));
    match log {
        false => {
            sm.softmax_rows(&packed, &mut want, w).unwrap();
            sm.softmax_rows_strided(&x, &mut y, rows, w, xs, ys)
                .unwrap();
        }
        true => {
            sm.log_softmax_rows(&packed, &mut want, w).unwrap();
            sm.log_softmax_rows_strided(&x, &mut y, rows, w, xs, ys)
                .unwrap();
        }
    }
    let what = || {
        format!(
            "{} {} {rows}x{w} strides ({xs}, {ys})",
            sm.backend().name(),
            if log { "log_softmax" } else { "softmax" }
        )
    };
    for r in 0..rows {
        for i in 0..w {
            let (got, exp) = (y[r * ys + i], want[r * w + i]);
            assert_eq!(got.bits(), exp.bits(), "{}: row {r} element {i}", what());
        }
        if r + 1 < rows {
            let gap = &y[r * ys + w..(r + 1) * ys];
            assert!(
                gap.iter().all(|&g| g.bits() == O::of(GAP).bits()),
                "{}: gap after row {r} written",
                what()
            );
        }
    }
    rows * w
}

#[test]
fn strided_rows_equal_packed_rows_bit_for_bit() {
    let mut shapes: Vec<(usize, usize)> = vec![
        (1, 1),
        (5, 3),
        (9, 8),
        (9, 16),
        (9, 17),
        (7, 33),
        (7, 64),
        (7, 65),
        (6, 100),
        (5, 1000),
        (4, 4096),
        (4, 5000),
        (2, 40_000),
    ];
    // The streaming batch (rows parked in the stack row, and long rows).
    shapes.push((STREAM_MIN / 4096 + 1, 4096));
    if !quick() {
        shapes.push((STREAM_MIN / 40_000 + 1, 40_000));
        shapes.push((2, TWO_PASS_MIN + 5));
    }
    for sm in common::dispatched("strided") {
        let mut n = 0;
        for &(rows, w) in &shapes {
            let big = rows * w >= STREAM_MIN;
            let strides: &[(usize, usize)] = if big {
                &[(w + 16, w + 3)]
            } else {
                &[(w, w), (w + 1, w), (w, w + 5), (w + 7, 2 * w + 3)]
            };
            for &st in strides {
                for log in [false, true] {
                    if big && log {
                        continue;
                    }
                    n += compare::<f32, f32>(&sm, log, (rows, w), st);
                }
            }
        }
        println!("{}: {n} f32 elements equal", sm.backend().name());
    }
}

#[test]
fn strided_half_pairs_equal_packed_rows_bit_for_bit() {
    let shapes = [(9, 8), (6, 100), (3, 4096), (2, 5000)];
    for sm in common::dispatched("strided") {
        let mut n = 0;
        for &(rows, w) in &shapes {
            for st in [(w, w), (w + 3, w), (w + 1, w + 9)] {
                for log in [false, true] {
                    n += compare::<bf16, bf16>(&sm, log, (rows, w), st);
                    n += compare::<f16, f16>(&sm, log, (rows, w), st);
                    n += compare::<bf16, f32>(&sm, log, (rows, w), st);
                    n += compare::<f32, bf16>(&sm, log, (rows, w), st);
                }
            }
        }
        println!("{}: {n} half-pair elements equal", sm.backend().name());
    }
}

#[test]
fn bad_strides_and_short_buffers_are_refused_untouched() {
    let x = vec![1.0f32; 20];
    for sm in common::dispatched("strided") {
        let mut y = vec![GAP; 20];
        let cases: [((usize, usize, usize, usize), Error); 6] = [
            (
                (2, 0, 5, 5),
                Error::InvalidStride {
                    row_len: 0,
                    stride: 5,
                },
            ),
            (
                (2, 5, 4, 5),
                Error::InvalidStride {
                    row_len: 5,
                    stride: 4,
                },
            ),
            (
                (2, 5, 5, 3),
                Error::InvalidStride {
                    row_len: 5,
                    stride: 3,
                },
            ),
            (
                (4, 5, 6, 5),
                Error::RowsBeyondBuffer {
                    len: 20,
                    needed: Some(23),
                },
            ),
            (
                (3, 5, 5, 8),
                Error::RowsBeyondBuffer {
                    len: 20,
                    needed: Some(21),
                },
            ),
            (
                (3, 5, usize::MAX / 2, 5),
                Error::RowsBeyondBuffer {
                    len: 20,
                    needed: None,
                },
            ),
        ];
        for ((rows, w, xs, ys), err) in cases {
            for log in [false, true] {
                let got = match log {
                    false => sm.softmax_rows_strided(&x, &mut y, rows, w, xs, ys),
                    true => sm.log_softmax_rows_strided(&x, &mut y, rows, w, xs, ys),
                };
                assert_eq!(
                    got,
                    Err(err.clone()),
                    "{rows} rows of {w}, strides {xs}, {ys}"
                );
                assert!(y.iter().all(|&v| v == GAP), "output written on error");
            }
        }
        // No rows: nothing to do, nothing written, even in empty buffers.
        sm.softmax_rows_strided(&x, &mut y, 0, 5, 5, 5).unwrap();
        sm.softmax_rows_strided::<f32, f32>(&[], &mut [], 0, 5, 7, 5)
            .unwrap();
        assert!(y.iter().all(|&v| v == GAP));
        println!("{}: errors refused, outputs untouched", sm.backend().name());
    }
}
