//! The prefetches the regimes ask for land where the next work is: a
//! prefetch is a hint, so no result shows a wrong address, only the time
//! out of cache. A test-only source (`Target::prefetches`) records each
//! prefetch as its element offset from the batch's first element.
//!
//! - The two-pass regime's first pass prefetches, along each block's sum,
//!   the next block of the same row: every block after the first is
//!   prefetched, and nothing beyond the row's end plus one block.
//! - Every regime stays inside the batch (plus the furthest look-ahead the
//!   target declares: its prefetches are hints and may pass the last row);
//!   how many rows after the first were asked for is printed.

mod common;

use simd_softmax_kernels::BLOCK_VECTORS;
use simd_softmax_kernels::plan::{Regime, STREAM_MIN, TWO_PASS_MIN};
use simd_softmax_kernels::testing::Target;

/// f32 lanes of a target's vectors.
fn lanes(t: Target) -> usize {
    match t {
        Target::Avx512 | Target::Portable16 => 16,
        Target::Avx2 => 8,
        Target::Neon => 4,
        Target::Scalar => 1,
    }
}

/// Runs `t` over `rows` rows of `w` and returns the recorded offsets (all
/// of them: the log is sized to hold them).
fn recorded(t: Target, rows: usize, w: usize) -> Vec<usize> {
    let n = rows * w;
    let x = common::gen_row(common::Family::ALL[0], n, 7);
    let mut y = vec![0.0f32; n];
    let mut log = vec![0usize; n + 1];
    let count = t.prefetches(&x, &mut y, w, &mut log).expect("available");
    assert!(
        count <= log.len(),
        "{}: {count} prefetches for {n} elements",
        t.name()
    );
    // The results are the softmax's all the same.
    let sums: Vec<f64> = y
        .chunks(w)
        .map(|r| r.iter().map(|&v| v as f64).sum())
        .collect();
    assert!(
        sums.iter().all(|s| (s - 1.0).abs() < 1e-4),
        "{}: sums {sums:?}",
        t.name()
    );
    log.truncate(count);
    log
}

#[test]
fn two_pass_prefetches_the_next_block_of_the_row() {
    for t in common::targets("two_pass_prefetches") {
        if t == Target::Scalar {
            println!("skipped scalar: one lane, no prefetch to check");
            continue;
        }
        let w = TWO_PASS_MIN + 3 * lanes(t) + 1;
        assert_eq!(t.plan(w, w), Some(Regime::TwoPass));
        let log = recorded(t, 1, w);
        let block = BLOCK_VECTORS * lanes(t);
        assert!(!log.is_empty(), "{}: no prefetch", t.name());
        let max = *log.iter().max().unwrap();
        assert!(
            max < w + block,
            "{}: prefetched element {max} of a row of {w} (block {block}): beyond the next block",
            t.name()
        );
        let min = *log.iter().min().unwrap();
        assert!(
            min >= block,
            "{}: prefetched element {min}, inside the first block",
            t.name()
        );
        // Every block after the first is asked for.
        let mut hit = vec![false; w.div_ceil(block)];
        for &p in &log {
            if p < w {
                hit[p / block] = true;
            }
        }
        let missed: Vec<usize> = (1..hit.len()).filter(|&b| !hit[b]).collect();
        assert!(
            missed.is_empty(),
            "{}: blocks never prefetched: {} of {} (first {:?})",
            t.name(),
            missed.len(),
            hit.len(),
            &missed[..missed.len().min(5)]
        );
        println!(
            "{}: {} prefetches, blocks 1..{} each asked for",
            t.name(),
            log.len(),
            hit.len()
        );
    }
}

#[test]
fn regimes_prefetch_inside_the_batch() {
    // In cache, the streaming batch (rows parked in the stack row, and
    // long rows), both above STREAM_MIN.
    let shapes = [
        (64, 1000),
        (STREAM_MIN / 4096 + 1, 4096),
        (STREAM_MIN / 40_000 + 1, 40_000),
    ];
    for t in common::targets("regimes_prefetch") {
        if t == Target::Scalar {
            println!("skipped scalar: one lane, no prefetch to check");
            continue;
        }
        for (rows, w) in shapes {
            let n = rows * w;
            let log = recorded(t, rows, w);
            let ahead = t.look_ahead().unwrap();
            if let Some(&max) = log.iter().max() {
                assert!(
                    max < n + ahead,
                    "{} {rows}x{w}: prefetched element {max} of {n}",
                    t.name()
                );
            }
            let mut asked = vec![false; rows];
            for &p in &log {
                if p < n {
                    asked[p / w] = true;
                }
            }
            let later = asked.iter().skip(1).filter(|&&a| a).count();
            println!(
                "{} {rows}x{w} ({:?}): {} prefetches, {later} later rows",
                t.name(),
                t.plan(n, w).unwrap(),
                log.len()
            );
        }
    }
}
