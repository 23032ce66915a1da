#!/usr/bin/env python3
"""Markdown tables of the `shapes/` criterion results (ns per element,
medians) with ratios to ONNX Runtime's MLAS and to the memory floor.

One sitting:
    ../shared/peers/run.sh > /tmp/mlas.txt                       # MLAS, core 1
    taskset -c 1 cargo bench --bench softmax -- '^shapes/'       # ours, core 1
    python3 scripts/bench-table.py --mlas /tmp/mlas.txt

Several rounds (what scripts/compare-mlas.sh writes): each DIR holds
`mlas.txt` and a copy of target/criterion's shapes_* folders from the same
round; ratios are taken per round, then the median over rounds is shown,
so that drift between rounds (this VM moves by up to ±30 %) cancels.
    python3 scripts/bench-table.py --rounds DIR [DIR ...]

The floor is `floor` (one read, one write per element) for the batched
shapes and `floor2pass` (a max pass, then a read and a write) for the
single 2^24 row; the streaming floor (out-of-cache shapes) is the same
with non-temporal stores (`floor-stream`, `floor2pass-stream`).
"""
import argparse, json, pathlib, statistics, sys

SHAPES = ["32768x8", "8192x32", "2048x128", "262x1000", "64x4096", "8x32000",
          "2x128256", "16384x4096", "523x128256", "1x16777216"]
KERNELS = ("avx512", "avx2", "neon", "scalar")


def criterion(root):
    rows = {}
    for shape in SHAPES:
        d = pathlib.Path(root) / f"shapes_{shape}"
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
    """The MLAS row of run.sh's table, by the shapes its header names (all
    ten, or those of `--only`)."""
    shapes = SHAPES
    for line in pathlib.Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| op |"):
            shapes = cells[1:]
        if line.startswith("| MLAS Softmax |"):
            return dict(zip(shapes, map(float, cells[1:])))
    sys.exit(f"no '| MLAS Softmax |' row in {path}")


def floor_of(ours, shape, stream=False):
    name = "floor2pass" if shape == "1x16777216" else "floor"
    if stream:
        name += "-stream"
    return ours.get(name, {}).get(shape)


def table(rounds):
    """rounds: list of (mlas dict or None, criterion dict)."""
    med = lambda xs: statistics.median(xs) if xs else None
    names = []
    for _, ours in rounds:
        names += [k for k in ours if k not in names]
    order = [k for k in KERNELS if k in names]
    order += [k for k in ("naive", "floor", "floor2pass", "floor-stream", "floor2pass-stream")
              if k in names]
    order += sorted(k for k in names if k not in order)
    out = {}
    if all(m for m, _ in rounds):
        out["MLAS"] = {s: med([m[s] for m, _ in rounds if s in m]) for s in SHAPES}
    for k in order:
        out[k] = {s: med([o[k][s] for _, o in rounds if s in o.get(k, {})]) for s in SHAPES}
    ratios = {}
    for k in order:
        if k not in KERNELS:
            continue
        if "MLAS" in out:
            ratios[f"{k} / MLAS"] = {s: med([o[k][s] / m[s] for m, o in rounds
                                             if s in o.get(k, {}) and s in m]) for s in SHAPES}
        ratios[f"{k} / floor"] = {s: med([o[k][s] / floor_of(o, s) for _, o in rounds
                                          if s in o.get(k, {}) and floor_of(o, s)]) for s in SHAPES}
        ratios[f"{k} / streaming floor"] = {
            s: med([o[k][s] / floor_of(o, s, True) for _, o in rounds
                    if s in o.get(k, {}) and floor_of(o, s, True)]) for s in SHAPES}
    fmt = lambda v, p: "–" if v is None else f"{v:.{p}f}"
    lines = ["| ns/element | " + " | ".join(SHAPES) + " |", "|---" * (len(SHAPES) + 1) + "|"]
    for name, vals in out.items():
        lines.append(f"| {name} | " + " | ".join(fmt(vals[s], 3) for s in SHAPES) + " |")
    for name, vals in ratios.items():
        lines.append(f"| {name} | " + " | ".join(fmt(vals[s], 2) for s in SHAPES) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlas", help="saved output of shared/peers/run.sh")
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--rounds", nargs="+", help="round folders of compare-mlas.sh")
    a = ap.parse_args()
    if a.rounds:
        rounds = [(mlas(pathlib.Path(d) / "mlas.txt"), criterion(d)) for d in a.rounds]
    else:
        rounds = [(mlas(a.mlas) if a.mlas else None, criterion(a.criterion))]
    print(table(rounds))
    if a.rounds:
        print(f"\n(medians over {len(rounds)} rounds; ratios taken within each round)")


if __name__ == "__main__":
    main()
