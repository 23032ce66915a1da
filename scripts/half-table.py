#!/usr/bin/env python3
"""Markdown table of the `half/` criterion results: ns per element
(medians) per shape for f32 and the half pairs, each pair's ratio to f32,
and the half-width memory floor (its two-pass form for the single 2^24
row).

One sitting, pinned to the core the peers use:
    taskset -c 1 cargo bench --bench softmax -- '^half/'
    python3 scripts/half-table.py [target/criterion]
"""
import json, pathlib, sys

SHAPES = ["32768x8", "8192x32", "2048x128", "262x1000", "64x4096", "8x32000",
          "2x128256", "16384x4096", "523x128256", "1x16777216"]
PAIRS = ["bf16-bf16", "f16-f16", "bf16-f32"]


def ns_per_elem(root, shape, bench):
    est = pathlib.Path(root) / f"half_{shape}" / bench / "new" / "estimates.json"
    if not est.exists():
        return None
    r, c = (int(v) for v in shape.split("x"))
    return json.loads(est.read_text())["median"]["point_estimate"] / (r * c)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
    head = ["shape", "f32"] + [f"{p}" for p in PAIRS] + [f"{p} / f32" for p in PAIRS] + ["half floor", "bf16-bf16 / floor"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for s in SHAPES:
        f = ns_per_elem(root, s, "f32")
        if f is None:
            continue
        vals = [ns_per_elem(root, s, p) for p in PAIRS]
        floor = ns_per_elem(root, s, "floor2pass-half") or ns_per_elem(root, s, "floor-half")
        cells = [s, f"{f:.3f}"] + [f"{v:.3f}" if v else "–" for v in vals]
        cells += [f"{v / f:.2f}" if v else "–" for v in vals]
        cells += [f"{floor:.3f}" if floor else "–",
                  f"{vals[0] / floor:.2f}" if floor and vals[0] else "–"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
