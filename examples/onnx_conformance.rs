//! ONNX's own conformance cases for `Softmax` and `LogSoftmax`, computed the
//! way an inference engine would compute the ops with this crate.
//!
//! ```text
//! scripts/onnx-conformance.sh [OUTDIR]          # venv + onnx 1.17.0, extract, build, run this
//! cargo run --example onnx_conformance -- OUTDIR   # on cases already extracted
//! ```
//!
//! (The script builds it with `cargo build --workspace --all-features`, the
//! feature set of CI's `cargo test --workspace --all-features`, so that only
//! the example itself is compiled there.)
//!
//! `scripts/onnx-extract.py OUTDIR` writes ONNX's backend node tests
//! (`onnx/backend/test/data/node/test_softmax*` and `test_logsoftmax*`) as
//! `OUTDIR/manifest.txt` plus raw little-endian f32 files; its docstring
//! describes the format. Each case is a tensor, an op, the model's opset,
//! the (normalized) `axis` and the tolerances ONNX's backend test runner
//! uses, `np.testing.assert_allclose(actual, expected, rtol, atol)` with
//! the loader's defaults `rtol = 1e-3`, `atol = 1e-7` unless the case says
//! otherwise.
//!
//! The ops, as an engine maps them onto the row functions:
//! * opset ≥ 13: the op runs along `axis`. With `axis` last the rows are
//!   contiguous and back to back, so `softmax_rows` / `log_softmax_rows`
//!   take the tensor as it is, `row_len` = that dimension. Otherwise the
//!   lanes along `axis` are `inner` elements apart (the product of the
//!   dimensions after it): neither contiguous rows nor rows at a stride
//!   (which `softmax_rows_strided` takes), so the axis is moved last into
//!   a contiguous buffer, the rows are computed, and the result is moved
//!   back.
//! * opset < 13: the input is coerced to 2-D at `axis` (rows: the product
//!   of the dimensions before it; a row: the product from it on), which is
//!   already contiguous rows.
//!
//! Every case runs through the free functions (the dispatched backend,
//! `SIMD_SOFTMAX_BACKEND` honoured) and through `Softmax::with_backend` on
//! every backend this CPU runs. One line per case and backend, then
//! `N passed, M failed`; the exit status is non-zero if a case failed or
//! no case was found.

use simd_softmax::{Backend, Error, Softmax, log_softmax_rows, softmax_rows};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Softmax,
    LogSoftmax,
}

struct Case {
    name: String,
    op: Op,
    opset: u32,
    axis: usize,
    rtol: f64,
    atol: f64,
    shape: Vec<usize>,
    source: String,
    input: Vec<f32>,
    expected: Vec<f32>,
}

struct Manifest {
    cases: Vec<Case>,
    duplicates: usize,
    skipped: Vec<String>,
}

fn read_f32(path: &Path, len: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() != 4 * len {
        return Err(format!(
            "{}: {} bytes, expected {} ({len} f32)",
            path.display(),
            bytes.len(),
            4 * len
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn parse_case(dir: &Path, fields: &[&str]) -> Result<Case, String> {
    let [name, op, opset, axis, rtol, atol, shape, source] = fields else {
        return Err(format!("{} fields, expected 8", fields.len()));
    };
    let num = |what: &str, v: &str| format!("bad {what} {v:?}");
    let op = match *op {
        "Softmax" => Op::Softmax,
        "LogSoftmax" => Op::LogSoftmax,
        other => return Err(format!("unknown op {other:?}")),
    };
    let shape = shape
        .split(',')
        .map(|d| d.parse::<usize>().map_err(|_| num("dimension", d)))
        .collect::<Result<Vec<_>, _>>()?;
    let axis: usize = axis.parse().map_err(|_| num("axis", axis))?;
    if axis >= shape.len() {
        return Err(format!("axis {axis} for rank {}", shape.len()));
    }
    let len = shape.iter().product();
    Ok(Case {
        name: name.to_string(),
        op,
        opset: opset.parse().map_err(|_| num("opset", opset))?,
        axis,
        rtol: rtol.parse().map_err(|_| num("rtol", rtol))?,
        atol: atol.parse().map_err(|_| num("atol", atol))?,
        source: source.to_string(),
        input: read_f32(&dir.join(format!("{name}.input.f32")), len)?,
        expected: read_f32(&dir.join(format!("{name}.expected.f32")), len)?,
        shape,
    })
}

fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join("manifest.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut m = Manifest {
        cases: Vec::new(),
        duplicates: 0,
        skipped: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.first() {
            None => {}
            Some(f) if f.starts_with('#') => println!("{line}"),
            Some(&"case") => {
                let case = parse_case(dir, &fields[1..])
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
                m.cases.push(case);
            }
            Some(&"dup") => m.duplicates += 1,
            Some(&"skip") => m.skipped.push(fields[1..].join(" ")),
            Some(other) => {
                return Err(format!(
                    "{}:{}: unknown line {other:?}",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    Ok(m)
}

/// The row functions of one way of calling the crate.
trait Rows {
    fn rows(&self, op: Op, x: &[f32], y: &mut [f32], row_len: usize) -> Result<(), Error>;
}

/// The free functions: `Softmax::new()`'s backend.
struct Dispatch;

impl Rows for Dispatch {
    fn rows(&self, op: Op, x: &[f32], y: &mut [f32], row_len: usize) -> Result<(), Error> {
        match op {
            Op::Softmax => softmax_rows(x, y, row_len),
            Op::LogSoftmax => log_softmax_rows(x, y, row_len),
        }
    }
}

impl Rows for Softmax {
    fn rows(&self, op: Op, x: &[f32], y: &mut [f32], row_len: usize) -> Result<(), Error> {
        match op {
            Op::Softmax => self.softmax_rows(x, y, row_len),
            Op::LogSoftmax => self.log_softmax_rows(x, y, row_len),
        }
    }
}

/// The op of `case` on its input, as an engine computes it.
fn compute(case: &Case, rows: &dyn Rows) -> Result<Vec<f32>, Error> {
    let x = &case.input;
    let mut y = vec![0.0f32; x.len()];
    if x.is_empty() {
        return Ok(y);
    }
    let (outer, n, inner) = (
        case.shape[..case.axis].iter().product::<usize>(),
        case.shape[case.axis],
        case.shape[case.axis + 1..].iter().product::<usize>(),
    );
    if case.opset < 13 {
        // Coerced to 2-D [outer, n·inner]: contiguous rows already.
        rows.rows(case.op, x, &mut y, n * inner)?;
    } else if inner == 1 {
        // The axis is the last: contiguous rows of n.
        rows.rows(case.op, x, &mut y, n)?;
    } else {
        // [outer, n, inner] → [outer, inner, n], the rows, and back.
        let mut moved = vec![0.0f32; x.len()];
        for o in 0..outer {
            for k in 0..n {
                for i in 0..inner {
                    moved[(o * inner + i) * n + k] = x[(o * n + k) * inner + i];
                }
            }
        }
        let mut out = vec![0.0f32; x.len()];
        rows.rows(case.op, &moved, &mut out, n)?;
        for o in 0..outer {
            for k in 0..n {
                for i in 0..inner {
                    y[(o * n + k) * inner + i] = out[(o * inner + i) * n + k];
                }
            }
        }
    }
    Ok(y)
}

/// `np.testing.assert_allclose(actual, expected, rtol, atol)` (NaNs equal):
/// whether it passes, the largest `|a − e|` and `|a − e| / |e|` over the
/// finite pairs (`e ≠ 0` for the latter), and the first offending index.
struct Compare {
    pass: bool,
    max_abs: f64,
    max_rel: f64,
    first_bad: Option<usize>,
}

fn allclose(actual: &[f32], expected: &[f32], rtol: f64, atol: f64) -> Compare {
    let mut c = Compare {
        pass: true,
        max_abs: 0.0,
        max_rel: 0.0,
        first_bad: None,
    };
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let (a, e) = (f64::from(a), f64::from(e));
        let ok = if a.is_nan() || e.is_nan() {
            a.is_nan() && e.is_nan()
        } else if a.is_infinite() || e.is_infinite() {
            a == e
        } else {
            let d = (a - e).abs();
            c.max_abs = c.max_abs.max(d);
            if e != 0.0 {
                c.max_rel = c.max_rel.max(d / e.abs());
            }
            d <= atol + rtol * e.abs()
        };
        if !ok && c.pass {
            c.pass = false;
            c.first_bad = Some(i);
        }
    }
    c
}

fn shape_str(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// Cases, failures, max abs and max rel error.
#[derive(Default)]
struct Tally {
    cases: usize,
    failed: usize,
    max_abs: f64,
    max_rel: f64,
}

impl Tally {
    fn add(&mut self, failed: bool, max_abs: f64, max_rel: f64) {
        self.cases += 1;
        self.failed += usize::from(failed);
        self.max_abs = self.max_abs.max(max_abs);
        self.max_rel = self.max_rel.max(max_rel);
    }
}

/// One backend's tallies: all cases, then by source (`onnx`, `derived`).
#[derive(Default)]
struct Tallies {
    all: Tally,
    by_source: std::collections::BTreeMap<String, Tally>,
}

fn run_all(label: &str, rows: &dyn Rows, cases: &[Case]) -> Tallies {
    let mut t = Tallies::default();
    for case in cases {
        let (pass, max_abs, max_rel, detail) = match compute(case, rows) {
            Err(e) => (false, 0.0, 0.0, format!("error: {e}")),
            Ok(y) => {
                let c = allclose(&y, &case.expected, case.rtol, case.atol);
                let mut detail = format!("max_abs {:.2e} max_rel {:.2e}", c.max_abs, c.max_rel);
                if let Some(i) = c.first_bad {
                    detail += &format!(
                        " (first at {i}: got {:e}, expected {:e}, rtol {:e} atol {:e})",
                        y[i], case.expected[i], case.rtol, case.atol
                    );
                }
                (c.pass, c.max_abs, c.max_rel, detail)
            }
        };
        t.all.add(!pass, max_abs, max_rel);
        let by = t.by_source.entry(case.source.clone()).or_default();
        by.add(!pass, max_abs, max_rel);
        println!(
            "{label:<8} {:<42} {:<10} opset {:<2} axis {} shape {:<9} {:<7} {detail} {}",
            case.name,
            format!("{:?}", case.op),
            case.opset,
            case.axis,
            shape_str(&case.shape),
            case.source,
            if pass { "pass" } else { "FAIL" },
        );
    }
    t
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: onnx_conformance OUTDIR   (the directory scripts/onnx-extract.py wrote)");
        return ExitCode::from(2);
    };
    let m = match read_manifest(&dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("onnx_conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let by_source = |s: &str| m.cases.iter().filter(|c| c.source == s).count();
    println!(
        "{} cases ({} from ONNX, {} derived opset-11 forms), {} expanded variants with their \
         base case's data not repeated, {} skipped by the extractor",
        m.cases.len(),
        by_source("onnx"),
        by_source("derived"),
        m.duplicates,
        m.skipped.len()
    );
    for s in &m.skipped {
        println!("extractor skipped: {s}");
    }

    let mut tallies = vec![(
        format!("dispatch ({})", Softmax::new().backend()),
        run_all("dispatch", &Dispatch, &m.cases),
    )];
    for &b in Backend::ALL.iter() {
        match Softmax::with_backend(b) {
            Ok(sm) => tallies.push((b.name().to_string(), run_all(b.name(), &sm, &m.cases))),
            Err(e) => println!("{:<8} skipped: {e}", b.name()),
        }
    }

    let (mut passed, mut failed) = (0, 0);
    for (label, t) in &tallies {
        let parts: Vec<String> = std::iter::once(("all", &t.all))
            .chain(t.by_source.iter().map(|(s, t)| (s.as_str(), t)))
            .map(|(s, t)| {
                format!(
                    "{s}: {} cases, {} failed, max abs {:.2e}, max rel {:.2e}",
                    t.cases, t.failed, t.max_abs, t.max_rel
                )
            })
            .collect();
        println!("{label}: {}", parts.join("; "));
        passed += t.all.cases - t.all.failed;
        failed += t.all.failed;
    }
    println!("{passed} passed, {failed} failed");
    if m.cases.is_empty() {
        eprintln!("onnx_conformance: no cases in {}", dir.display());
        return ExitCode::FAILURE;
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
