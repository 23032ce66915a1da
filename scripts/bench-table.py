#!/usr/bin/env python3
"""Prints the `shapes/` criterion results as a Markdown table of ns/element
medians, with ratios to MLAS when its table is given.

    ../shared/peers/run.sh | tee /tmp/mlas.txt                  # MLAS, core 1
    taskset -c 1 cargo bench --bench softmax -- '^shapes/'       # ours, core 1
    python3 scripts/bench-table.py [--mlas /tmp/mlas.txt]

Reads target/criterion/shapes_*/<id>/new/{benchmark,estimates}.json, i.e.
the latest run of each ID (IDs filtered out of that run keep older values).
"""
import argparse, json, pathlib, re, sys

SHAPES = ["32768x8", "8192x32", "2048x128", "262x1000", "64x4096", "8x32000",
          "2x128256", "16384x4096", "523x128256", "1x16777216"]


def criterion(root):
    rows = {}
    for shape in SHAPES:
        d = root / f"shapes_{shape}"
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            bench, est = f / "new" / "benchmark.json", f / "new" / "estimates.json"
            if not est.is_file():
                continue
            elems = json.loads(bench.read_text())["throughput"]["Elements"]
            med = json.loads(est.read_text())["median"]["point_estimate"]
            rows.setdefault(f.name, {})[shape] = med / elems
    return rows


def mlas(path):
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("| MLAS Softmax |"):
            cells = [c.strip() for c in line.strip("|").split("|")][1:]
            return dict(zip(SHAPES, map(float, cells)))
    sys.exit(f"no '| MLAS Softmax |' row in {path}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlas", help="saved output of shared/peers/run.sh")
    ap.add_argument("--criterion", default="target/criterion")
    a = ap.parse_args()
    ours = criterion(pathlib.Path(a.criterion))
    order = [k for k in ("avx512", "avx2", "neon", "scalar") if k in ours]
    order += [k for k in ("naive", "floor", "floor2pass", "floor_nt") if k in ours]
    order += sorted(k for k in ours if k not in order)
    table = {}
    if a.mlas:
        table["MLAS"] = mlas(a.mlas)
    table.update({k: ours[k] for k in order})
    fmt = lambda v: f"{v:.3f}" if v is not None else "–"
    print("| ns/element | " + " | ".join(SHAPES) + " |")
    print("|---" * (len(SHAPES) + 1) + "|")
    for name, vals in table.items():
        print(f"| {name} | " + " | ".join(fmt(vals.get(s)) for s in SHAPES) + " |")
    if a.mlas:
        for k in order:
            if k in ("avx512", "avx2", "neon"):
                r = [ours[k].get(s) / table["MLAS"][s] if s in ours[k] else None for s in SHAPES]
                print(f"| {k} / MLAS | " + " | ".join(f"{v:.2f}" if v else "–" for v in r) + " |")
        for k in order:
            if k in ("avx512", "avx2"):
                fl = [min(v for f, v in ((f, ours[f].get(s)) for f in ("floor", "floor2pass", "floor_nt") if f in ours) if v)
                      if any(s in ours.get(f, {}) for f in ("floor", "floor2pass", "floor_nt")) else None for s in SHAPES]
                r = [ours[k][s] / fl[i] if s in ours[k] and fl[i] else None for i, s in enumerate(SHAPES)]
                print(f"| {k} / floor | " + " | ".join(f"{v:.2f}" if v else "–" for v in r) + " |")


if __name__ == "__main__":
    main()
