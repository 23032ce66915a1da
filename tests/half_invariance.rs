//! A half-precision call is its f32 call rounded once: for every target
//! (each backend the CPU runs and the portable 16-lane kernel), every
//! (input, output) format pair and row lengths that reach every regime
//! (short rows, the pipeline, tiles' edges, long rows tile by tile, the
//! two-pass rows), the output equals, bit for bit, the f32 output for the
//! widened input converted once to the output format (`half`'s `from_f32`).
//! Batches of several rows and in-place calls too.

mod common;

use half::{bf16, f16};
use simd_softmax_kernels::convert::Format;
use simd_softmax_kernels::testing::Target;
use simd_softmax_kernels::{Elems, ElemsMut};

const FORMATS: [Format; 3] = [Format::F32, Format::F16, Format::Bf16];

/// Rows `x` (f32 values) stored in `f` as bit patterns (f32 bits for f32).
fn encode(x: &[f32], f: Format) -> Vec<u32> {
    x.iter()
        .map(|&v| match f {
            Format::F32 => v.to_bits(),
            Format::F16 => f16::from_f32(v).to_bits() as u32,
            Format::Bf16 => bf16::from_f32(v).to_bits() as u32,
        })
        .collect()
}

fn decode(b: &[u32], f: Format) -> Vec<f32> {
    b.iter()
        .map(|&v| match f {
            Format::F32 => f32::from_bits(v),
            Format::F16 => f16::from_bits(v as u16).to_f32(),
            Format::Bf16 => bf16::from_bits(v as u16).to_f32(),
        })
        .collect()
}

/// Runs `target` on bit patterns `x` (format `fi`) into a fresh output of
/// format `fo`; `None` where the target is missing.
fn run(t: Target, x: &[u32], fi: Format, fo: Format, w: usize, log: bool) -> Option<Vec<u32>> {
    let (x32, x16): (Vec<f32>, Vec<u16>) = match fi {
        Format::F32 => (x.iter().map(|&b| f32::from_bits(b)).collect(), vec![]),
        _ => (vec![], x.iter().map(|&b| b as u16).collect()),
    };
    let input = match fi {
        Format::F32 => Elems::F32(&x32),
        Format::F16 => Elems::F16(&x16),
        Format::Bf16 => Elems::Bf16(&x16),
    };
    let (mut y32, mut y16) = (vec![0f32; x.len()], vec![0u16; x.len()]);
    let output = match fo {
        Format::F32 => ElemsMut::F32(&mut y32),
        Format::F16 => ElemsMut::F16(&mut y16),
        Format::Bf16 => ElemsMut::Bf16(&mut y16),
    };
    if !t.softmax_rows_elems(input, output, w, log) {
        return None;
    }
    Some(match fo {
        Format::F32 => y32.iter().map(|v| v.to_bits()).collect(),
        _ => y16.iter().map(|&v| v as u32).collect(),
    })
}

#[test]
fn half_outputs_are_f32_outputs_rounded_once() {
    let quick = common::quick();
    let mut lens: Vec<usize> = vec![
        1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 128, 1000,
    ];
    lens.extend([4095, 4096, 4097, 5000, 8192 + 7, 32_000]);
    if !quick {
        lens.push((1 << 21) + 13);
    }
    for t in common::targets("half_invariance") {
        let mut checked = 0usize;
        for &w in &lens {
            let rows = if w <= 64 {
                13
            } else if w <= 5000 {
                3
            } else {
                1
            };
            for fam in [
                common::Family::ALL[0],
                common::Family::ALL[3],
                common::Family::ALL[7],
            ] {
                let x = common::gen_row(fam, w * rows, w as u64);
                for fi in FORMATS {
                    let xb = encode(&x, fi);
                    let xw = decode(&xb, fi); // the widened input
                    for log in [false, true] {
                        let f32_out = run(
                            t,
                            &encode(&xw, Format::F32),
                            Format::F32,
                            Format::F32,
                            w,
                            log,
                        )
                        .unwrap();
                        let f32_vals = decode(&f32_out, Format::F32);
                        for fo in FORMATS {
                            if fi == Format::F32 && fo == Format::F32 {
                                continue;
                            }
                            let got = run(t, &xb, fi, fo, w, log).unwrap();
                            let want = encode(&f32_vals, fo);
                            if got != want {
                                let i = got.iter().zip(&want).position(|(a, b)| a != b).unwrap();
                                panic!(
                                    "{} {} {}->{} w={w} rows={rows} {}: element {i} got {:#x} want {:#x} (f32 {:e}, x {:e})",
                                    t.name(),
                                    if log { "log_softmax" } else { "softmax" },
                                    fi.name(),
                                    fo.name(),
                                    fam.name(),
                                    got[i],
                                    want[i],
                                    f32_vals[i],
                                    xw[i]
                                );
                            }
                            checked += got.len();
                        }
                    }
                }
            }
        }
        println!(
            "{}: {checked} elements equal to the f32 result rounded once",
            t.name()
        );
    }
}
