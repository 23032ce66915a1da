#!/usr/bin/env python3
"""Extract ONNX's own Softmax / LogSoftmax backend node tests into a format
that examples/onnx_conformance.rs reads without any dependency.

    scripts/onnx-extract.py OUTDIR

Needs the `onnx` package (versions up to 1.17 ship the node test data;
scripts/onnx-conformance.sh installs 1.17.0 in a venv). The cases are found
through ONNX's own loader (`onnx.backend.test.loader.load_model_tests`), so
each case's tolerances are the ones ONNX's backend test runner would use:
the loader's defaults (rtol 1e-3, atol 1e-7) unless the case's data.json
overrides them. Every node test directory whose name starts with
`test_softmax` or `test_logsoftmax` is read, `_expanded` variants included.

An `_expanded` variant is the same test with the op written out as a graph
of primitive ops (ReduceMax, Sub, Exp, ReduceSum, Div / Log), so its model
has no Softmax node: its op and axis are read from the base case's model
(the name without `_expanded...`), and it is written only where its data
differ from the base case's (otherwise it is listed as a duplicate).

OUTDIR gets, per case, `NAME.K.input.f32` and `NAME.K.expected.f32` (K the
test_data_set number; raw little-endian f32, row-major) and one line in
`manifest.txt`:

    case NAME.K OP OPSET AXIS RTOL ATOL D0,D1,... SOURCE

OP is Softmax or LogSoftmax, OPSET the default domain's version from the
model's opset_import, AXIS the `axis` attribute normalized to 0..rank (its
default filled in: -1 from opset 13 on, 1 before). Lines starting with `#`
are comments; `dup NAME.K BASE.K` lines record the skipped duplicates and
`skip NAME REASON` lines the cases that could not be written.

SOURCE is `onnx` for ONNX's data. ONNX's node tests are all opset 13 (its
test data are regenerated at the current opset), so the opset 1-12 form of
the ops (the input coerced to 2-D at `axis`: rows the product of the dims
before it, a row the product of the dims from it on) has no ONNX data; each
ONNX case of rank >= 2 is therefore also written as `NAME.K.opset11`, with
SOURCE `derived`: ONNX's input and `axis` attribute (1 where the model
leaves it out, the opset-11 default), the expected output computed here in
float64 on the 2-D form and rounded to f32, ONNX's tolerances.
"""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests

PREFIXES = ("test_softmax", "test_logsoftmax")
OPS = ("Softmax", "LogSoftmax")
EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise ValueError("no default-domain opset_import")


def op_and_axis(model: onnx.ModelProto, opset: int) -> tuple[str, int | None]:
    """The single Softmax/LogSoftmax node's op type and raw `axis` (None if absent)."""
    nodes = [n for n in model.graph.node if n.op_type in OPS]
    if len(nodes) != 1:
        raise ValueError(f"{len(nodes)} Softmax/LogSoftmax nodes")
    axis = None
    for a in nodes[0].attribute:
        if a.name == "axis":
            axis = onnx.helper.get_attribute_value(a)
    return nodes[0].op_type, axis


def load_tensor(path: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(path))


def data_sets(model_dir: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    out = []
    for d in sorted(os.listdir(model_dir)):
        m = re.fullmatch(r"test_data_set_(\d+)", d)
        if not m:
            continue
        base = os.path.join(model_dir, d)
        x = load_tensor(os.path.join(base, "input_0.pb"))
        y = load_tensor(os.path.join(base, "output_0.pb"))
        out.append((int(m.group(1)), x, y))
    return out


def derived_opset11(op: str, x: np.ndarray, axis: int) -> np.ndarray:
    """Opset 1-12 semantics: softmax over each row of x coerced to 2-D at axis, in float64."""
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    x2 = x.astype(np.float64).reshape(rows, -1)
    z = x2 - x2.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = z - lse if op == "LogSoftmax" else np.exp(z - lse)
    return y.reshape(x.shape).astype(np.float32)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        if f.endswith(".f32") or f == "manifest.txt":
            os.remove(os.path.join(outdir, f))

    tests = {
        t.name: t
        for t in load_model_tests(kind="node")
        if t.name.startswith(PREFIXES) and t.model_dir is not None
    }
    lines = [
        f"# onnx {onnx.__version__}, numpy {np.__version__}: ONNX backend node tests"
        f" {', '.join(p + '*' for p in PREFIXES)}"
    ]
    written: dict[str, tuple[bytes, bytes, str]] = {}  # NAME.K -> (x, y, NAME.K)
    n_written = n_dup = n_skip = n_derived = 0
    # Base cases first, so that an expanded variant finds its base's data.
    for name in sorted(tests, key=lambda n: (EXPANDED.search(n) is not None, n)):
        t = tests[name]
        base = EXPANDED.sub("", name)
        try:
            model = onnx.load(os.path.join(t.model_dir, "model.onnx"))
            opset = opset_of(model)
            if base != name:
                if base not in tests:
                    raise ValueError(f"no base case {base} for the expanded graph")
                base_model = onnx.load(os.path.join(tests[base].model_dir, "model.onnx"))
                op, axis = op_and_axis(base_model, opset_of(base_model))
            else:
                op, axis = op_and_axis(model, opset)
            sets = data_sets(t.model_dir)
            if not sets:
                raise ValueError("no test_data_set_*")
        except (ValueError, OSError) as e:
            lines.append(f"skip {name} {e}")
            print(f"onnx-extract: skip {name}: {e}", file=sys.stderr)
            n_skip += 1
            continue
        for k, x, y in sets:
            case = f"{name}.{k}"
            if x.dtype != np.float32 or y.dtype != np.float32 or x.shape != y.shape:
                why = f"input {x.dtype}{list(x.shape)}, output {y.dtype}{list(y.shape)}"
                lines.append(f"skip {case} not f32 in and out of one shape: {why}")
                print(f"onnx-extract: skip {case}: {why}", file=sys.stderr)
                n_skip += 1
                continue
            rank = x.ndim
            if axis is None:
                ax = -1 if opset >= 13 else 1
            else:
                ax = axis
            if not -rank <= ax < rank:
                lines.append(f"skip {case} axis {ax} out of range for rank {rank}")
                n_skip += 1
                continue
            ax %= rank
            xb = x.astype("<f4").tobytes()
            yb = y.astype("<f4").tobytes()
            base_case = f"{base}.{k}"
            if base != name and base_case in written and written[base_case][:2] == (xb, yb):
                lines.append(f"dup {case} {base_case}")
                n_dup += 1
                continue
            with open(os.path.join(outdir, f"{case}.input.f32"), "wb") as f:
                f.write(xb)
            with open(os.path.join(outdir, f"{case}.expected.f32"), "wb") as f:
                f.write(yb)
            shape = ",".join(str(d) for d in x.shape)
            lines.append(f"case {case} {op} {opset} {ax} {t.rtol!r} {t.atol!r} {shape} onnx")
            written[case] = (xb, yb, case)
            n_written += 1
            if base == name and rank >= 2:
                ax11 = (1 if axis is None else axis) % rank
                d = derived_opset11(op, x, ax11)
                with open(os.path.join(outdir, f"{case}.opset11.input.f32"), "wb") as f:
                    f.write(xb)
                with open(os.path.join(outdir, f"{case}.opset11.expected.f32"), "wb") as f:
                    f.write(d.astype("<f4").tobytes())
                lines.append(
                    f"case {case}.opset11 {op} 11 {ax11} {t.rtol!r} {t.atol!r} {shape} derived"
                )
                n_derived += 1
    lines.append(
        f"# {len(tests)} test directories: {n_written} cases written,"
        f" {n_dup} duplicates of their base case, {n_skip} skipped;"
        f" {n_derived} derived opset-11 cases"
    )
    with open(os.path.join(outdir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(
        f"onnx-extract: onnx {onnx.__version__}: {len(tests)} test directories,"
        f" {n_written} ONNX cases written, {n_dup} expanded duplicates, {n_skip} skipped,"
        f" {n_derived} derived opset-11 cases -> {outdir}/manifest.txt"
    )
    return 0 if n_written > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
