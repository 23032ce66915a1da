//! Runs fuzz inputs through the checks without libFuzzer:
//! `cargo run --release --bin replay -- forward|family|half|state PATH...` (files
//! or directories). For debugging a crash input on stable, or under valgrind.

use std::path::Path;

// The `half` target keeps its checks in its own file; included here as a
// module (its `no_main` and `fuzz_target!` are inert in this binary).
#[allow(unused_attributes)]
#[path = "../../fuzz_targets/half.rs"]
mod half_target;

fn files(p: &Path, out: &mut Vec<std::path::PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .map(|e| e.expect("read_dir").path())
            .collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else {
        out.push(p.to_path_buf());
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let run: fn(&[u8]) = match target.as_str() {
        "forward" => simd_softmax_fuzz::forward,
        "family" => simd_softmax_fuzz::family,
        "half" => half_target::check,
        "state" => simd_softmax_fuzz::state,
        "sampler" => simd_softmax_fuzz::sampler,
        "attention" => simd_softmax_fuzz::attention,
        _ => {
            eprintln!("usage: replay forward|family|half|state|sampler|attention PATH...");
            std::process::exit(2);
        }
    };
    let mut paths = Vec::new();
    for a in args {
        files(Path::new(&a), &mut paths);
    }
    let backends: Vec<&str> = simd_softmax_fuzz::engines()
        .iter()
        .map(|e| e.backend().name())
        .collect();
    for p in &paths {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        eprintln!("{} ({} bytes)", p.display(), data.len());
        run(&data);
    }
    println!(
        "replay {target}: {} inputs passed on {backends:?}",
        paths.len()
    );
}
