#!/usr/bin/env python3
"""Interleaved timing of the `fpenv` criterion bench (benches/fpenv.rs)
between builds of it, on core 1: each run is the whole `fpenv` group (every
shape, default environment and FTZ+DAZ), criterion's median per ID.

    scripts/fpenv-ab.py NAME=BIN NAME=BIN [NAME=BIN ...] [--rounds 4]
                        [--filter REGEX] [--reuse]

Each BIN is a bench executable, e.g. built with `cargo bench --bench fpenv
--no-run` at some commit and copied aside (the path cargo prints). A round
runs every build once, in forward order on even rounds and reverse order on
odd ones (ABBA for two builds), so a slow phase of the machine falls on
every side alike. Each run gets its own CRITERION_HOME under $FPENV_AB_DIR
(default /tmp/fpenv-ab); `--reuse` tabulates the runs already there.

Prints Markdown: per ID the median over the rounds of each build, the
median of the per-round ratios of each build to the first, and those
per-round ratios; then per build the ratio FTZ+DAZ / default of the medians.
"""
import argparse, json, os, pathlib, statistics, subprocess

ap = argparse.ArgumentParser()
ap.add_argument("bins", nargs="+", help="NAME=PATH, the first is the base")
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--filter", default="^fpenv/")
ap.add_argument("--reuse", action="store_true",
                help="tabulate the runs already under $FPENV_AB_DIR, run nothing")
a = ap.parse_args()
root = pathlib.Path(os.environ.get("FPENV_AB_DIR", "/tmp/fpenv-ab"))
builds = [b.split("=", 1) for b in a.bins]
assert len(builds) >= 2 and all(len(b) == 2 for b in builds), "NAME=PATH, at least two"


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


runs = {name: [] for name, _ in builds}
for r in range(a.rounds):
    order = builds if r % 2 == 0 else builds[::-1]
    for name, path in order:
        runs[name].append(run(path, f"{name}-{r}"))
    print(f"round {r + 1}/{a.rounds} ({' '.join(n for n, _ in order)}) done", flush=True)


def ns(v):
    return f"{v / 1000:.2f} µs" if v >= 1000 else f"{v:.2f} ns"


names = [n for n, _ in builds]
base = names[0]
shapes = ["1x8", "1x128", "64x4096", "1x1025-subnormal"]
ids = sorted(runs[base][0], key=lambda i: (shapes.index(i.split("/")[0])
                                           if i.split("/")[0] in shapes else 99, i))
med = {n: {i: statistics.median(r[i] for r in runs[n]) for i in ids} for n in names}
head = " | ".join(names) + " | " + " | ".join(
    f"{n}/{base} | per round" for n in names[1:])
print(f"\n| ID | {head} |")
print("|---|" + "---|" * (len(names) + 2 * (len(names) - 1)))
for i in ids:
    cells = [ns(med[n][i]) for n in names]
    for n in names[1:]:
        ratios = [x[i] / b[i] for x, b in zip(runs[n], runs[base])]
        cells += [f"{statistics.median(ratios):.3f}", " ".join(f"{q:.3f}" for q in ratios)]
    print(f"| `{i}` | " + " | ".join(cells) + " |")
print("\n| shape | " + " | ".join(f"{n}: ftz_daz/default" for n in names) + " |")
print("|---|" + "---|" * len(names))
for shape in dict.fromkeys(i.rsplit("/", 1)[0] for i in ids):
    d, f = f"{shape}/default", f"{shape}/ftz_daz"
    if d in med[base] and f in med[base]:
        print(f"| `{shape}` | " + " | ".join(f"{med[n][f] / med[n][d]:.3f}" for n in names) + " |")
