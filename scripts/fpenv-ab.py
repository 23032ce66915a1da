#!/usr/bin/env python3
"""A/B timing of the `fpenv` criterion bench (benches/fpenv.rs) between two
builds of it, in ABBA order on core 1: each run is the whole `fpenv` group
(every shape, default environment and FTZ+DAZ), criterion's median per ID.

    scripts/fpenv-ab.py BEFORE_BIN AFTER_BIN [--pairs 4] [--filter REGEX] [--reuse]

BEFORE_BIN / AFTER_BIN are bench executables, e.g. built with
`cargo bench --bench fpenv --no-run` at two commits and copied aside (the
path cargo prints). Each run gets its own CRITERION_HOME under
$FPENV_AB_DIR (default /tmp/fpenv-ab). Prints a Markdown table: per ID the
median over the runs of each side, and the median of the per-pair ratios
after/before, then the per-pair ratios; and per side the ratio FTZ+DAZ /
default of the medians.
"""
import argparse, json, os, pathlib, statistics, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("before")
ap.add_argument("after")
ap.add_argument("--pairs", type=int, default=4)
ap.add_argument("--filter", default="^fpenv/")
ap.add_argument("--reuse", action="store_true",
                help="tabulate the runs already under $FPENV_AB_DIR, run nothing")
a = ap.parse_args()
root = pathlib.Path(os.environ.get("FPENV_AB_DIR", "/tmp/fpenv-ab"))


def run(binary, tag):
    home = root / tag
    if not a.reuse:
        subprocess.run(["taskset", "-c", "1", os.path.abspath(binary), "--bench", a.filter],
                       env={**os.environ, "CRITERION_HOME": str(home)}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    for new in sorted((home / "fpenv").glob("*/new")):
        full_id = json.loads((new / "benchmark.json").read_text())["full_id"]
        est = json.loads((new / "estimates.json").read_text())
        out[full_id.removeprefix("fpenv/")] = est["median"]["point_estimate"]
    return out


runs = {"before": [], "after": []}
for p in range(a.pairs):
    order = ["before", "after"] if p % 2 == 0 else ["after", "before"]
    pair = {}
    for side in order:
        pair[side] = run(a.before if side == "before" else a.after, f"{side}-{p}")
        runs[side].append(pair[side])
    print(f"pair {p + 1}/{a.pairs} ({' '.join(order)}) done", flush=True)


def ns(v):
    return f"{v / 1000:.2f} µs" if v >= 1000 else f"{v:.2f} ns"


order = ["1x8", "1x128", "64x4096", "1x1025-subnormal"]
ids = sorted(runs["before"][0], key=lambda i: (order.index(i.split("/")[0])
                                               if i.split("/")[0] in order else 99, i))
med = {s: {i: statistics.median(r[i] for r in runs[s]) for i in ids} for s in runs}
print("\n| ID | before | after | after/before | per pair |")
print("|---|---|---|---|---|")
for i in ids:
    ratios = [b[i] and a_[i] / b[i] for b, a_ in zip(runs["before"], runs["after"])]
    per = " ".join(f"{r:.3f}" for r in ratios)
    print(f"| `{i}` | {ns(med['before'][i])} | {ns(med['after'][i])} | "
          f"{statistics.median(ratios):.3f} | {per} |")
print("\n| shape | before: ftz_daz/default | after: ftz_daz/default |")
print("|---|---|---|")
for shape in dict.fromkeys(i.rsplit("/", 1)[0] for i in ids):
    d, f = f"{shape}/default", f"{shape}/ftz_daz"
    if d in med["before"] and f in med["before"]:
        print(f"| `{shape}` | {med['before'][f] / med['before'][d]:.3f} | "
              f"{med['after'][f] / med['after'][d]:.3f} |")
