//! The row planner (`simd_softmax_kernels::plan`): every threshold tested
//! at its boundary, for the shape of every instruction set, and each
//! instruction set this build runs planning as its shape says.

use simd_softmax_kernels::plan::{
    IsaShape, Regime, SHORT_MAX_VECTORS, STREAM_MIN, TWO_PASS_MIN, plan,
};
use simd_softmax_kernels::testing::Target;

/// The shapes of the instruction sets (their `Isa` constants).
const SCALAR: IsaShape = IsaShape {
    lanes: 1,
    short_rows: false,
    narrow_max: 0,
    narrow_lanes: 1,
    has_stream: false,
};
const NEON: IsaShape = IsaShape {
    lanes: 4,
    short_rows: true,
    narrow_max: 0,
    narrow_lanes: 4,
    has_stream: false,
};
const AVX2: IsaShape = IsaShape {
    lanes: 8,
    short_rows: true,
    narrow_max: 0,
    narrow_lanes: 8,
    has_stream: true,
};
const AVX512: IsaShape = IsaShape {
    lanes: 16,
    short_rows: true,
    narrow_max: 8,
    narrow_lanes: 8,
    has_stream: true,
};

fn short(vectors: usize, narrow: bool) -> Regime {
    Regime::Short { vectors, narrow }
}

#[test]
fn short_rows_up_to_four_vectors() {
    for isa in [SCALAR, NEON, AVX2, AVX512] {
        let l = isa.lanes;
        for w in 1..=SHORT_MAX_VECTORS * l + 1 {
            let got = plan(isa, 8 * w, w);
            if w <= isa.narrow_max {
                assert_eq!(
                    got,
                    short(w.div_ceil(isa.narrow_lanes), true),
                    "{isa:?} w={w}"
                );
            } else if w <= SHORT_MAX_VECTORS * l && isa.short_rows {
                assert_eq!(got, short(w.div_ceil(l), false), "{isa:?} w={w}");
            } else {
                assert_eq!(got, Regime::Pipeline, "{isa:?} w={w}");
            }
        }
    }
}

#[test]
fn avx512_rows_of_eight_or_fewer_run_on_the_avx2_twin() {
    assert_eq!(plan(AVX512, 8, 8), short(1, true));
    assert_eq!(plan(AVX512, 9, 9), short(1, false));
    assert_eq!(plan(AVX512, 16, 16), short(1, false));
    assert_eq!(plan(AVX512, 17, 17), short(2, false));
    assert_eq!(plan(AVX512, 64, 64), short(4, false));
    assert_eq!(plan(AVX512, 65, 65), Regime::Pipeline);
}

#[test]
fn two_pass_from_two_pass_min() {
    for isa in [SCALAR, NEON, AVX2, AVX512] {
        assert_eq!(
            plan(isa, TWO_PASS_MIN - 1, TWO_PASS_MIN - 1),
            Regime::Pipeline
        );
        assert_eq!(plan(isa, TWO_PASS_MIN, TWO_PASS_MIN), Regime::TwoPass);
        // A batch of such rows: two-pass whatever its size.
        assert_eq!(plan(isa, 4 * TWO_PASS_MIN, TWO_PASS_MIN), Regime::TwoPass);
    }
}

#[test]
fn streaming_from_stream_min_where_stores_stream() {
    let w = 1000;
    let below = (STREAM_MIN - 1) / w * w;
    let at = STREAM_MIN.div_ceil(w) * w;
    for isa in [AVX2, AVX512] {
        assert_eq!(plan(isa, below, w), Regime::Pipeline);
        assert_eq!(plan(isa, at, w), Regime::Streaming);
        assert_eq!(plan(isa, STREAM_MIN, 4096), Regime::Streaming);
        // Short rows stay short out of cache.
        assert_eq!(plan(isa, STREAM_MIN, 8), plan(isa, 8, 8));
    }
    for isa in [SCALAR, NEON] {
        assert_eq!(plan(isa, at, w), Regime::Pipeline);
    }
}

#[test]
fn thresholds_are_ordered() {
    // A two-pass row is longer than any short row and than any row of the
    // pipeline; streaming starts above the two-pass rows' length.
    let thresholds = [SHORT_MAX_VECTORS * 16, TWO_PASS_MIN, STREAM_MIN];
    assert!(thresholds.windows(2).all(|p| p[0] < p[1]), "{thresholds:?}");
}

/// Each instruction set this build runs plans as its shape says.
#[test]
fn every_target_plans_by_its_shape() {
    let shapes = [
        (Target::Scalar, SCALAR),
        (Target::Avx2, AVX2),
        (Target::Avx512, AVX512),
        (Target::Neon, NEON),
        (Target::Portable16, AVX512),
    ];
    let cases = [
        (8, 8),
        (9, 9),
        (64, 32),
        (65 * 3, 65),
        (1000, 1000),
        (STREAM_MIN, 4096),
        (TWO_PASS_MIN, TWO_PASS_MIN),
    ];
    for (t, shape) in shapes {
        if !t.available() {
            println!("{}: skipped, not available on this build or CPU", t.name());
            continue;
        }
        for (len, w) in cases {
            assert_eq!(
                t.plan(len, w),
                Some(plan(shape, len, w)),
                "{} {len}/{w}",
                t.name()
            );
        }
        println!("{}: ran", t.name());
    }
}
