#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/{forward,family,half}/seed-*): small
inputs that reach each decoding mode, row length class, special value and
anchor. The layout is the one `src/lib.rs` decodes (`half`: the one
`fuzz_targets/half.rs` decodes)."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def f32(*vals):
    return b"".join(struct.pack("<f", v) for v in vals)

def u16(v):
    return struct.pack("<H", v)

def u32(v):
    return struct.pack("<I", v)

def flags(off_in, off_out, mode):
    return bytes([off_in | (off_out << 2) | (mode << 4)])

# length selector: 0 -> v % 33, 2 -> v % 301, 4 -> v % 4097, 7 -> 4097 + 2v
def length(n, big=False):
    if big:
        return bytes([7]) + u16(n)
    if n <= 32:
        return bytes([0]) + u16(n)
    if n <= 300:
        return bytes([2]) + u16(n)
    return bytes([4]) + u16(n)

RAW, PAL, SCALED, SPRINKLED = 0, 1, 2, 3
# palette bytes: b < 192 -> (b - 96) / 8; 192 + i -> SPECIALS[i]
NAN, SNAN, PINF, NINF, MAX, NMAX, SUB, ZERO = 192, 194, 198, 199, 202, 203, 206, 212

def pal(*xs):
    return bytes(96 + int(round(x * 8)) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in xs)

def forward_seeds():
    s = {}
    def add(name, fl, ln, scale, row_sel, bad_sel, pool):
        s[name] = fl + ln + bytes([scale, row_sel, bad_sel]) + pool
    add("ordinary", flags(0, 0, PAL), length(5), 0, 0, 0, pal(1, 2, 3, 4, 5))
    add("unaligned", flags(1, 3, PAL), length(19), 0, 1, 1, pal(*range(-9, 10)))
    add("nan", flags(2, 1, PAL), length(9), 0, 0, 0, pal(1, 2) + bytes([NAN]) + pal(4, 5))
    add("snan", flags(0, 0, PAL), length(17), 0, 0, 0, pal(1) + bytes([SNAN]) + pal(3))
    add("pos-inf", flags(0, 0, PAL), length(7), 0, 0, 0, pal(1) + bytes([PINF]) + pal(3, 4) + bytes([PINF]))
    add("all-masked", flags(0, 0, PAL), length(16), 0, 0, 0, bytes([NINF]))
    add("partial-mask", flags(3, 0, PAL), length(33 + 40), 0, 3, 0, pal(2, -1) + bytes([NINF, NINF]) + pal(0.5))
    add("extremes", flags(0, 1, RAW), length(4), 0, 0, 0, f32(3.4e38, -3.4e38, 1.0, -1e30))
    add("subnormal", flags(0, 0, RAW), length(8), 0, 0, 0, f32(1e-45, -1e-45, 1e-40, 0.0))
    add("all-equal", flags(0, 0, PAL), length(301 + 100), 0, 5, 0, pal(2.5))
    add("dominant", flags(0, 0, PAL), length(8), 0, 0, 0, pal(10, 0, 0, 0))
    add("uniform-4096", flags(1, 2, SCALED), length(4096), 2, 9, 2, bytes(range(0, 256, 7)))
    add("huge-range", flags(0, 0, SCALED), length(1000), 5, 4, 3, bytes(range(3, 256, 11)))
    add("sprinkled", flags(2, 2, SPRINKLED), length(250), 3, 6, 4, bytes(range(1, 256, 3)))
    add("rows", flags(0, 0, PAL), length(24), 0, 4, 5, pal(*[i % 7 - 3 for i in range(24)]))
    add("empty", flags(0, 0, PAL), length(0), 0, 2, 3, b"")
    add("one", flags(0, 0, PAL), length(1), 0, 0, 0, pal(-7))
    add("large", flags(0, 0, SCALED), length(12000, big=True), 2, 3, 0, bytes(range(5, 256, 13)))
    add("raw-mixed", flags(1, 1, RAW), length(64), 0, 2, 0, f32(0.0, -0.0, 88.72, -87.33, 1e-20, 2.0, 12582912.0, float("nan")))
    add("exp-edges", flags(0, 0, PAL), length(10), 0, 0, 0, bytes([96, 216, 217, 218, 219, 220, 221, 96, 225, 226]))
    return s

def family_seeds():
    s = {}
    # layout: flags, len(3), scale, alpha_sel, alpha_bits(4), row_sel,
    # anchor_sel, anchor_k(2), prob_sel, nterms, [sel, w(4)]*, pool
    def add(name, fl, ln, scale, alpha_sel, alpha, row_sel, anchor_sel, k, prob_sel, terms, pool):
        body = fl + ln + bytes([scale, alpha_sel]) + alpha + bytes([row_sel, anchor_sel]) + u16(k)
        body += bytes([prob_sel, len(terms) if len(terms) < 5 else terms.pop()])
        for sel, w in terms:
            body += bytes([sel]) + w
        s[name] = body + pool
    A = lambda v: f32(v)
    add("scaled-2", flags(0, 0, PAL), length(9), 0, 0, A(2.0), 0, 0, 0, 2, [], pal(1, 2, 3, -4))
    add("scaled-neg", flags(1, 0, PAL), length(12), 0, 0, A(-0.5), 1, 1, 3, 2, [], pal(1, 2, 3, -4, 0))
    add("scaled-inf", flags(0, 0, PAL), length(6), 0, 3 + 4 * 2, A(0), 0, 0, 0, 0, [], pal(1, 3, 3, 2))
    add("scaled-ninf", flags(0, 0, PAL), length(6), 0, 3 + 4 * 3, A(0), 0, 0, 0, 0, [], pal(1, 3, 1, 2))
    add("scaled-zero", flags(0, 0, PAL), length(5), 0, 3, A(0), 0, 0, 0, 0, [], pal(1, 2))
    add("scaled-nan", flags(0, 0, PAL), length(5), 0, 3 + 4 * 4, A(0), 0, 0, 0, 0, [], pal(1, 2))
    add("scaled-tiny", flags(0, 0, RAW), length(4), 0, 0, A(1e-38), 0, 0, 0, 0, [], f32(3e38, -3e38, 0.0, 1.0))
    add("probs-softmax", flags(2, 1, SCALED), length(100), 2, 2, u32(0x1234), 2, 1, 7, 2, [], bytes(range(0, 256, 5)))
    add("probs-zeromean", flags(0, 0, SCALED), length(40), 1, 0, A(1.0), 0, 0, 0, 1, [], bytes(range(0, 256, 9)))
    add("probs-zero", flags(0, 0, PAL), length(6), 0, 0, A(1.0), 0, 1, 2, 1, [], pal(1, 0, 2))
    add("probs-invalid", flags(0, 0, PAL), length(6), 0, 0, A(1.0), 0, 3, 99, 0, [], pal(1, -1, 2))
    add("backward", flags(1, 2, SCALED), length(77), 2, 0, A(1.0), 0, 0, 0, 2 | 4, [], bytes(range(1, 256, 6)))
    add("backward-raw", flags(0, 0, RAW), length(13), 0, 0, A(1.0), 0, 0, 0, 0, [], f32(1.0, -2.0, 0.5, 1e-45, 3.0, 1e20))
    add("jacobian", flags(0, 3, PAL), length(40), 0, 0, A(1.0), 0, 0, 0, 2 | 4, [], pal(*range(-5, 5)))
    add("combo-cfg", flags(0, 0, PAL), length(20), 0, 0, A(1.0), 0, 0, 0, 2, [(0, A(-2.0)), (0, A(3.0))], pal(*range(-6, 6)))
    add("combo-three", flags(1, 1, SCALED), length(300), 2, 0, A(1.0), 0, 0, 0, 2, [(0, A(0.5)), (0, A(0.25)), (1, u32(100))], bytes(range(2, 256, 5)))
    add("combo-none", flags(0, 0, PAL), length(7), 0, 0, A(1.0), 0, 0, 0, 2, [], pal(1, 2))
    add("combo-inf", flags(0, 0, PAL), length(8), 0, 0, A(1.0), 0, 0, 0, 2, [(0, A(float("inf"))), (0, A(1.0))], pal(1, 2, 0))
    add("sigmoid-edges", flags(0, 0, PAL), length(32), 0, 0, A(1.0), 0, 0, 0, 0, [], bytes(range(192, 224)))
    add("large", flags(0, 0, SCALED), length(9000, big=True), 2, 2, u32(0x9999), 7, 1, 5, 2 | 4, [(0, A(1.0))], bytes(range(1, 256, 17)))
    add("empty", flags(0, 0, PAL), length(0), 0, 0, A(1.0), 1, 1, 0, 2, [(0, A(1.0))], b"")
    return s

def known_findings():
    """Inputs that fail with SIMD_SOFTMAX_FUZZ_STRICT=1 (see README.md)."""
    f, fam = {}, {}
    # log_softmax([10, 0, 0, 0])[0]: ~3900 ULP off (ln of a sum near 1).
    f["log-softmax-dominant"] = flags(0, 0, PAL) + length(4) + bytes([0, 0, 0]) + pal(10, 0, 0, 0)
    # log_softmax of rows whose sum is just above 1 (still ~7 and ~32 ULP
    # off at 10e99fc, on every backend).
    f["log-softmax-near-one-8"] = flags(0, 0, RAW) + length(8) + bytes([0, 0, 0]) + f32(-8.0, *[-8.375] * 6, 0.6931472)
    f["log-softmax-near-one-7"] = flags(0, 0, RAW) + length(7) + bytes([0, 0, 0]) + f32(*[-34.761578] * 3, -10.0, -34.73106, -34.761578, -34.761578)
    # softmax([7.1, 0 x 62])[0] on scalar: ~15 ULP off (f32 block sums;
    # fixed by the compensated exp sum of 10e99fc).
    f["softmax-dominant-63"] = flags(0, 0, RAW) + length(63) + bytes([0, 0, 0]) + f32(7.1) + f32(*[0.0] * 62)
    # softmax_scaled([3e38, -3e38], 1e-38): [1, 0] instead of [0.9975, 0.0025].
    fam["scaled-tiny-alpha"] = family_seeds()["scaled-tiny"]
    # softmax_of_combination(2*[MAX, 1] + 2*[-MAX, 0]): NaN on scalar,
    # [1, 0] on AVX2/AVX-512; exactly S([2, 0]) = [0.881, 0.119].
    pool = bytearray([96] * 40)
    pool[7], pool[8], pool[28], pool[29] = 202, 104, 203, 96
    body = flags(0, 0, PAL) + length(2) + bytes([0, 0]) + f32(1.0) + bytes([0, 0]) + u16(0)
    body += bytes([2, 2]) + bytes([0]) + f32(2.0) + bytes([0]) + f32(2.0)
    fam["combination-overflow"] = body + bytes(pool)
    return f, fam

kf, kfam = known_findings()
for target, seeds in (("forward", kf), ("family", kfam)):
    d = os.path.join(HERE, "known", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(data)

def half_seeds():
    """`fuzz_targets/half.rs`: a pair-and-mode byte, a flags byte, two bytes
    of row length, a `*_rows` byte, then the row's bit patterns (two bytes
    each for a half input, four for f32; the target decodes what it gets)."""
    out = {}
    vals = [1.0, -2.5, 0.0, 3.25, -10.0, 7.5, 0.125, -0.75]
    for sel in range(12):
        for n, rows in ((5, 1), (16, 4), (40, 8)):
            body = b"".join(u16(struct.unpack("<I", struct.pack("<f", vals[i % 8] * (1 + i % 3)))[0] >> 16)
                            for i in range(n))
            body += f32(*[vals[i % 8] for i in range(n)])
            out[f"pair{sel}-n{n}"] = bytes([sel, 0]) + u16(n) + bytes([rows]) + body
    # Special values: NaN, +inf, -inf in bf16 bits, then in f16 bits.
    out["bf16-specials"] = bytes([1, 0]) + u16(6) + bytes([1]) + b"".join(
        u16(v) for v in (0x7fc0, 0x3f80, 0x7f80, 0xff80, 0x0001, 0x8000))
    out["f16-specials"] = bytes([2, 0]) + u16(6) + bytes([1]) + b"".join(
        u16(v) for v in (0x7e00, 0x3c00, 0x7c00, 0xfc00, 0x0001, 0x8000))
    return out

for target, seeds in (("forward", forward_seeds()), ("family", family_seeds()),
                      ("half", half_seeds())):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print(target, len(seeds), "seeds")
