//! The `rayon` feature's multi-core paths agree with the single-thread ones:
//! batches bit-for-bit (same kernel per row), one split row within the
//! accuracy bound (the merge only reorders the f64 partial sums), special
//! rows exactly, and bad arguments are refused with the output untouched.
#![cfg(feature = "rayon")]

use simd_softmax::{Backend, Error, Softmax};

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 * 20.0 - 10.0
        })
        .collect()
}

fn engines() -> Vec<Softmax> {
    Backend::ALL
        .iter()
        .copied()
        .filter_map(|b| match Softmax::with_backend(b) {
            Ok(sm) => Some(sm),
            Err(e) => {
                println!("{}: skipped, {e}", b.name());
                None
            }
        })
        .collect()
}

#[test]
fn par_rows_match_sequential_bit_for_bit() {
    for sm in engines() {
        for (rows, cols) in [(4096, 8), (512, 1000), (3, 100_000)] {
            let x = data(rows * cols, 7);
            let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
            sm.par_softmax_rows(&x, &mut a, cols).unwrap();
            sm.softmax_rows(&x, &mut b, cols).unwrap();
            assert!(
                a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{:?}",
                sm.backend()
            );
            sm.par_log_softmax_rows(&x, &mut a, cols).unwrap();
            sm.log_softmax_rows(&x, &mut b, cols).unwrap();
            assert!(
                a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{:?}",
                sm.backend()
            );
        }
    }
}

#[test]
fn par_softmax_of_one_huge_row_within_bound() {
    for sm in engines() {
        let x = data(1 << 21, 3);
        let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        sm.par_softmax(&x, &mut a).unwrap();
        sm.softmax(&x, &mut b).unwrap();
        // Both are within 4 + |x − m| ULP of the f64 result; the split
        // only changes the order of the f64 partial sums, so they agree to
        // a few ULP of each other.
        for (p, q) in a.iter().zip(&b) {
            assert!(
                (p - q).abs() <= 4.0 * f32::EPSILON * q.abs() + 1e-37,
                "{p} vs {q}"
            );
        }
        let sum: f64 = a.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-6, "sum {sum}");
    }
}

#[test]
fn par_softmax_special_rows_take_the_exact_path() {
    let sm = Softmax::new();
    let mut x = data(1 << 18, 5);
    x[1000] = f32::INFINITY;
    x[200_000] = f32::INFINITY;
    let mut y = vec![0.0; x.len()];
    sm.par_softmax(&x, &mut y).unwrap();
    assert_eq!((y[1000], y[200_000], y[5]), (0.5, 0.5, 0.0));
    x[77] = f32::NAN;
    sm.par_softmax(&x, &mut y).unwrap();
    assert!(y.iter().all(|v| v.is_nan()));
    let masked = vec![f32::NEG_INFINITY; 1 << 18];
    sm.par_softmax(&masked, &mut y).unwrap();
    assert!(y.iter().all(|&v| v == 0.0));
}

#[test]
fn par_errors_leave_output_untouched() {
    let sm = Softmax::new();
    let x = data(1 << 17, 1);
    let mut y = vec![f32::from_bits(0x7fc0_1234); (1 << 17) - 1];
    assert_eq!(
        sm.par_softmax(&x, &mut y),
        Err(Error::LengthMismatch {
            input: 1 << 17,
            output: (1 << 17) - 1
        })
    );
    let mut z = vec![f32::from_bits(0x7fc0_1234); 1 << 17];
    assert_eq!(
        sm.par_softmax_rows(&x, &mut z, 3),
        Err(Error::InvalidRowLen {
            len: 1 << 17,
            row_len: 3
        })
    );
    assert!(y.iter().chain(&z).all(|v| v.to_bits() == 0x7fc0_1234));
}
