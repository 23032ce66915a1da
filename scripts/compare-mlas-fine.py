#!/usr/bin/env python3
"""Ours against ONNX Runtime's MLAS, one shape at a time, in many short
alternations (ABBA order), pinned to core 1.

scripts/compare-mlas.sh runs all of MLAS's shapes, then all of ours, per
round: about a minute apart, and this shared VM switches between a fast and
a slow state within seconds, so one side of a round's ratio can land in
the other state. Here each pair of measurements of a shape is seconds
apart: MLAS for that shape alone (`run.sh --only SHAPE --repeats 1`), then
our criterion `shapes/SHAPE/` (default backend and the floor), or the
reverse order; the table gives per-shape medians and the median of the
per-pair ratios.

    scripts/compare-mlas-fine.py [pairs] [shape ...]     # default 4, all ten
"""
import json, pathlib, re, statistics, subprocess, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEERS = ROOT.parent / "shared" / "peers" / "run.sh"
SHAPES = ["32768x8", "8192x32", "2048x128", "262x1000", "64x4096", "8x32000",
          "2x128256", "16384x4096", "523x128256", "1x16777216"]


def mlas(shape):
    out = subprocess.run([str(PEERS), "--only", shape, "--repeats", "1"], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    head = next(l for l in out.splitlines() if l.startswith("| op |"))
    row = next(l for l in out.splitlines() if l.startswith("| MLAS Softmax |"))
    names = [c.strip() for c in head.strip("|").split("|")][1:]
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    return float(dict(zip(names, cells))[shape])


def ours(shape):
    floor = "floor2pass" if shape == "1x16777216" else "floor"
    d = ROOT / "target" / "criterion" / f"shapes_{shape}"
    subprocess.run(["rm", "-rf", str(d)], check=True)
    subprocess.run(["taskset", "-c", "1", "cargo", "bench", "--bench", "softmax", "--",
                    f"^shapes/{shape}/(default|avx2|avx512|neon|{floor})$",
                    "--warm-up-time", "0.5", "--measurement-time", "2"],
                   check=True, capture_output=True, cwd=ROOT)
    res = {}
    for k in ("avx512", "avx2", "neon", floor):
        est = d / k / "new" / "estimates.json"
        if est.is_file():
            elems = json.loads((d / k / "new" / "benchmark.json").read_text())["throughput"]["Elements"]
            res[k] = json.loads(est.read_text())["median"]["point_estimate"] / elems
    kernel = next(k for k in ("avx512", "avx2", "neon") if k in res)
    # Forced AVX2 beside an AVX-512 default (NaN where there is none).
    alt = res.get("avx2", float("nan")) if kernel == "avx512" else float("nan")
    return kernel, res[kernel], res[floor], alt


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    shapes = sys.argv[2:] or SHAPES
    subprocess.run(["cargo", "bench", "--bench", "softmax", "--no-run"], check=True,
                   capture_output=True, cwd=ROOT)
    cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True,
                                                          text=True).stdout).group(1)
    avx512 = "avx512f" in pathlib.Path("/proc/cpuinfo").read_text()
    print(f"cpu: {cpu}, avx512f: {'yes' if avx512 else 'no'}; {pairs} pairs per shape, ABBA")
    print("| shape | MLAS | ours | kernel | floor | ours / MLAS (median of pairs) | per pair | ours / floor "
          "| forced avx2 | avx2 / MLAS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        m, o, f, r, a2 = [], [], [], [], []
        for p in range(pairs):
            if p % 2 == 0:
                mv = mlas(shape)
                kernel, ov, fv, av = ours(shape)
            else:
                kernel, ov, fv, av = ours(shape)
                mv = mlas(shape)
            m.append(mv), o.append(ov), f.append(fv), r.append(ov / mv), a2.append(av)
            print(f"  {shape} pair {p + 1}: MLAS {mv:.3f} {kernel} {ov:.3f} floor {fv:.3f}"
                  f" avx2 {av:.3f}", file=sys.stderr, flush=True)
        med = statistics.median
        print(f"| {shape} | {med(m):.3f} | {med(o):.3f} | {kernel} | {med(f):.3f} | "
              f"**{med(r):.2f}** | {' '.join(f'{x:.2f}' for x in r)} | "
              f"{med([a / b for a, b in zip(o, f)]):.2f} | {med(a2):.3f} | "
              f"{med([a / b for a, b in zip(a2, m)]):.2f} |", flush=True)


if __name__ == "__main__":
    main()
