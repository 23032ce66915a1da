//! Quickstart: which backend runs here and why, softmax and log-softmax of
//! one visible row, and a small throughput table for every backend this CPU
//! runs. Takes about two seconds:
//!
//! ```text
//! cargo run --release --example quickstart
//! SIMD_SOFTMAX_BACKEND=avx2 cargo run --release --example quickstart
//! ```
//!
//! The timings are medians of repeated, warmed-up runs with
//! `std::time::Instant`: enough to compare backends on one machine; use
//! `cargo bench --bench softmax` for careful numbers.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::{BACKEND_ENV, Backend, Softmax, bf16};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Row lengths of the throughput table, then one batched shape.
const LENS: [usize; 5] = [8, 128, 1000, 32000, 128256];
const BATCH: (usize, usize) = (8192, 32);

/// Timed samples per table cell, and the target length of one sample.
const SAMPLES: usize = 15;
const SAMPLE_TIME: Duration = Duration::from_millis(3);

fn main() -> Result<(), simd_softmax::Error> {
    let sm = Softmax::new();
    println!("simd-softmax quickstart");
    println!();
    let why = match std::env::var(BACKEND_ENV) {
        Ok(v) if !v.trim().is_empty() => format!("{BACKEND_ENV}={v}"),
        _ => format!("{BACKEND_ENV} unset"),
    };
    println!("  Softmax::new().backend()  {}  ({why})", sm.backend());
    println!("  Backend::detect()         {}", Backend::detect());
    println!("  CPU features              {}", cpu_features());
    println!("  backends:");
    for &b in Backend::ALL {
        match b.unavailable_reason() {
            None => println!(
                "    {:<7} available ({} f32 lane{})",
                b.name(),
                b.lanes(),
                if b.lanes() == 1 { "" } else { "s" }
            ),
            Some(reason) => println!("    {:<7} skipped: {reason}", b.name()),
        }
    }

    // One visible row; −∞ is a masked position and gets probability 0.
    let x = [1.0f32, 2.0, 3.0, 4.0, f32::NEG_INFINITY, 0.5];
    let mut p = [0.0f32; 6];
    let mut lp = [0.0f32; 6];
    sm.softmax(&x, &mut p)?;
    sm.log_softmax(&x, &mut lp)?;
    let lse = sm.logsumexp(&x);
    println!();
    println!("one row, {} backend", sm.backend());
    print_row("x", &x, "sum", x.iter().sum());
    print_row("softmax(x)", &p, "sum", p.iter().sum());
    print_row(
        "log_softmax(x)",
        &lp,
        "sum of exp",
        lp.iter().map(|v| v.exp()).sum(),
    );
    println!(
        "  {:<15} {lse:.6}  (log_softmax(x) = x - logsumexp(x))",
        "logsumexp(x)"
    );
    // The same row in bf16, in and out: the f32 result rounded once.
    let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
    let mut pb = [bf16::ZERO; 6];
    sm.softmax(&xb, &mut pb)?;
    let pb: Vec<f32> = pb.iter().map(|v| v.to_f32()).collect();
    print_row("softmax, bf16", &pb, "sum", pb.iter().sum());

    println!();
    let (rows, cols) = BATCH;
    print!(
        "throughput, Gelem/s (softmax out-of-place, 1 thread, median of {SAMPLES})\n  {:<8}",
        "backend"
    );
    for len in LENS {
        print!("{len:>9}");
    }
    println!("{:>11}", format!("{rows}x{cols}"));
    let mut rng = SmallRng::seed_from_u64(42);
    let max_len = LENS.into_iter().chain([rows * cols]).max().unwrap_or(0);
    let input: Vec<f32> = (0..max_len)
        .map(|_| rng.random_range(-10.0f32..10.0))
        .collect();
    let mut output = vec![0.0f32; max_len];
    for &b in Backend::ALL {
        let Ok(engine) = Softmax::with_backend(b) else {
            continue;
        };
        print!("  {:<8}", b.name());
        for len in LENS {
            let (x, y) = (&input[..len], &mut output[..len]);
            let rate = gelem_per_s(len, || {
                engine.softmax(black_box(x), black_box(&mut *y)).unwrap()
            });
            print!("{rate:>9.2}");
        }
        let n = rows * cols;
        let (x, y) = (&input[..n], &mut output[..n]);
        let rate = gelem_per_s(n, || {
            engine
                .softmax_rows(black_box(x), black_box(&mut *y), cols)
                .unwrap()
        });
        println!("{rate:>11.2}");
    }
    let lse = sm.logsumexp(&input[..32000]);
    println!();
    println!(
        "logsumexp of 32000 values uniform in [-10, 10): {lse:.4}  ({} backend)",
        sm.backend()
    );
    if cfg!(debug_assertions) {
        println!("(debug build: run with --release for representative timings)");
    }
    Ok(())
}

/// `+name` for each feature the CPU has, `-name` for each it lacks.
fn cpu_features() -> String {
    #[allow(unused_mut)]
    let mut seen: Vec<(&str, bool)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    seen.extend([
        ("avx2", std::is_x86_feature_detected!("avx2")),
        ("fma", std::is_x86_feature_detected!("fma")),
        ("avx512f", std::is_x86_feature_detected!("avx512f")),
        ("avx512bw", std::is_x86_feature_detected!("avx512bw")),
        ("avx512dq", std::is_x86_feature_detected!("avx512dq")),
        ("avx512vl", std::is_x86_feature_detected!("avx512vl")),
        ("f16c", std::is_x86_feature_detected!("f16c")),
        ("avx512bf16", std::is_x86_feature_detected!("avx512bf16")),
    ]);
    #[cfg(target_arch = "aarch64")]
    seen.push(("neon", std::arch::is_aarch64_feature_detected!("neon")));
    if seen.is_empty() {
        return "(none checked on this architecture)".to_string();
    }
    let marks: Vec<String> = seen
        .iter()
        .map(|(f, on)| format!("{}{f}", if *on { '+' } else { '-' }))
        .collect();
    marks.join(" ")
}

fn print_row(label: &str, values: &[f32], sum_label: &str, sum: f32) {
    print!("  {label:<15}");
    for v in values {
        print!("{v:>9.4}");
    }
    println!("   {sum_label} = {sum:.6}");
}

/// Median throughput of `f` over `len` elements: warm up (which also sizes
/// a sample to about [`SAMPLE_TIME`]), then [`SAMPLES`] timed samples.
fn gelem_per_s(len: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < SAMPLE_TIME * 2 {
        f();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let iters = ((SAMPLE_TIME.as_secs_f64() / per_call) as u64).max(1);
    let mut ns_per_elem: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / (iters as f64 * len as f64)
        })
        .collect();
    ns_per_elem.sort_by(f64::total_cmp);
    1.0 / ns_per_elem[SAMPLES / 2]
}
