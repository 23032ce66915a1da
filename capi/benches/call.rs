//! What a call through the C ABI costs beside the Rust call: `softmax` of
//! one short row, f32 in and out, on the default backend and on a named
//! one. The C functions are the `extern "C"` symbols the static and shared
//! libraries export (the same machine code, called through the C calling
//! convention, with the C layer's pointer checks and panic guard); the
//! difference of the two medians is the boundary's cost.
//!
//! Benchmark IDs:
//! ```text
//! capi/<n>/rust           simd_softmax::softmax(&x, &mut y)
//! capi/<n>/c              simd_softmax_softmax(SIMD_SOFTMAX_BACKEND_DEFAULT, F32, x, n, F32, y, n)
//! capi/<n>/rust-named     Softmax::with_backend(detected).softmax(&x, &mut y)
//! capi/<n>/c-named        simd_softmax_softmax(<detected backend>, ...)
//! n: 8, 128
//! ```
//!
//! Running (pinned, as the other benchmarks):
//! ```text
//! taskset -c 1 cargo bench -p simd-softmax-capi --bench call
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use simd_softmax::{Backend, Softmax};
use simd_softmax_capi::{
    SIMD_SOFTMAX_BACKEND_DEFAULT, SIMD_SOFTMAX_F32, SIMD_SOFTMAX_OK, simd_softmax_backend_detect,
    simd_softmax_softmax,
};
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let quick = std::env::var_os("SIMD_SOFTMAX_BENCH_QUICK").is_some();
    let named = Softmax::with_backend(Backend::detect()).expect("the detected backend runs");
    let code = simd_softmax_backend_detect();
    for n in [8usize, 128] {
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 4.0).collect();
        let mut y = vec![0.0f32; n];
        let mut yc = vec![0.0f32; n];
        let (xp, yp) = (x.as_ptr(), yc.as_mut_ptr());
        let mut g = c.benchmark_group(format!("capi/{n}"));
        if quick {
            g.warm_up_time(Duration::from_millis(100));
            g.measurement_time(Duration::from_millis(200));
        } else {
            g.warm_up_time(Duration::from_millis(500));
            g.measurement_time(Duration::from_secs(3));
        }
        g.bench_function("rust", |b| {
            b.iter(|| simd_softmax::softmax(black_box(&x[..]), black_box(&mut y[..])))
        });
        let c_call = |backend| {
            // SAFETY: `xp` and `yp` point to `n` floats each (`x`, `yc`,
            // alive for the whole group) and do not overlap.
            unsafe {
                simd_softmax_softmax(
                    backend,
                    SIMD_SOFTMAX_F32,
                    black_box(xp).cast(),
                    n,
                    SIMD_SOFTMAX_F32,
                    black_box(yp).cast(),
                    n,
                )
            }
        };
        assert_eq!(c_call(SIMD_SOFTMAX_BACKEND_DEFAULT), SIMD_SOFTMAX_OK);
        g.bench_function("c", |b| b.iter(|| c_call(SIMD_SOFTMAX_BACKEND_DEFAULT)));
        g.bench_function("rust-named", |b| {
            b.iter(|| named.softmax(black_box(&x[..]), black_box(&mut y[..])))
        });
        g.bench_function("c-named", |b| b.iter(|| c_call(black_box(code))));
        g.finish();
        assert!(yc.iter().all(|v| v.is_finite()));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
