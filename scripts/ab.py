#!/usr/bin/env python3
"""A/B timing of two commits of the crate at the ten benchmark shapes, in
ABBA pairs on core 1: the check a change to a hot path needs (a regression
of more than 3 % at any shape needs a reason).

    scripts/ab.py BASE [NEW] [--pairs 4] [--ops softmax,log_softmax,scaled,bf16-bf16,...]
                  [--backends avx512,avx2] [--shapes 32768x8,8192x32,...] [--core 1]

BASE and NEW are commits (NEW defaults to the working tree). Each side is a
git worktree under $AB_DIR (default /tmp/simd-softmax-ab) with a small
release binary that calls the public API only (`softmax_rows`,
`log_softmax_rows`, `softmax_scaled_rows` with alpha = 0.7, per backend; the
half pairs `bf16-bf16`, `f16-f16`, `bf16-f32`, `f32-bf16` and
`log-bf16-bf16` through the same generic functions), so any two commits
with that API compare. One measurement is the median
ns/element over `3e7 / elements` calls (5 to 400) on inputs uniform in
[-10, 10); each pair runs both sides seconds apart, in ABBA order. Prints
a Markdown table per (op, backend): the medians of both sides, the median
of the per-pair ratios new/base, and the per-pair ratios.
"""
import argparse, os, pathlib, statistics, subprocess, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHAPES = ["32768x8", "8192x32", "2048x128", "262x1000", "64x4096", "8x32000",
          "2x128256", "16384x4096", "523x128256", "1x16777216"]

MAIN_RS = r'''
// One op at one shape on one backend: the median ns/element.
use simd_softmax::{Backend, Softmax};
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (op, rows, cols, iters) = (a[0].as_str(), a[1].parse::<usize>().unwrap(),
        a[2].parse::<usize>().unwrap(), a[3].parse::<usize>().unwrap());
    let b = Backend::ALL.into_iter().find(|b| b.name() == a[4]).expect("backend");
    let sm = Softmax::with_backend(b).unwrap();
    let n = rows * cols;
    let mut s = 0x9e3779b97f4a7c15u64;
    let x: Vec<f32> = (0..n).map(|_| {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
    }).collect();
    let mut y = vec![0.0f32; n];
    // The half pairs' buffers, where the op names them (input-output).
    let half_in = op.starts_with("bf16-") || op.starts_with("f16-");
    let half_out = op.ends_with("-bf16") || op.ends_with("-f16");
    let xb: Vec<half::bf16> = match half_in { true => x.iter().map(|&v| half::bf16::from_f32(v)).collect(), false => vec![] };
    let xh: Vec<half::f16> = match half_in { true => x.iter().map(|&v| half::f16::from_f32(v)).collect(), false => vec![] };
    let mut yb = vec![half::bf16::ZERO; if half_out { n } else { 0 }];
    let mut yh = vec![half::f16::ZERO; if half_out { n } else { 0 }];
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        match op {
            "softmax" => sm.softmax_rows(&x, &mut y, cols).unwrap(),
            "log_softmax" => sm.log_softmax_rows(&x, &mut y, cols).unwrap(),
            "scaled" => sm.softmax_scaled_rows(&x, &mut y, cols, 0.7).unwrap(),
            "bf16-bf16" => sm.softmax_rows(&xb, &mut yb, cols).unwrap(),
            "f16-f16" => sm.softmax_rows(&xh, &mut yh, cols).unwrap(),
            "bf16-f32" => sm.softmax_rows(&xb, &mut y, cols).unwrap(),
            "f32-bf16" => sm.softmax_rows(&x, &mut yb, cols).unwrap(),
            "log-bf16-bf16" => sm.log_softmax_rows(&xb, &mut yb, cols).unwrap(),
            _ => panic!("op: softmax | log_softmax | scaled | bf16-bf16 | f16-f16 | bf16-f32 | f32-bf16 | log-bf16-bf16"),
        }
        t.push(t0.elapsed().as_secs_f64() * 1e9 / n as f64);
    }
    t.sort_by(f64::total_cmp);
    let probe = y[n / 2] + yb.get(n / 2).map_or(0.0, |v| v.to_f32()) + yh.get(n / 2).map_or(0.0, |v| v.to_f32());
    println!("{:.4} {}", t[iters / 2], probe);
}
'''


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def side(name, commit, ab_dir):
    """Builds the harness against `commit` (None: the working tree)."""
    tree = ROOT
    if commit is not None:
        tree = ab_dir / f"tree-{name}"
        if tree.exists():
            sh("git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree))
        sh("git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit,
           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    crate = ab_dir / f"bin-{name}"
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text(
        f'[package]\nname = "ab"\nversion = "0.1.0"\nedition = "2024"\n'
        f'[dependencies]\nsimd-softmax = {{ path = "{tree}" }}\nhalf = "2"\n[workspace]\n')
    (crate / "src" / "main.rs").write_text(MAIN_RS)
    sh("cargo", "build", "--release", "-q", cwd=crate)
    return crate / "target" / "release" / "ab"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("new", nargs="?")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--ops", default="softmax,log_softmax,scaled")
    p.add_argument("--backends", default=None)
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--core", default="1", help="the core both sides run on (taskset -c)")
    a = p.parse_args()
    ab_dir = pathlib.Path(os.environ.get("AB_DIR", "/tmp/simd-softmax-ab"))
    ab_dir.mkdir(parents=True, exist_ok=True)
    if a.backends is None:
        flags = pathlib.Path("/proc/cpuinfo").read_text() if sys.platform == "linux" else ""
        a.backends = "avx512,avx2" if " avx512f" in flags else "avx2" if " avx2" in flags else "neon"
    bins = {"base": side("base", a.base, ab_dir), "new": side("new", a.new, ab_dir)}

    def run(which, op, r, c, be):
        it = max(5, min(400, int(3e7 / (r * c))))
        out = subprocess.run(["taskset", "-c", a.core, str(bins[which]), op, str(r), str(c), str(it), be],
                             capture_output=True, text=True, check=True).stdout
        return float(out.split()[0])

    print(f"base {a.base}, new {a.new or 'working tree'}; {a.pairs} ABBA pairs per shape, core {a.core}\n")
    for op in a.ops.split(","):
        for be in a.backends.split(","):
            print(f"| {op}, {be} | base | new | new / base | per pair |\n|---|---|---|---|---|")
            for shape in a.shapes.split(","):
                r, c = map(int, shape.split("x"))
                b, n, q = [], [], []
                for i in range(a.pairs):
                    order = ("base", "new") if i % 2 == 0 else ("new", "base")
                    got = {w: run(w, op, r, c, be) for w in order}
                    b.append(got["base"]); n.append(got["new"]); q.append(got["new"] / got["base"])
                med = statistics.median
                print(f"| {shape} | {med(b):.3f} | {med(n):.3f} | **{med(q):.3f}** | "
                      f"{' '.join(f'{x:.2f}' for x in q)} |", flush=True)
            print()


if __name__ == "__main__":
    main()
