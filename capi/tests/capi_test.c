/*
 * capi_test.c: the C ABI's test (scripts/capi.sh test builds and runs it
 * against the static and the shared library, and under valgrind).
 *
 * Every function the header declares is called here, on every backend this
 * CPU runs (and on SIMD_SOFTMAX_BACKEND_DEFAULT), and its results are
 * compared with a double-precision reference computed in this file, with the
 * error bounds docs/ACCURACY.md states (softmax: (4 + |x_i - m|) f32 ulps of
 * the exact result; half outputs: half an ulp of the output type more).
 * Every error status is provoked at least once, and each refused call is
 * checked to have left its outputs untouched (they are filled with a canary
 * first). A part of the checks also runs from 8 threads at once.
 *
 * SIMD_SOFTMAX_TEST_QUICK=1 (the valgrind run) uses smaller sizes.
 * The last line is "N passed, M failed"; the exit status is nonzero when
 * any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <simd_softmax.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Checks and their counters (atomic: the threads share them).          */

static atomic_long g_pass;
static atomic_long g_fail;
static atomic_int g_printed;
static int g_quick;
static uint64_t g_seed = 42; /* SIMD_SOFTMAX_TEST_SEED overrides it */

/* What the calling thread is testing (printed with a failure). */
static _Thread_local char t_ctx[192];
/* The calling thread's own counts. */
static _Thread_local long t_pass;
static _Thread_local long t_fail;

#define MAX_PRINTED 20

static void set_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_ctx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_ctx, sizeof t_ctx, fmt, ap);
    va_end(ap);
}

static int check_at(int ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int check_at(int ok, int line, const char *fmt, ...)
{
    if (ok) {
        atomic_fetch_add(&g_pass, 1);
        t_pass++;
        return 1;
    }
    atomic_fetch_add(&g_fail, 1);
    t_fail++;
    if (atomic_fetch_add(&g_printed, 1) < MAX_PRINTED) {
        char msg[640];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        printf("FAIL (line %d) [%s]: %s\n", line, t_ctx, msg);
        fflush(stdout);
    }
    return 0;
}

#define CHECK(cond, ...) check_at(!!(cond), __LINE__, __VA_ARGS__)

static const char *st_name(simd_softmax_status s)
{
    return simd_softmax_status_name(s);
}

/* A call's status must be `want`. */
static int expect_status(int line, const char *call, simd_softmax_status got,
                         simd_softmax_status want)
{
    return check_at(got == want, line, "%s: status %s (%d), want %s (%d)", call,
                    st_name(got), (int)got, st_name(want), (int)want);
}

#define EXPECT_ST(want, call) expect_status(__LINE__, #call, (call), (want))
#define EXPECT_OK(call) EXPECT_ST(SIMD_SOFTMAX_OK, call)

/* ------------------------------------------------------------------ */
/* Random numbers (splitmix64; each thread has its own state).          */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unif(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1p-53;
}

static double rng_range(rng_t *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unif(r);
}

static double rng_normal(rng_t *r)
{
    double u1 = rng_unif(r), u2 = rng_unif(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static size_t rng_below(rng_t *r, size_t n)
{
    return (size_t)(rng_next(r) % (uint64_t)n);
}

/* ------------------------------------------------------------------ */
/* Half precision: float <-> f16 / bf16 bits, round to nearest even.    */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t f16_from_f32(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x47800000u) /* >= 65536 (and inf): inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) { /* a normal half (>= 2^-14) */
        uint32_t r = ax - ((uint32_t)(127 - 15) << 23);
        r += 0xfffu + ((r >> 13) & 1u); /* may carry into the exponent: right */
        return (uint16_t)(sign | (r >> 13)); /* 65520 and up carry to inf */
    }
    /* Subnormal or zero: units of 2^-24, exact scaling, then nearest even. */
    float scaled = f32_from_bits(ax) * 0x1p24f;
    return (uint16_t)(sign | (uint16_t)nearbyintf(scaled));
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31)
        return f32_from_bits(sign | 0x7f800000u | (m << 13));
    return f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

static uint16_t bf16_from_f32(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* The value a float takes after a round trip through `t`. */
static float round_to(simd_softmax_dtype t, float f)
{
    switch (t) {
    case SIMD_SOFTMAX_F16:
        return f16_to_f32(f16_from_f32(f));
    case SIMD_SOFTMAX_BF16:
        return bf16_to_f32(bf16_from_f32(f));
    default:
        return f;
    }
}

static const char *dtype_name(simd_softmax_dtype t)
{
    return t == SIMD_SOFTMAX_F32 ? "f32" : t == SIMD_SOFTMAX_F16 ? "f16" : "bf16";
}

/* A buffer of n elements of type t (8-byte aligned, from malloc). */
static void *tbuf(simd_softmax_dtype t, size_t n)
{
    void *p = malloc((n ? n : 1) * simd_softmax_dtype_size(t) + 8);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void tput(simd_softmax_dtype t, void *buf, size_t i, float v)
{
    switch (t) {
    case SIMD_SOFTMAX_F16:
        ((uint16_t *)buf)[i] = f16_from_f32(v);
        break;
    case SIMD_SOFTMAX_BF16:
        ((uint16_t *)buf)[i] = bf16_from_f32(v);
        break;
    default:
        ((float *)buf)[i] = v;
    }
}

static float tget(simd_softmax_dtype t, const void *buf, size_t i)
{
    switch (t) {
    case SIMD_SOFTMAX_F16:
        return f16_to_f32(((const uint16_t *)buf)[i]);
    case SIMD_SOFTMAX_BF16:
        return bf16_to_f32(((const uint16_t *)buf)[i]);
    default:
        return ((const float *)buf)[i];
    }
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static float *fbuf(size_t n)
{
    return xmalloc(n * sizeof(float));
}

static double *dbuf(size_t n)
{
    return xmalloc(n * sizeof(double));
}

#define CANARY (-12345.5f)
#define CANARY16 ((uint16_t)0xBEEF)

static void fill_canary(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = CANARY;
}

static int all_canary(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (f32_bits(p[i]) != f32_bits(CANARY))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Error bounds.                                                         */

/* The spacing of f32 at |r| (2^-149 for zero and subnormals). */
static double ulp32(double r)
{
    r = fabs(r);
    if (isinf(r) || isnan(r))
        return INFINITY;
    float f = (float)r;
    if (isinf(f))
        return 0x1p104;
    if (f < 0x1p-126f)
        return 0x1p-149;
    int e;
    frexp((double)f, &e); /* f = g * 2^e, g in [0.5, 1) */
    return ldexp(1.0, e - 1 - 23);
}

/* ulp_O(r) of docs/ACCURACY.md: 2^(e-10) for f16, 2^(e-7) for bf16, e the
 * exponent of |r| clamped at the format's smallest normal one. */
static double ulp_half(double r, simd_softmax_dtype t)
{
    if (t == SIMD_SOFTMAX_F32)
        return 0.0;
    r = fabs(r);
    if (isinf(r) || isnan(r))
        return INFINITY;
    int e = -1000;
    if (r > 0) {
        frexp(r, &e);
        e -= 1;
    }
    if (t == SIMD_SOFTMAX_F16)
        return ldexp(1.0, (e < -14 ? -14 : e) - 10);
    return ldexp(1.0, (e < -126 ? -126 : e) - 7);
}

/* The largest |got - want| / tol of an array and where it is. */
typedef struct {
    int bad;
    double worst;
    size_t idx;
    double got, want, tol;
} worst_t;

static void worst_init(worst_t *w)
{
    memset(w, 0, sizeof *w);
    w->worst = -1;
}

/* One element: NaN and infinities must match exactly, the rest be within tol. */
static void worst_add(worst_t *w, size_t i, double got, double want, double tol)
{
    int ok;
    double ratio;
    if (isnan(want)) {
        ok = isnan(got);
        ratio = 0;
    } else if (isinf(want)) {
        ok = got == want;
        ratio = 0;
    } else {
        double d = fabs(got - want);
        ok = d <= tol; /* false for a NaN got */
        ratio = tol > 0 ? d / tol : (d == 0 ? 0 : INFINITY);
    }
    if (w->bad)
        return;
    if (!ok || ratio > w->worst) {
        w->bad = !ok;
        w->worst = ratio;
        w->idx = i;
        w->got = got;
        w->want = want;
        w->tol = tol;
    }
}

static int worst_check(int line, const worst_t *w, const char *what)
{
    return check_at(!w->bad, line, "%s: [%zu] = %.9g, want %.17g (tol %.3g, %.3g tols off)",
                    what, w->idx, w->got, w->want, w->tol,
                    w->tol > 0 ? fabs(w->got - w->want) / w->tol : INFINITY);
}

#define WORST_CHECK(w, what) worst_check(__LINE__, (w), (what))

/* Bit equality of two float arrays. */
static int same_bits_f(const float *a, const float *b, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (f32_bits(a[i]) != f32_bits(b[i]) && !(isnan(a[i]) && isnan(b[i]))) {
            *at = i;
            return 0;
        }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The double-precision reference.                                      */

/* The softmax of keys z (and an optional sink, -inf for none), its log and
 * logsumexp, with each output's tolerance (docs/ACCURACY.md's bounds):
 * softmax: (4 + keyulps_i) f32 ulps of r_i, keyulps_i = |z_i - m| unless
 * given; log-softmax: 4 ulp(r_i) + ulp(z_i - m) + sum_j p_j ulp(z_j - m);
 * half outputs half an ulp of the output type more. */
typedef struct {
    size_t n;
    double *p, *lp, *tp, *tlp;
    unsigned char *flush; /* the result may be flushed to 0 */
    double lse, tlse;
    double m, S, rest; /* finite rows: the max, sum e^(z - m), its part below the max */
    double lnS;        /* ln S, without m's rounding */
    size_t kmax;       /* how many entries equal the max */
    double K;          /* sum_j p_j ulp(z_j - m) */
} expect_t;

static void expect_init(expect_t *e, size_t n)
{
    memset(e, 0, sizeof *e);
    e->n = n;
    e->p = dbuf(n);
    e->lp = dbuf(n);
    e->tp = dbuf(n);
    e->tlp = dbuf(n);
    e->flush = xmalloc(n ? n : 1);
}

static void expect_free(expect_t *e)
{
    free(e->p);
    free(e->lp);
    free(e->tp);
    free(e->tlp);
    free(e->flush);
}

#define C_ULPS 4.0

static void expect_softmax(expect_t *e, const double *z, size_t n, double sink,
                           const double *keyulps, simd_softmax_dtype ot)
{
    int nan = isnan(sink);
    size_t kinf = sink == INFINITY;
    double m = sink;
    for (size_t i = 0; i < n; i++) {
        if (isnan(z[i]))
            nan = 1;
        else if (z[i] == INFINITY)
            kinf++;
        if (z[i] > m)
            m = z[i];
    }
    e->m = m;
    e->K = 0;
    e->kmax = 0;
    e->rest = 0;
    for (size_t i = 0; i < n; i++)
        e->flush[i] = 0;
    if (nan) {
        for (size_t i = 0; i < n; i++) {
            e->p[i] = e->lp[i] = NAN;
            e->tp[i] = e->tlp[i] = 0;
        }
        e->lse = NAN;
        e->tlse = 0;
        e->S = NAN;
        return;
    }
    if (kinf) {
        /* +inf entries share the mass (a +inf sink takes it all). */
        for (size_t i = 0; i < n; i++) {
            int at = z[i] == INFINITY;
            e->p[i] = at ? 1.0 / (double)kinf : 0.0;
            e->lp[i] = at ? -log((double)kinf) : -INFINITY;
            e->tp[i] = ((C_ULPS)*ulp32(e->p[i]) + 0.5 * ulp_half(e->p[i], ot)) * (at ? 1 : 0);
            e->tlp[i] = at ? C_ULPS * ulp32(e->lp[i]) + 0.5 * ulp_half(e->lp[i], ot) : 0;
        }
        e->lse = INFINITY;
        e->tlse = 0;
        e->S = INFINITY;
        e->kmax = kinf;
        return;
    }
    if (m == -INFINITY) {
        /* Empty or fully masked: zeros, -inf logs. */
        for (size_t i = 0; i < n; i++) {
            e->p[i] = 0;
            e->lp[i] = -INFINITY;
            e->tp[i] = e->tlp[i] = 0;
        }
        e->lse = -INFINITY;
        e->tlse = 0;
        e->S = 0;
        return;
    }
    size_t k = sink == m;
    double rest = sink < m ? exp(sink - m) : 0.0;
    for (size_t i = 0; i < n; i++) {
        if (z[i] == m)
            k++;
        else
            rest += exp(z[i] - m);
    }
    double S = (double)k + rest;
    double lnS = log1p((double)(k - 1) + rest);
    e->S = S;
    e->rest = rest;
    e->kmax = k;
    double K = 0;
    for (size_t i = 0; i < n; i++) {
        double d = z[i] - m;
        e->p[i] = exp(d) / S;
        e->lp[i] = d - lnS;
        if (e->lp[i] < -FLT_MAX) /* (x_i - m overflows f32: -inf) */
            e->lp[i] = -INFINITY;
        if (e->p[i] > 0)
            K += e->p[i] * ulp32((float)d);
    }
    if (sink > -INFINITY && sink < m)
        K += exp(sink - m) / S * ulp32((float)(sink - m));
    e->K = K;
    e->lnS = lnS;
    e->lse = m + lnS;
    e->tlse = C_ULPS * ulp32(e->lse) + K;
    for (size_t i = 0; i < n; i++) {
        double d = z[i] - m;
        if (z[i] == -INFINITY || e->lp[i] == -INFINITY) {
            e->tp[i] = 0;
            e->tlp[i] = 0;
            continue;
        }
        double ku = keyulps ? keyulps[i] : fabs(d);
        e->tp[i] = (C_ULPS + ku) * ulp32(e->p[i]) * (1 + 1e-9) + 0.5 * ulp_half(e->p[i], ot);
        e->tlp[i] = (C_ULPS * ulp32(e->lp[i]) + ulp32((float)d) + K) * (1 + 1e-9) +
                    0.5 * ulp_half(e->lp[i], ot);
        /* e^(z_i - m) below 2^-126: the kernels flush the term (0 allowed). */
        e->flush[i] = d < -87.3;
    }
}

/* Checks a softmax output y (e->n contiguous elements of type t) against the
 * expectation; each array is one check. */
static int check_p_at(int line, const expect_t *e, simd_softmax_dtype t, const void *y,
                      const char *what)
{
    worst_t w;
    worst_init(&w);
    for (size_t i = 0; i < e->n; i++) {
        double g = tget(t, y, i);
        if (e->flush[i] && g == 0)
            continue;
        worst_add(&w, i, g, e->p[i], e->tp[i]);
    }
    return worst_check(line, &w, what);
}

static int check_lp_at(int line, const expect_t *e, simd_softmax_dtype t, const void *y,
                       const char *what)
{
    worst_t w;
    worst_init(&w);
    for (size_t i = 0; i < e->n; i++)
        worst_add(&w, i, tget(t, y, i), e->lp[i], e->tlp[i]);
    return worst_check(line, &w, what);
}

#define CHECK_P(e, t, y, what) check_p_at(__LINE__, (e), (t), (y), (what))
#define CHECK_LP(e, t, y, what) check_lp_at(__LINE__, (e), (t), (y), (what))

/* Row generators: every value is a float (and, for halves, rounded to the
 * input type by the caller). */
enum { GEN_UNIFORM, GEN_OFFSET, GEN_MASKED, GEN_EQUAL, GEN_WIDE, GEN_COUNT };

static const char *gen_name(int g)
{
    static const char *names[] = {"uniform[-10,10]", "1000+normal(3)", "masked",
                                  "all equal", "normal(30)"};
    return names[g];
}

static void gen_row(rng_t *r, int kind, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v;
        switch (kind) {
        case GEN_UNIFORM:
            v = rng_range(r, -10, 10);
            break;
        case GEN_OFFSET:
            v = 1000 + 3 * rng_normal(r);
            break;
        case GEN_MASKED:
            v = rng_unif(r) < 0.25 ? -INFINITY : rng_range(r, -60, 20);
            break;
        case GEN_EQUAL:
            v = 7.25;
            break;
        default:
            v = 30 * rng_normal(r);
        }
        x[i] = (float)v;
    }
    if (kind == GEN_MASKED && n > 0)
        x[rng_below(r, n)] = 1.5f; /* at least one finite entry */
}

static void to_double(const float *x, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
}

/* ------------------------------------------------------------------ */
/* The backends.                                                         */

static const simd_softmax_backend ALL_BACKENDS[] = {
    SIMD_SOFTMAX_BACKEND_SCALAR, SIMD_SOFTMAX_BACKEND_AVX2, SIMD_SOFTMAX_BACKEND_AVX512,
    SIMD_SOFTMAX_BACKEND_NEON, SIMD_SOFTMAX_BACKEND_DEFAULT};
#define N_ALL_BACKENDS (sizeof ALL_BACKENDS / sizeof ALL_BACKENDS[0])

static simd_softmax_backend g_runnable[N_ALL_BACKENDS];
static size_t g_n_runnable;
static simd_softmax_backend g_unsupported; /* one this CPU lacks, 0 if none */

static const char *bname(simd_softmax_backend b)
{
    const char *n = simd_softmax_backend_name(b);
    return n ? n : "?";
}

/* The backend a number runs on (the default's for 0). */
static simd_softmax_backend resolved(simd_softmax_backend b)
{
    return b == SIMD_SOFTMAX_BACKEND_DEFAULT ? simd_softmax_backend_default() : b;
}

/* ------------------------------------------------------------------ */
/* Library, backends and statuses.                                       */

static void sec_library(void)
{
    set_ctx("library");
    const char *v = simd_softmax_version();
    int a, b, c;
    CHECK(v && sscanf(v, "%d.%d.%d", &a, &b, &c) == 3, "version \"%s\"", v ? v : "(null)");

    simd_softmax_backend det = simd_softmax_backend_detect();
    simd_softmax_backend def = simd_softmax_backend_default();
    CHECK(det >= SIMD_SOFTMAX_BACKEND_SCALAR && det <= SIMD_SOFTMAX_BACKEND_NEON,
          "detect() = %u", (unsigned)det);
    CHECK(def >= SIMD_SOFTMAX_BACKEND_SCALAR && def <= SIMD_SOFTMAX_BACKEND_NEON,
          "default() = %u", (unsigned)def);
    EXPECT_OK(simd_softmax_backend_check(det));
    EXPECT_OK(simd_softmax_backend_check(def));
    EXPECT_OK(simd_softmax_backend_check(SIMD_SOFTMAX_BACKEND_DEFAULT));
    EXPECT_OK(simd_softmax_backend_check(SIMD_SOFTMAX_BACKEND_SCALAR));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_backend_check(99));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_backend_check(5));
    /* Without SIMD_SOFTMAX_BACKEND, the default is the detected one. */
    const char *env = getenv("SIMD_SOFTMAX_BACKEND");
    if (!env || !*env)
        CHECK(def == det, "default %s, detected %s", bname(def), bname(det));

    /* Names, lanes, and the names' round trip through from_name. */
    static const struct {
        simd_softmax_backend b;
        const char *name;
        size_t lanes;
    } known[] = {{SIMD_SOFTMAX_BACKEND_SCALAR, "scalar", 1},
                 {SIMD_SOFTMAX_BACKEND_AVX2, "avx2", 8},
                 {SIMD_SOFTMAX_BACKEND_AVX512, "avx512", 16},
                 {SIMD_SOFTMAX_BACKEND_NEON, "neon", 4}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        const char *n = simd_softmax_backend_name(known[i].b);
        CHECK(n && strcmp(n, known[i].name) == 0, "backend_name(%u) = %s", (unsigned)known[i].b,
              n ? n : "(null)");
        CHECK(simd_softmax_backend_lanes(known[i].b) == known[i].lanes, "lanes(%s) = %zu",
              known[i].name, simd_softmax_backend_lanes(known[i].b));
        simd_softmax_backend got = 77;
        EXPECT_OK(simd_softmax_backend_from_name(known[i].name, &got));
        CHECK(got == known[i].b, "from_name(%s) = %u", known[i].name, (unsigned)got);
    }
    CHECK(simd_softmax_backend_name(SIMD_SOFTMAX_BACKEND_DEFAULT) &&
              strcmp(simd_softmax_backend_name(SIMD_SOFTMAX_BACKEND_DEFAULT), bname(def)) == 0,
          "backend_name(DEFAULT) is not the default's (%s)", bname(def));
    CHECK(simd_softmax_backend_lanes(SIMD_SOFTMAX_BACKEND_DEFAULT) ==
              simd_softmax_backend_lanes(def),
          "lanes(DEFAULT)");
    /* Why a backend cannot run: empty for one that runs, a reason (whose
       full length is returned, snprintf-style, however short the buffer)
       for one that does not. */
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char why[64];
        memset(why, 'x', sizeof why);
        size_t full = simd_softmax_backend_unavailable_reason(known[i].b, why, sizeof why);
        int runs = simd_softmax_backend_check(known[i].b) == SIMD_SOFTMAX_OK;
        CHECK(full == strlen(why), "unavailable_reason(%s): length %zu, text \"%s\"",
              known[i].name, full, why);
        CHECK(runs ? full == 0 : full > 0, "unavailable_reason(%s) = \"%s\" (runs: %d)",
              known[i].name, why, runs);
        char tiny[4];
        memset(tiny, 'x', sizeof tiny);
        CHECK(simd_softmax_backend_unavailable_reason(known[i].b, tiny, sizeof tiny) == full &&
                  strlen(tiny) == (full < 3 ? full : 3),
              "unavailable_reason(%s) into 4 bytes", known[i].name);
        CHECK(simd_softmax_backend_unavailable_reason(known[i].b, NULL, 0) == full,
              "unavailable_reason(%s) length query", known[i].name);
        if (!runs)
            printf("backend %s: unavailable: %s\n", known[i].name, why);
    }
    CHECK(simd_softmax_backend_unavailable_reason(99, NULL, 0) == SIZE_MAX,
          "unavailable_reason(99)");
    CHECK(simd_softmax_backend_name(99) == NULL, "backend_name(99) is not null");
    CHECK(simd_softmax_backend_lanes(99) == 0, "lanes(99) = %zu", simd_softmax_backend_lanes(99));

    /* Case and surrounding whitespace are ignored. */
    simd_softmax_backend got = 77;
    EXPECT_OK(simd_softmax_backend_from_name("  AVX2\t\n", &got));
    CHECK(got == SIMD_SOFTMAX_BACKEND_AVX2, "from_name(\"  AVX2\") = %u", (unsigned)got);
    EXPECT_OK(simd_softmax_backend_from_name("Scalar", &got));
    CHECK(got == SIMD_SOFTMAX_BACKEND_SCALAR, "from_name(\"Scalar\") = %u", (unsigned)got);
    /* Unknown names and null pointers; the result untouched. */
    got = 77;
    EXPECT_ST(SIMD_SOFTMAX_UNKNOWN_BACKEND, simd_softmax_backend_from_name("sse", &got));
    EXPECT_ST(SIMD_SOFTMAX_UNKNOWN_BACKEND, simd_softmax_backend_from_name("", &got));
    EXPECT_ST(SIMD_SOFTMAX_UNKNOWN_BACKEND, simd_softmax_backend_from_name("avx 2", &got));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_backend_from_name(NULL, &got));
    CHECK(got == 77, "from_name wrote %u on error", (unsigned)got);
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_backend_from_name("avx2", NULL));

    /* Element sizes. */
    CHECK(simd_softmax_dtype_size(SIMD_SOFTMAX_F32) == 4, "dtype_size(F32)");
    CHECK(simd_softmax_dtype_size(SIMD_SOFTMAX_F16) == 2, "dtype_size(F16)");
    CHECK(simd_softmax_dtype_size(SIMD_SOFTMAX_BF16) == 2, "dtype_size(BF16)");
    CHECK(simd_softmax_dtype_size(7) == 0, "dtype_size(7) = %zu", simd_softmax_dtype_size(7));

    /* The option initializers (null does nothing). */
    simd_softmax_attention_options ao;
    memset(&ao, 0x5a, sizeof ao);
    simd_softmax_attention_options_init(&ao);
    CHECK(ao.scale == 1.0f && ao.softcap == 0 && ao.mask == NULL && ao.mask_len == 0 &&
              ao.mask_type == SIMD_SOFTMAX_F32 && ao.mask_per_head == 0 && ao.mask_stride == 0 &&
              ao.alibi_slopes == NULL && ao.alibi_slopes_len == 0 && ao.use_alibi_max_bias == 0 &&
              ao.alibi_max_bias == 0 && ao.causal == 0 && ao.q_offset == 0 && ao.window == 0 &&
              ao.sinks == NULL && ao.sinks_len == 0 && ao.row_stride == 0 && ao.out_stride == 0,
          "attention_options_init");
    simd_softmax_attention_options_init(NULL);
    simd_softmax_sampler_options so;
    memset(&so, 0x5a, sizeof so);
    simd_softmax_sampler_options_init(&so);
    CHECK(so.temperature == 1.0f && so.top_p == 1.0f && so.min_p == 0.0f && so.top_k == 0,
          "sampler_options_init");
    simd_softmax_sampler_options_init(NULL);
    simd_softmax_cross_entropy_options co;
    memset(&co, 0x5a, sizeof co);
    simd_softmax_cross_entropy_options_init(&co);
    CHECK(co.use_ignore_index == 0 && co.label_smoothing == 0.0f, "cross_entropy_options_init");
    simd_softmax_cross_entropy_options_init(NULL);
}

static void sec_statuses(void)
{
    set_ctx("statuses");
    static const struct {
        simd_softmax_status s;
        const char *name;
    } all[] = {
        {SIMD_SOFTMAX_OK, "OK"},
        {SIMD_SOFTMAX_LENGTH_MISMATCH, "LENGTH_MISMATCH"},
        {SIMD_SOFTMAX_INVALID_ROW_LEN, "INVALID_ROW_LEN"},
        {SIMD_SOFTMAX_GRADIENT_LENGTH, "GRADIENT_LENGTH"},
        {SIMD_SOFTMAX_JACOBIAN_SIZE, "JACOBIAN_SIZE"},
        {SIMD_SOFTMAX_NAN_ALPHA, "NAN_ALPHA"},
        {SIMD_SOFTMAX_TERM_LENGTH, "TERM_LENGTH"},
        {SIMD_SOFTMAX_INVALID_PROBABILITY, "INVALID_PROBABILITY"},
        {SIMD_SOFTMAX_ZERO_PROBABILITY, "ZERO_PROBABILITY"},
        {SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE, "ANCHOR_OUT_OF_RANGE"},
        {SIMD_SOFTMAX_INVALID_STRIDE, "INVALID_STRIDE"},
        {SIMD_SOFTMAX_ROWS_BEYOND_BUFFER, "ROWS_BEYOND_BUFFER"},
        {SIMD_SOFTMAX_INVALID_PARAMETER, "INVALID_PARAMETER"},
        {SIMD_SOFTMAX_NAN_LOGIT, "NAN_LOGIT"},
        {SIMD_SOFTMAX_NO_FINITE_LOGIT, "NO_FINITE_LOGIT"},
        {SIMD_SOFTMAX_SCRATCH_TOO_SHORT, "SCRATCH_TOO_SHORT"},
        {SIMD_SOFTMAX_TARGETS_LENGTH, "TARGETS_LENGTH"},
        {SIMD_SOFTMAX_LOSSES_LENGTH, "LOSSES_LENGTH"},
        {SIMD_SOFTMAX_TARGET_OUT_OF_RANGE, "TARGET_OUT_OF_RANGE"},
        {SIMD_SOFTMAX_ATTENTION_LENGTH, "ATTENTION_LENGTH"},
        {SIMD_SOFTMAX_UNSUPPORTED_BACKEND, "UNSUPPORTED_BACKEND"},
        {SIMD_SOFTMAX_UNKNOWN_BACKEND, "UNKNOWN_BACKEND"},
        {SIMD_SOFTMAX_NULL_POINTER, "NULL_POINTER"},
        {SIMD_SOFTMAX_MISALIGNED, "MISALIGNED"},
        {SIMD_SOFTMAX_INVALID_ENUM, "INVALID_ENUM"},
        {SIMD_SOFTMAX_OVERLAP, "OVERLAP"},
        {SIMD_SOFTMAX_INTERNAL_ERROR, "INTERNAL_ERROR"},
    };
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        const char *nm = simd_softmax_status_name(all[i].s);
        const char *msg = simd_softmax_status_message(all[i].s);
        CHECK(nm && strcmp(nm, all[i].name) == 0, "status_name(%d) = %s, want %s",
              (int)all[i].s, nm ? nm : "(null)", all[i].name);
        CHECK(msg && *msg && strcmp(msg, "not a simd-softmax status") != 0,
              "status_message(%d) = %s", (int)all[i].s, msg ? msg : "(null)");
        for (size_t j = 0; j < i; j++)
            if (simd_softmax_status_message(all[j].s) == msg ||
                (msg && strcmp(simd_softmax_status_message(all[j].s), msg) == 0))
                CHECK(0, "status_message(%d) repeats status %d's", (int)all[i].s, (int)all[j].s);
    }
    /* Every number gives non-null strings; the unknown ones UNKNOWN_STATUS. */
    int nonnull = 1, unknown_ok = 1;
    for (int s = -300; s <= 300; s++) {
        const char *nm = simd_softmax_status_name(s), *msg = simd_softmax_status_message(s);
        if (!nm || !msg || !*msg)
            nonnull = 0;
        int is_known = 0;
        for (size_t i = 0; i < n; i++)
            is_known |= all[i].s == s;
        if (nm && is_known == (strcmp(nm, "UNKNOWN_STATUS") == 0))
            unknown_ok = 0;
    }
    CHECK(nonnull, "a status name or message is null or empty");
    CHECK(unknown_ok, "UNKNOWN_STATUS exactly for the numbers that are no status");
    CHECK(strcmp(simd_softmax_status_name(-1), "UNKNOWN_STATUS") == 0, "status_name(-1) = %s",
          simd_softmax_status_name(-1));
    CHECK(strcmp(simd_softmax_status_name(INT32_MIN), "UNKNOWN_STATUS") == 0,
          "status_name(INT32_MIN)");
    CHECK(simd_softmax_status_message(-1) != NULL, "status_message(-1) is null");
}

/* Which backends run here: each number's check, printed. */
static void find_backends(void)
{
    set_ctx("backends");
    g_n_runnable = 0;
    g_unsupported = 0;
    for (size_t i = 0; i < N_ALL_BACKENDS; i++) {
        simd_softmax_backend b = ALL_BACKENDS[i];
        simd_softmax_status s = simd_softmax_backend_check(b);
        if (s == SIMD_SOFTMAX_OK) {
            g_runnable[g_n_runnable++] = b;
            if (b == SIMD_SOFTMAX_BACKEND_DEFAULT)
                printf("backend default (%s): runs\n", bname(b));
            else
                printf("backend %s: runs (%zu lanes)\n", bname(b), simd_softmax_backend_lanes(b));
        } else {
            printf("backend %s: skipped: %s (%s)\n", bname(b), simd_softmax_status_message(s),
                   st_name(s));
            CHECK(s == SIMD_SOFTMAX_UNSUPPORTED_BACKEND, "backend_check(%s) = %s", bname(b),
                  st_name(s));
            if (!g_unsupported)
                g_unsupported = b;
        }
    }
    CHECK(g_n_runnable >= 2, "scalar and the default must run");
}

/* ------------------------------------------------------------------ */
/* softmax, log_softmax, logsumexp and their in-place forms (f32).        */

static const size_t SIZES_FULL[] = {1,   2,   3,   5,   8,   15,   16,   17,   31,   32,  33,
                                    63,  64,  65,  127, 128, 129,  255,  256,  257,  1000,
                                    1023, 4096, 4097, 32000};
static const size_t SIZES_QUICK[] = {1, 2, 3, 7, 16, 17, 33, 64, 65, 257, 1000};

static void sizes(const size_t **s, size_t *n)
{
    if (g_quick) {
        *s = SIZES_QUICK;
        *n = sizeof SIZES_QUICK / sizeof SIZES_QUICK[0];
    } else {
        *s = SIZES_FULL;
        *n = sizeof SIZES_FULL / sizeof SIZES_FULL[0];
    }
}

/* One f32 row through every single-row function on backend b. */
static void check_row_f32(simd_softmax_backend b, const float *x, size_t n, const char *label)
{
    const simd_softmax_dtype F = SIMD_SOFTMAX_F32;
    double *xd = dbuf(n);
    to_double(x, xd, n);
    expect_t e;
    expect_init(&e, n);
    expect_softmax(&e, xd, n, -INFINITY, NULL, F);
    float *y = fbuf(n), *y2 = fbuf(n), *ly = fbuf(n);
    char what[96];
    size_t at = 0;

    fill_canary(y, n);
    EXPECT_OK(simd_softmax_softmax(b, F, x, n, F, y, n));
    snprintf(what, sizeof what, "softmax %s n=%zu", label, n);
    CHECK_P(&e, F, y, what);
    /* The probabilities sum to 1 (within n ulps plus the bound). */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += y[i];
    CHECK(fabs(sum - 1) <= 1e-5, "%s: sum %.9g", what, sum);

    fill_canary(ly, n);
    EXPECT_OK(simd_softmax_log_softmax(b, F, x, n, F, ly, n));
    snprintf(what, sizeof what, "log_softmax %s n=%zu", label, n);
    CHECK_LP(&e, F, ly, what);

    float lse = CANARY;
    EXPECT_OK(simd_softmax_logsumexp(b, F, x, n, &lse));
    CHECK(fabs(lse - e.lse) <= e.tlse, "logsumexp %s n=%zu: %.9g, want %.17g (tol %.3g)", label,
          n, lse, e.lse, e.tlse);

    /* In place: the same bits as out of place (one row, one answer). */
    memcpy(y2, x, n * sizeof *x);
    EXPECT_OK(simd_softmax_softmax_in_place(b, F, y2, n));
    CHECK(same_bits_f(y, y2, n, &at), "softmax_in_place %s n=%zu: [%zu] %.9g vs %.9g", label, n,
          at, y2[at], y[at]);
    memcpy(y2, x, n * sizeof *x);
    EXPECT_OK(simd_softmax_log_softmax_in_place(b, F, y2, n));
    CHECK(same_bits_f(ly, y2, n, &at), "log_softmax_in_place %s n=%zu: [%zu] %.9g vs %.9g", label,
          n, at, y2[at], ly[at]);

    /* softmax(x) == softmax_scaled(x, 1) == softmax_of_combination({1, x}), bit for bit. */
    fill_canary(y2, n);
    EXPECT_OK(simd_softmax_softmax_scaled(b, x, n, y2, n, 1.0f));
    CHECK(same_bits_f(y, y2, n, &at), "softmax_scaled(1) %s n=%zu: [%zu] %.9g vs %.9g", label, n,
          at, y2[at], y[at]);
    simd_softmax_term t = {1.0f, x, n};
    fill_canary(y2, n);
    EXPECT_OK(simd_softmax_softmax_of_combination(b, &t, 1, y2, n));
    CHECK(same_bits_f(y, y2, n, &at), "softmax_of_combination({1,x}) %s n=%zu: [%zu] %.9g vs %.9g",
          label, n, at, y2[at], y[at]);

    expect_free(&e);
    free(xd);
    free(y);
    free(y2);
    free(ly);
}

static void sec_softmax(simd_softmax_backend b, rng_t *r)
{
    const size_t *sz;
    size_t ns;
    sizes(&sz, &ns);
    for (size_t si = 0; si < ns; si++) {
        size_t n = sz[si];
        float *x = fbuf(n);
        for (int g = 0; g < GEN_COUNT; g++) {
            set_ctx("%s softmax n=%zu %s", bname(b), n, gen_name(g));
            gen_row(r, g, x, n);
            check_row_f32(b, x, n, gen_name(g));
        }
        /* Finite extremes never overflow. */
        for (size_t i = 0; i < n; i++)
            x[i] = (i % 3 == 0) ? FLT_MAX : (i % 3 == 1) ? -FLT_MAX : 0.0f;
        set_ctx("%s softmax n=%zu extremes", bname(b), n);
        check_row_f32(b, x, n, "+-FLT_MAX");
        free(x);
    }
}

/* ------------------------------------------------------------------ */
/* Element types: every input type with every output type.               */

static void sec_dtypes(simd_softmax_backend b, rng_t *r)
{
    static const simd_softmax_dtype T[] = {SIMD_SOFTMAX_F32, SIMD_SOFTMAX_F16, SIMD_SOFTMAX_BF16};
    const size_t lens_full[] = {1, 7, 64, 300, 4097, 5000}, lens_quick[] = {1, 7, 64, 300};
    const size_t *lens = g_quick ? lens_quick : lens_full;
    size_t nl = g_quick ? 4 : 6;
    for (size_t li = 0; li < nl; li++) {
        size_t n = lens[li];
        float *x = fbuf(n), *yf = fbuf(n), *lyf = fbuf(n);
        double *xd = dbuf(n);
        for (int ti = 0; ti < 3; ti++) {
            simd_softmax_dtype it = T[ti];
            /* Logits a half holds: the reference takes the widened values. */
            gen_row(r, li % 2 ? GEN_UNIFORM : GEN_MASKED, x, n);
            for (size_t i = 0; i < n; i++)
                x[i] = round_to(it, x[i]);
            to_double(x, xd, n);
            void *in = tbuf(it, n);
            for (size_t i = 0; i < n; i++)
                tput(it, in, i, x[i]);
            /* The f32 outputs of this input, for the bit comparisons. */
            EXPECT_OK(simd_softmax_softmax(b, it, in, n, SIMD_SOFTMAX_F32, yf, n));
            EXPECT_OK(simd_softmax_log_softmax(b, it, in, n, SIMD_SOFTMAX_F32, lyf, n));
            float lse = 0;
            EXPECT_OK(simd_softmax_logsumexp(b, it, in, n, &lse));
            for (int to = 0; to < 3; to++) {
                simd_softmax_dtype ot = T[to];
                set_ctx("%s %s->%s n=%zu", bname(b), dtype_name(it), dtype_name(ot), n);
                expect_t e;
                expect_init(&e, n);
                expect_softmax(&e, xd, n, -INFINITY, NULL, ot);
                if (to == 0)
                    CHECK(fabs(lse - e.lse) <= e.tlse, "logsumexp(%s): %.9g, want %.17g",
                          dtype_name(it), lse, e.lse);
                void *y = tbuf(ot, n);
                char what[96];
                EXPECT_OK(simd_softmax_softmax(b, it, in, n, ot, y, n));
                snprintf(what, sizeof what, "softmax %s->%s n=%zu", dtype_name(it),
                         dtype_name(ot), n);
                CHECK_P(&e, ot, y, what);
                /* A half output is the f32 output rounded once, bit for bit. */
                size_t bad = n;
                for (size_t i = 0; i < n && bad == n; i++)
                    if (f32_bits(tget(ot, y, i)) != f32_bits(round_to(ot, yf[i])))
                        bad = i;
                CHECK(bad == n, "%s: [%zu] is not the f32 result rounded", what, bad);

                EXPECT_OK(simd_softmax_log_softmax(b, it, in, n, ot, y, n));
                snprintf(what, sizeof what, "log_softmax %s->%s n=%zu", dtype_name(it),
                         dtype_name(ot), n);
                CHECK_LP(&e, ot, y, what);
                bad = n;
                for (size_t i = 0; i < n && bad == n; i++)
                    if (f32_bits(tget(ot, y, i)) != f32_bits(round_to(ot, lyf[i])))
                        bad = i;
                CHECK(bad == n, "%s: [%zu] is not the f32 result rounded", what, bad);

                /* In place (input type = output type): same as out of place. */
                if (it == ot) {
                    void *d = tbuf(it, n);
                    memcpy(d, in, n * simd_softmax_dtype_size(it));
                    EXPECT_OK(simd_softmax_softmax_in_place(b, it, d, n));
                    snprintf(what, sizeof what, "softmax_in_place %s n=%zu", dtype_name(it), n);
                    CHECK_P(&e, it, d, what);
                    memcpy(d, in, n * simd_softmax_dtype_size(it));
                    EXPECT_OK(simd_softmax_log_softmax_in_place(b, it, d, n));
                    snprintf(what, sizeof what, "log_softmax_in_place %s n=%zu", dtype_name(it),
                             n);
                    CHECK_LP(&e, it, d, what);
                    free(d);
                }
                free(y);
                expect_free(&e);
            }
            free(in);
        }
        free(x);
        free(yf);
        free(lyf);
        free(xd);
    }
}

/* ------------------------------------------------------------------ */
/* Rows, in place rows, strided rows.                                    */

static void sec_rows(simd_softmax_backend b, rng_t *r)
{
    static const simd_softmax_dtype T[] = {SIMD_SOFTMAX_F32, SIMD_SOFTMAX_F16, SIMD_SOFTMAX_BF16};
    const size_t shapes[][2] = {{7, 33}, {5, 1}, {3, 300}, {1, 17}, {4, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], n = shapes[s][1], len = rows * n;
        for (int ti = 0; ti < 3; ti++) {
            simd_softmax_dtype t = T[ti];
            simd_softmax_dtype ot = T[(ti + s) % 3];
            set_ctx("%s rows %zux%zu %s->%s", bname(b), rows, n, dtype_name(t), dtype_name(ot));
            float *x = fbuf(len);
            gen_row(r, (int)(s % GEN_COUNT), x, len);
            for (size_t i = 0; i < len; i++)
                x[i] = round_to(t, x[i]);
            void *in = tbuf(t, len), *y = tbuf(ot, len), *ly = tbuf(ot, len), *one = tbuf(ot, n);
            for (size_t i = 0; i < len; i++)
                tput(t, in, i, x[i]);
            size_t es = simd_softmax_dtype_size(t), os = simd_softmax_dtype_size(ot);
            EXPECT_OK(simd_softmax_softmax_rows(b, t, in, len, ot, y, len, n));
            EXPECT_OK(simd_softmax_log_softmax_rows(b, t, in, len, ot, ly, len, n));
            double *xd = dbuf(n);
            int same = 1, lsame = 1;
            for (size_t rw = 0; rw < rows; rw++) {
                to_double(x + rw * n, xd, n);
                expect_t e;
                expect_init(&e, n);
                expect_softmax(&e, xd, n, -INFINITY, NULL, ot);
                char what[96];
                snprintf(what, sizeof what, "softmax_rows row %zu", rw);
                CHECK_P(&e, ot, (char *)y + rw * n * os, what);
                snprintf(what, sizeof what, "log_softmax_rows row %zu", rw);
                CHECK_LP(&e, ot, (char *)ly + rw * n * os, what);
                /* Each row as a single-row call gives the same bits. */
                EXPECT_OK(simd_softmax_softmax(b, t, (char *)in + rw * n * es, n, ot, one, n));
                same &= memcmp(one, (char *)y + rw * n * os, n * os) == 0;
                EXPECT_OK(simd_softmax_log_softmax(b, t, (char *)in + rw * n * es, n, ot, one, n));
                lsame &= memcmp(one, (char *)ly + rw * n * os, n * os) == 0;
                expect_free(&e);
            }
            CHECK(same, "softmax_rows differs from per-row softmax");
            CHECK(lsame, "log_softmax_rows differs from per-row log_softmax");

            /* In place (the input type). */
            if (t == ot) {
                void *d = tbuf(t, len);
                memcpy(d, in, len * es);
                EXPECT_OK(simd_softmax_softmax_rows_in_place(b, t, d, len, n));
                CHECK(memcmp(d, y, len * es) == 0, "softmax_rows_in_place differs");
                memcpy(d, in, len * es);
                EXPECT_OK(simd_softmax_log_softmax_rows_in_place(b, t, d, len, n));
                CHECK(memcmp(d, ly, len * es) == 0, "log_softmax_rows_in_place differs");
                free(d);
            } else {
                float *d = fbuf(len);
                memcpy(d, x, len * sizeof *d);
                EXPECT_OK(simd_softmax_softmax_rows_in_place(b, SIMD_SOFTMAX_F32, d, len, n));
                float *ref = fbuf(len);
                EXPECT_OK(simd_softmax_softmax_rows(b, SIMD_SOFTMAX_F32, x, len, SIMD_SOFTMAX_F32,
                                                    ref, len, n));
                CHECK(memcmp(d, ref, len * 4) == 0, "softmax_rows_in_place f32 differs");
                memcpy(d, x, len * sizeof *d);
                EXPECT_OK(simd_softmax_log_softmax_rows_in_place(b, SIMD_SOFTMAX_F32, d, len, n));
                EXPECT_OK(simd_softmax_log_softmax_rows(b, SIMD_SOFTMAX_F32, x, len,
                                                        SIMD_SOFTMAX_F32, ref, len, n));
                CHECK(memcmp(d, ref, len * 4) == 0, "log_softmax_rows_in_place f32 differs");
                free(d);
                free(ref);
            }

            /* Strided: rows `is` apart in the input (the last unpadded), `os_`
             * apart in the output; the gaps are neither read nor written. */
            size_t is = n + 3, ostr = n + 2;
            size_t ilen = (rows - 1) * is + n, olen = (rows - 1) * ostr + n;
            void *sin = tbuf(t, ilen);
            /* A NaN in a gap would poison a row that read it. */
            for (size_t i = 0; i < ilen; i++)
                tput(t, sin, i, NAN);
            for (size_t rw = 0; rw < rows; rw++)
                memcpy((char *)sin + rw * is * es, (char *)in + rw * n * es, n * es);
            for (int log = 0; log < 2; log++) {
                unsigned char *so = tbuf(ot, olen);
                memset(so, 0xA5, olen * os);
                if (log)
                    EXPECT_OK(simd_softmax_log_softmax_rows_strided(b, t, sin, ilen, ot, so, olen,
                                                                    rows, n, is, ostr));
                else
                    EXPECT_OK(simd_softmax_softmax_rows_strided(b, t, sin, ilen, ot, so, olen,
                                                                rows, n, is, ostr));
                const unsigned char *want = log ? ly : y;
                int rows_same = 1, gaps = 1;
                for (size_t rw = 0; rw < rows; rw++) {
                    rows_same &= memcmp(so + rw * ostr * os, want + rw * n * os, n * os) == 0;
                    if (rw + 1 < rows)
                        for (size_t k = n * os; k < ostr * os; k++)
                            gaps &= so[rw * ostr * os + k] == 0xA5;
                }
                CHECK(rows_same, "%s_rows_strided: not the rows' bits", log ? "log_softmax"
                                                                            : "softmax");
                CHECK(gaps, "%s_rows_strided wrote between rows", log ? "log_softmax" : "softmax");
                free(so);
            }
            /* Zero rows: nothing to do, fine with null buffers. */
            EXPECT_OK(simd_softmax_softmax_rows_strided(b, t, NULL, 0, ot, NULL, 0, 0, n, n, n));
            free(sin);
            free(xd);
            free(x);
            free(in);
            free(y);
            free(ly);
            free(one);
        }
    }
    /* Empty batches. */
    set_ctx("%s rows empty", bname(b));
    EXPECT_OK(simd_softmax_softmax_rows(b, SIMD_SOFTMAX_F32, NULL, 0, SIMD_SOFTMAX_F32, NULL, 0, 4));
    EXPECT_OK(simd_softmax_log_softmax_rows(b, SIMD_SOFTMAX_F32, NULL, 0, SIMD_SOFTMAX_F32, NULL, 0,
                                            4));
    EXPECT_OK(simd_softmax_softmax_rows_in_place(b, SIMD_SOFTMAX_F16, NULL, 0, 3));
    EXPECT_OK(simd_softmax_log_softmax_rows_in_place(b, SIMD_SOFTMAX_BF16, NULL, 0, 3));
}

/* ------------------------------------------------------------------ */
/* Special values (the header's contract) and empty rows.                */

static void sec_special(simd_softmax_backend b)
{
    static const simd_softmax_dtype T[] = {SIMD_SOFTMAX_F32, SIMD_SOFTMAX_F16, SIMD_SOFTMAX_BF16};
    const float inf = INFINITY;
    for (int ti = 0; ti < 3; ti++) {
        simd_softmax_dtype t = T[ti];
        for (int to = 0; to < 3; to++) {
            simd_softmax_dtype ot = T[to];
            set_ctx("%s special %s->%s", bname(b), dtype_name(t), dtype_name(ot));
            for (size_t n = 1; n <= 70; n += (n < 20 ? 1 : 23)) {
                void *in = tbuf(t, n), *y = tbuf(ot, n), *ly = tbuf(ot, n);
                float lse;
                /* A NaN anywhere: every output NaN (logsumexp NaN). */
                for (size_t i = 0; i < n; i++)
                    tput(t, in, i, (float)i - 3.0f);
                tput(t, in, n / 2, NAN);
                EXPECT_OK(simd_softmax_softmax(b, t, in, n, ot, y, n));
                EXPECT_OK(simd_softmax_log_softmax(b, t, in, n, ot, ly, n));
                EXPECT_OK(simd_softmax_logsumexp(b, t, in, n, &lse));
                int ok = isnan(lse);
                for (size_t i = 0; i < n; i++)
                    ok &= isnan(tget(ot, y, i)) && isnan(tget(ot, ly, i));
                CHECK(ok, "NaN row n=%zu: not all NaN", n);

                /* +inf entries (k of them) share the mass; log: -ln k. */
                size_t k = 0;
                for (size_t i = 0; i < n; i++) {
                    int at = i % 3 == 1 || n == 1;
                    tput(t, in, i, at ? inf : (float)i);
                    k += at;
                }
                EXPECT_OK(simd_softmax_softmax(b, t, in, n, ot, y, n));
                EXPECT_OK(simd_softmax_log_softmax(b, t, in, n, ot, ly, n));
                EXPECT_OK(simd_softmax_logsumexp(b, t, in, n, &lse));
                ok = lse == inf;
                float pk = round_to(ot, (float)(1.0 / (double)k));
                float lk = round_to(ot, (float)-log((double)k));
                for (size_t i = 0; i < n; i++) {
                    int at = i % 3 == 1 || n == 1;
                    float p = tget(ot, y, i), l = tget(ot, ly, i);
                    if (at)
                        ok &= fabsf(p - pk) <= 2 * (float)ulp32(pk) + (float)ulp_half(pk, ot) &&
                              fabsf(l - lk) <= 2 * (float)ulp32(lk) + (float)ulp_half(lk, ot);
                    else
                        ok &= p == 0 && l == -inf;
                }
                CHECK(ok, "+inf row n=%zu k=%zu: not 1/k at the +inf entries, 0 elsewhere", n, k);

                /* All -inf: softmax 0, log_softmax -inf, logsumexp -inf. */
                for (size_t i = 0; i < n; i++)
                    tput(t, in, i, -inf);
                EXPECT_OK(simd_softmax_softmax(b, t, in, n, ot, y, n));
                EXPECT_OK(simd_softmax_log_softmax(b, t, in, n, ot, ly, n));
                EXPECT_OK(simd_softmax_logsumexp(b, t, in, n, &lse));
                ok = lse == -inf;
                for (size_t i = 0; i < n; i++)
                    ok &= tget(ot, y, i) == 0 && f32_bits(tget(ot, y, i)) == 0 &&
                          tget(ot, ly, i) == -inf;
                CHECK(ok, "all -inf row n=%zu: not 0 / -inf", n);

                /* -inf entries of a partly masked row: exactly 0 / -inf. */
                for (size_t i = 0; i < n; i++)
                    tput(t, in, i, i % 2 ? -inf : 0.5f * (float)i);
                EXPECT_OK(simd_softmax_softmax(b, t, in, n, ot, y, n));
                EXPECT_OK(simd_softmax_log_softmax(b, t, in, n, ot, ly, n));
                ok = 1;
                for (size_t i = 1; i < n; i += 2)
                    ok &= tget(ot, y, i) == 0 && tget(ot, ly, i) == -inf;
                CHECK(ok, "partly masked row n=%zu: masked entries not 0 / -inf", n);

                /* In place, the same special rows. */
                if (t == ot) {
                    for (size_t i = 0; i < n; i++)
                        tput(t, in, i, -inf);
                    EXPECT_OK(simd_softmax_softmax_in_place(b, t, in, n));
                    ok = 1;
                    for (size_t i = 0; i < n; i++)
                        ok &= tget(t, in, i) == 0;
                    for (size_t i = 0; i < n; i++)
                        tput(t, in, i, i == 0 ? NAN : 1.0f);
                    EXPECT_OK(simd_softmax_log_softmax_in_place(b, t, in, n));
                    for (size_t i = 0; i < n; i++)
                        ok &= isnan(tget(t, in, i));
                    CHECK(ok, "in place special rows n=%zu", n);
                }
                free(in);
                free(y);
                free(ly);
            }
        }
    }
    /* Empty rows: fine (null with length 0); logsumexp of nothing is -inf. */
    set_ctx("%s empty rows", bname(b));
    float lse = 0;
    EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, NULL, 0, SIMD_SOFTMAX_F32, NULL, 0));
    EXPECT_OK(simd_softmax_log_softmax(b, SIMD_SOFTMAX_F16, NULL, 0, SIMD_SOFTMAX_BF16, NULL, 0));
    EXPECT_OK(simd_softmax_softmax_in_place(b, SIMD_SOFTMAX_F32, NULL, 0));
    EXPECT_OK(simd_softmax_log_softmax_in_place(b, SIMD_SOFTMAX_F32, NULL, 0));
    EXPECT_OK(simd_softmax_logsumexp(b, SIMD_SOFTMAX_F32, NULL, 0, &lse));
    CHECK(lse == -INFINITY, "logsumexp(empty) = %g", lse);
    float dummy[1] = {CANARY};
    EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, dummy, 0, SIMD_SOFTMAX_F32, dummy, 0));
    CHECK(all_canary(dummy, 1), "an empty softmax wrote");
    EXPECT_OK(simd_softmax_softmax_scaled(b, NULL, 0, NULL, 0, 2.0f));
    EXPECT_OK(simd_softmax_sigmoid(b, NULL, 0, NULL, 0));
    EXPECT_OK(simd_softmax_softmax_backward(b, NULL, 0, NULL, 0, NULL, 0));
    EXPECT_OK(simd_softmax_jacobian(b, NULL, 0, NULL, 0));
    EXPECT_OK(simd_softmax_softmax_of_combination(b, NULL, 0, NULL, 0));
}

/* ------------------------------------------------------------------ */
/* softmax_scaled, backward, jacobian, logits_from_probs, combination,   */
/* sigmoid.                                                              */

static void sec_scaled(simd_softmax_backend b, rng_t *r)
{
    const float alphas[] = {0.5f, 2.0f, -1.0f, -0.3f, 1.0f / 0.7f, 1e-3f};
    const size_t lens[] = {1, 9, 100, 1000};
    for (size_t li = 0; li < 4; li++) {
        size_t n = lens[li];
        float *x = fbuf(n), *y = fbuf(n);
        double *z = dbuf(n), *ku = dbuf(n);
        gen_row(r, GEN_UNIFORM, x, n);
        for (size_t ai = 0; ai < sizeof alphas / sizeof alphas[0]; ai++) {
            float a = alphas[ai];
            set_ctx("%s softmax_scaled n=%zu alpha=%g", bname(b), n, a);
            double zm = -INFINITY;
            for (size_t i = 0; i < n; i++) {
                z[i] = (double)a * x[i]; /* exact in double */
                if (z[i] > zm)
                    zm = z[i];
            }
            /* The bound: 4 + 2|alpha (x_i - m)| ulps. */
            for (size_t i = 0; i < n; i++)
                ku[i] = 2 * fabs(z[i] - zm);
            expect_t e;
            expect_init(&e, n);
            expect_softmax(&e, z, n, -INFINITY, ku, SIMD_SOFTMAX_F32);
            fill_canary(y, n);
            EXPECT_OK(simd_softmax_softmax_scaled(b, x, n, y, n, a));
            CHECK_P(&e, SIMD_SOFTMAX_F32, y, "softmax_scaled");
            expect_free(&e);
        }
        /* The limits: alpha 0 is uniform, +-inf share among the tied extremes. */
        set_ctx("%s softmax_scaled limits n=%zu", bname(b), n);
        EXPECT_OK(simd_softmax_softmax_scaled(b, x, n, y, n, 0.0f));
        int ok = 1;
        float u = (float)(1.0 / (double)n);
        for (size_t i = 0; i < n; i++)
            ok &= fabsf(y[i] - u) <= 4 * (float)ulp32(u);
        CHECK(ok, "alpha 0: not 1/N");
        if (n >= 3) {
            x[0] = 50.0f;
            x[n - 1] = 50.0f;
            x[1] = -50.0f;
            EXPECT_OK(simd_softmax_softmax_scaled(b, x, n, y, n, INFINITY));
            ok = 1;
            for (size_t i = 0; i < n; i++)
                ok &= y[i] == ((i == 0 || i == n - 1) ? 0.5f : 0.0f);
            CHECK(ok, "alpha +inf: not shared by the tied maxima");
            EXPECT_OK(simd_softmax_softmax_scaled(b, x, n, y, n, -INFINITY));
            ok = 1;
            for (size_t i = 0; i < n; i++)
                ok &= y[i] == (i == 1 ? 1.0f : 0.0f);
            CHECK(ok, "alpha -inf: not the minimum's");
        }
        free(x);
        free(y);
        free(z);
        free(ku);
    }
    /* Rows: each row is the single-row call's. */
    set_ctx("%s softmax_scaled_rows", bname(b));
    size_t rows = 6, n = 37, len = rows * n;
    float *x = fbuf(len), *y = fbuf(len), *one = fbuf(n);
    gen_row(r, GEN_UNIFORM, x, len);
    EXPECT_OK(simd_softmax_softmax_scaled_rows(b, x, len, y, len, n, 1.7f));
    int same = 1;
    for (size_t rw = 0; rw < rows; rw++) {
        EXPECT_OK(simd_softmax_softmax_scaled(b, x + rw * n, n, one, n, 1.7f));
        same &= memcmp(one, y + rw * n, n * 4) == 0;
    }
    CHECK(same, "softmax_scaled_rows differs from the rows' softmax_scaled");
    double *z = dbuf(n), *ku = dbuf(n);
    expect_t e;
    expect_init(&e, n);
    for (size_t rw = 0; rw < rows; rw++) {
        double zm = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            z[i] = (double)1.7f * x[rw * n + i];
            zm = z[i] > zm ? z[i] : zm;
        }
        for (size_t i = 0; i < n; i++)
            ku[i] = 2 * fabs(z[i] - zm);
        expect_softmax(&e, z, n, -INFINITY, ku, SIMD_SOFTMAX_F32);
        CHECK_P(&e, SIMD_SOFTMAX_F32, y + rw * n, "softmax_scaled_rows");
    }
    EXPECT_OK(simd_softmax_softmax_scaled_rows(b, NULL, 0, NULL, 0, 5, 1.0f));
    expect_free(&e);
    free(z);
    free(ku);
    free(x);
    free(y);
    free(one);
}

static void sec_backward_jacobian(simd_softmax_backend b, rng_t *r)
{
    const size_t lens[] = {1, 2, 7, 33, 100, 1000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        set_ctx("%s backward n=%zu", bname(b), n);
        float *x = fbuf(n), *y = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
        gen_row(r, GEN_UNIFORM, x, n);
        EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, x, n, SIMD_SOFTMAX_F32, y, n));
        for (size_t i = 0; i < n; i++)
            dy[i] = (float)rng_normal(r);
        double dot = 0, adot = 0;
        for (size_t i = 0; i < n; i++) {
            dot += (double)y[i] * dy[i];
            adot += fabs((double)y[i] * dy[i]);
        }
        fill_canary(dx, n);
        EXPECT_OK(simd_softmax_softmax_backward(b, y, n, dy, n, dx, n));
        /* dx = y (dy - <y, dy>): a dot product (blocked) and one fused
         * multiply-subtract; a few roundings of each term's size. */
        worst_t w;
        worst_init(&w);
        double lg = log2((double)n + 1);
        for (size_t i = 0; i < n; i++) {
            double want = (double)y[i] * (dy[i] - dot);
            double tol = 0x1p-24 * ((4 + 2 * lg) * fabs((double)y[i]) * (fabs(dy[i]) + adot)) +
                         0x1p-149;
            worst_add(&w, i, dx[i], want, tol);
        }
        WORST_CHECK(&w, "softmax_backward");
        /* The gradient of a softmax sums to 0. */
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += dx[i];
        CHECK(fabs(s) <= 1e-6 * (1 + adot), "softmax_backward: sum %.3g", s);
        free(x);
        free(dy);
        free(dx);

        if (n <= 100) {
            set_ctx("%s jacobian n=%zu", bname(b), n);
            float *J = fbuf(n * n);
            fill_canary(J, n * n);
            EXPECT_OK(simd_softmax_jacobian(b, y, n, J, n * n));
            worst_init(&w);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                    double yy = (double)y[i] * y[j];
                    double want = (i == j ? (double)y[i] : 0.0) - yy;
                    double tol = 0x1p-24 * 2 * (fabs(yy) + (i == j ? y[i] : 0)) + 0x1p-148;
                    worst_add(&w, i * n + j, J[i * n + j], want, tol);
                }
            WORST_CHECK(&w, "jacobian");
            /* Symmetric, bit for bit. */
            int sym = 1;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                    sym &= f32_bits(J[i * n + j]) == f32_bits(J[j * n + i]);
            CHECK(sym, "jacobian is not symmetric");
            free(J);
        }
        free(y);
    }
}

static void sec_logits_from_probs(simd_softmax_backend b, rng_t *r)
{
    const size_t lens[] = {1, 3, 16, 77, 1000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        set_ctx("%s logits_from_probs n=%zu", bname(b), n);
        float *x = fbuf(n), *p = fbuf(n), *l = fbuf(n), *q = fbuf(n);
        gen_row(r, GEN_UNIFORM, x, n);
        EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, x, n, SIMD_SOFTMAX_F32, p, n));
        double maxln = 0, mean = 0;
        for (size_t i = 0; i < n; i++) {
            double v = log((double)p[i]);
            mean += v;
            maxln = fabs(v) > maxln ? fabs(v) : maxln;
        }
        mean /= (double)n;

        /* Zero mean: out = ln p - mean(ln p). */
        fill_canary(l, n);
        EXPECT_OK(simd_softmax_logits_from_probs(b, p, n, l, n, SIMD_SOFTMAX_ANCHOR_ZERO_MEAN, 0));
        worst_t w;
        worst_init(&w);
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            double want = log((double)p[i]) - mean;
            worst_add(&w, i, l[i], want, 0x1p-24 * 8 * (fabs(want) + maxln) + 1e-30);
            s += l[i];
        }
        WORST_CHECK(&w, "logits_from_probs zero mean");
        CHECK(fabs(s) <= 0x1p-24 * 8 * maxln * (double)n, "zero mean: sum %.3g", s);
        /* Round trip: softmax(logits) = p. */
        EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, l, n, SIMD_SOFTMAX_F32, q, n));
        worst_init(&w);
        for (size_t i = 0; i < n; i++)
            worst_add(&w, i, q[i], p[i], (double)p[i] * 0x1p-24 * (8 + 24 * maxln) + 1e-37);
        WORST_CHECK(&w, "softmax(logits_from_probs(p)) = p");

        /* A component anchor: that logit exactly 0. */
        size_t k = rng_below(r, n);
        fill_canary(l, n);
        EXPECT_OK(
            simd_softmax_logits_from_probs(b, p, n, l, n, SIMD_SOFTMAX_ANCHOR_COMPONENT, k));
        CHECK(l[k] == 0.0f, "anchor %zu: logit %g", k, l[k]);
        worst_init(&w);
        for (size_t i = 0; i < n; i++) {
            double want = log((double)p[i]) - log((double)p[k]);
            worst_add(&w, i, l[i], want,
                      0x1p-24 * 8 * (fabs(log((double)p[i])) + fabs(log((double)p[k]))) + 1e-30);
        }
        WORST_CHECK(&w, "logits_from_probs component");
        /* A zero probability away from the anchor gives -inf there. */
        if (n >= 3) {
            size_t z = (k + 1) % n;
            float keep = p[z];
            p[z] = 0.0f;
            EXPECT_OK(
                simd_softmax_logits_from_probs(b, p, n, l, n, SIMD_SOFTMAX_ANCHOR_COMPONENT, k));
            CHECK(l[z] == -INFINITY && l[k] == 0.0f, "zero probability: logit %g", l[z]);
            p[z] = keep;
        }
        free(x);
        free(p);
        free(l);
        free(q);
    }
    EXPECT_OK(simd_softmax_logits_from_probs(b, NULL, 0, NULL, 0, SIMD_SOFTMAX_ANCHOR_ZERO_MEAN, 0));
}

static void sec_combination(simd_softmax_backend b, rng_t *r)
{
    const size_t lens[] = {1, 5, 37, 300, 2000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        set_ctx("%s softmax_of_combination n=%zu", bname(b), n);
        float *u = fbuf(n), *c = fbuf(n), *v = fbuf(n), *y = fbuf(n);
        double *z = dbuf(n);
        for (size_t i = 0; i < n; i++) {
            u[i] = (float)(2 * rng_normal(r));
            c[i] = u[i] + (float)(0.01 * rng_normal(r)); /* classifier-free guidance's near-equal */
            v[i] = (float)rng_range(r, -5, 5);
        }
        /* Two terms: u + g (c - u) = (1 - g) u + g c, g = 3. */
        simd_softmax_term t2[2] = {{-2.0f, u, n}, {3.0f, c, n}};
        for (size_t i = 0; i < n; i++)
            z[i] = -2.0 * u[i] + 3.0 * c[i];
        expect_t e;
        expect_init(&e, n);
        expect_softmax(&e, z, n, -INFINITY, NULL, SIMD_SOFTMAX_F32);
        fill_canary(y, n);
        EXPECT_OK(simd_softmax_softmax_of_combination(b, t2, 2, y, n));
        CHECK_P(&e, SIMD_SOFTMAX_F32, y, "combination of 2");
        /* Three terms. */
        simd_softmax_term t3[3] = {{0.5f, u, n}, {-0.25f, c, n}, {2.0f, v, n}};
        for (size_t i = 0; i < n; i++)
            z[i] = 0.5 * u[i] - 0.25 * c[i] + 2.0 * v[i];
        expect_softmax(&e, z, n, -INFINITY, NULL, SIMD_SOFTMAX_F32);
        fill_canary(y, n);
        EXPECT_OK(simd_softmax_softmax_of_combination(b, t3, 3, y, n));
        CHECK_P(&e, SIMD_SOFTMAX_F32, y, "combination of 3");
        /* No terms: uniform. */
        fill_canary(y, n);
        EXPECT_OK(simd_softmax_softmax_of_combination(b, NULL, 0, y, n));
        int ok = 1;
        float un = (float)(1.0 / (double)n);
        for (size_t i = 0; i < n; i++)
            ok &= fabsf(y[i] - un) <= 4 * (float)ulp32(un);
        CHECK(ok, "no terms: not uniform");
        expect_free(&e);
        free(u);
        free(c);
        free(v);
        free(y);
        free(z);
    }
}

static void sec_sigmoid(simd_softmax_backend b, rng_t *r)
{
    size_t n = 500;
    set_ctx("%s sigmoid", bname(b));
    float *x = fbuf(n), *y = fbuf(n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i < 250 ? rng_range(r, -20, 20) : rng_range(r, -120, 120));
    x[0] = INFINITY;
    x[1] = -INFINITY;
    x[2] = 0.0f;
    x[3] = -0.0f;
    x[4] = 1e30f;
    x[5] = -1e30f;
    x[6] = FLT_MAX;
    x[7] = -FLT_MAX;
    x[8] = NAN;
    fill_canary(y, n);
    EXPECT_OK(simd_softmax_sigmoid(b, x, n, y, n));
    worst_t w;
    worst_init(&w);
    for (size_t i = 0; i < n; i++) {
        double want = isnan(x[i]) ? NAN : 1.0 / (1.0 + exp(-(double)x[i]));
        /* Results below 2^-126 may be flushed to 0, as softmax's. */
        if (want < 0x1p-126 && y[i] == 0.0f)
            continue;
        worst_add(&w, i, y[i], want, 6 * ulp32(want));
    }
    WORST_CHECK(&w, "sigmoid");
    CHECK(y[0] == 1.0f && y[1] == 0.0f && y[2] == 0.5f && y[4] == 1.0f && y[5] == 0.0f &&
              isnan(y[8]),
          "sigmoid special values: %g %g %g %g %g %g", y[0], y[1], y[2], y[4], y[5], y[8]);
    /* The 2-class softmax: softmax([a, b])[0] == sigmoid(a - b). */
    float ab[2] = {1.25f, -0.5f}, p2[2], s1, d = ab[0] - ab[1];
    EXPECT_OK(simd_softmax_softmax(b, SIMD_SOFTMAX_F32, ab, 2, SIMD_SOFTMAX_F32, p2, 2));
    EXPECT_OK(simd_softmax_sigmoid(b, &d, 1, &s1, 1));
    CHECK(fabsf(p2[0] - s1) <= 2 * (float)ulp32(s1), "softmax([a,b])[0] %.9g vs sigmoid %.9g",
          p2[0], s1);
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ */
/* The attention softmax.                                                */

typedef struct {
    const char *name;
    size_t heads, q_len, kv_len;
    simd_softmax_dtype st, ot, mt; /* scores, output, mask types */
    float scale, softcap;
    int mask;           /* 0 none, 1 shared [q, kv], 2 per head [h, q, kv] */
    size_t mask_stride; /* 0: kv_len */
    int alibi;          /* 0 none, 1 slopes, 2 max_bias */
    float max_bias;
    int causal;
    size_t q_offset, window;
    int sinks;
    size_t row_stride, out_stride; /* 0: kv_len */
} attn_case;

/* ggml's slopes (docs: n the largest power of two <= heads). */
static double ggml_slope(size_t heads, double max_bias, size_t h)
{
    size_t n = 1;
    while (n * 2 <= heads)
        n *= 2;
    double e = h < n ? -max_bias / (double)n * (double)(h + 1)
                     : -max_bias / (double)(2 * n) * (double)(2 * (h - n) + 1);
    return exp2(e);
}

static void run_attention(simd_softmax_backend b, rng_t *r, const attn_case *c)
{
    size_t H = c->heads, Q = c->q_len, KV = c->kv_len, rows = H * Q;
    size_t rs = c->row_stride ? c->row_stride : KV, os = c->out_stride ? c->out_stride : KV;
    size_t ms = c->mask_stride ? c->mask_stride : KV;
    size_t slen = (rows - 1) * rs + KV, olen = (rows - 1) * os + KV;
    size_t mrows = c->mask == 2 ? rows : Q, mlen = c->mask ? (mrows - 1) * ms + KV : 0;
    set_ctx("%s attention %s [%zu,%zu,%zu] %s->%s", bname(b), c->name, H, Q, KV,
            dtype_name(c->st), dtype_name(c->ot));

    /* Scores (NaN between rows: a read there would poison the row). */
    float *s = fbuf(slen);
    for (size_t i = 0; i < slen; i++)
        s[i] = NAN;
    for (size_t rw = 0; rw < rows; rw++)
        for (size_t j = 0; j < KV; j++)
            s[rw * rs + j] = round_to(c->st, (float)rng_range(r, -12, 12));
    void *sb = tbuf(c->st, slen);
    for (size_t i = 0; i < slen; i++)
        tput(c->st, sb, i, s[i]);
    /* The mask: a position term (ALiBi's distances) with some -inf. */
    float *m = fbuf(mlen ? mlen : 1);
    void *mb = tbuf(c->mt, mlen ? mlen : 1);
    for (size_t i = 0; i < mlen; i++)
        m[i] = NAN;
    for (size_t rw = 0; rw < (c->mask ? mrows : 0); rw++)
        for (size_t j = 0; j < KV; j++) {
            float v = rng_unif(r) < 0.15 ? -INFINITY
                      : c->alibi       ? -(float)((j * 7 + rw) % 23)
                                       : (float)rng_range(r, -3, 3);
            m[rw * ms + j] = round_to(c->mt, v);
        }
    for (size_t i = 0; i < mlen; i++)
        tput(c->mt, mb, i, m[i]);
    float *slopes = fbuf(H), *sinks = fbuf(H);
    for (size_t h = 0; h < H; h++) {
        slopes[h] = (float)ldexp(1.0, -(int)h - 1) * 3.0f;
        sinks[h] = h == 1 ? -INFINITY : (float)rng_range(r, -2, 4);
    }

    simd_softmax_attention_options o;
    simd_softmax_attention_options_init(&o);
    o.scale = c->scale;
    o.softcap = c->softcap;
    if (c->mask) {
        o.mask = mb;
        o.mask_len = mlen;
        o.mask_type = c->mt;
        o.mask_per_head = c->mask == 2;
        o.mask_stride = c->mask_stride;
    }
    if (c->alibi == 1) {
        o.alibi_slopes = slopes;
        o.alibi_slopes_len = H;
    } else if (c->alibi == 2) {
        o.use_alibi_max_bias = 1;
        o.alibi_max_bias = c->max_bias;
    }
    o.causal = (uint32_t)c->causal;
    o.q_offset = c->q_offset;
    o.window = c->window;
    if (c->sinks) {
        o.sinks = sinks;
        o.sinks_len = H;
    }
    o.row_stride = c->row_stride;
    o.out_stride = c->out_stride;

    size_t osz = simd_softmax_dtype_size(c->ot);
    unsigned char *y = tbuf(c->ot, olen);
    memset(y, 0xA5, olen * osz);
    EXPECT_OK(simd_softmax_attention(b, &o, c->st, sb, slen, c->ot, y, olen, H, Q, KV));

    /* The reference, row by row. */
    double *z = dbuf(KV), *K = dbuf(KV), *ku = dbuf(KV);
    expect_t e;
    expect_init(&e, KV);
    int gaps = 1;
    for (size_t h = 0; h < H; h++)
        for (size_t q = 0; q < Q; q++) {
            size_t rw = h * Q + q;
            double slope = c->alibi == 1   ? slopes[h]
                           : c->alibi == 2 ? ggml_slope(H, c->max_bias, h)
                                           : 1.0;
            size_t limit = q + (c->causal ? c->q_offset : 0) + 1; /* keys j < limit */
            double maxK = 0;
            for (size_t j = 0; j < KV; j++) {
                int out = (c->causal && j >= limit) || (c->window && j + c->window < limit);
                if (out) {
                    z[j] = -INFINITY;
                    K[j] = 0;
                    continue;
                }
                double t = (double)c->scale * s[rw * rs + j], k;
                if (c->softcap != 0) {
                    t = c->softcap * tanh(t / c->softcap);
                    k = 8 * fabs(t);
                } else {
                    k = fabs(t);
                }
                if (c->mask) {
                    double mv = m[(c->mask == 2 ? rw : q) * ms + j];
                    double sm = slope * mv;
                    t = mv == -INFINITY ? -INFINITY : t + sm;
                    if (t > -INFINITY)
                        k += fabs(t) + 2 * fabs(sm);
                }
                z[j] = t;
                K[j] = t > -INFINITY ? k : 0;
                maxK = K[j] > maxK ? K[j] : maxK;
            }
            double sink = c->sinks ? sinks[h] : -INFINITY, M = sink;
            for (size_t j = 0; j < KV; j++)
                M = z[j] > M ? z[j] : M;
            for (size_t j = 0; j < KV; j++)
                ku[j] = (fabs(z[j] - M) + K[j] + maxK) * 1.001;
            expect_softmax(&e, z, KV, sink, ku, c->ot);
            char what[64];
            snprintf(what, sizeof what, "attention row (h %zu, q %zu)", h, q);
            CHECK_P(&e, c->ot, y + rw * os * osz, what);
            if (rw + 1 < rows)
                for (size_t k = KV * osz; k < os * osz; k++)
                    gaps &= y[rw * os * osz + k] == 0xA5;
        }
    CHECK(gaps, "attention wrote between output rows");

    /* With no option, it is softmax_rows bit for bit. */
    if (!c->mask && !c->causal && !c->window && !c->sinks && c->scale == 1 && !c->softcap &&
        !c->row_stride && !c->out_stride) {
        unsigned char *y2 = tbuf(c->ot, olen);
        EXPECT_OK(simd_softmax_softmax_rows(b, c->st, sb, slen, c->ot, y2, olen, KV));
        CHECK(memcmp(y, y2, olen * osz) == 0, "attention without options != softmax_rows");
        memset(y2, 0, olen * osz);
        EXPECT_OK(simd_softmax_attention(b, NULL, c->st, sb, slen, c->ot, y2, olen, H, Q, KV));
        CHECK(memcmp(y, y2, olen * osz) == 0, "attention with null options differs");
        free(y2);
    }
    expect_free(&e);
    free(z);
    free(K);
    free(ku);
    free(s);
    free(sb);
    free(m);
    free(mb);
    free(slopes);
    free(sinks);
    free(y);
}

static void sec_attention(simd_softmax_backend b, rng_t *r)
{
    const simd_softmax_dtype F = SIMD_SOFTMAX_F32, H16 = SIMD_SOFTMAX_F16,
                             B16 = SIMD_SOFTMAX_BF16;
    const attn_case cases[] = {
        {.name = "plain", .heads = 2, .q_len = 3, .kv_len = 17, .st = F, .ot = F, .mt = F,
         .scale = 1},
        {.name = "plain bf16->f16", .heads = 2, .q_len = 2, .kv_len = 70, .st = B16, .ot = H16,
         .mt = F, .scale = 1},
        {.name = "scale causal sinks", .heads = 3, .q_len = 4, .kv_len = 9, .st = F, .ot = F,
         .mt = F, .scale = 0.125f, .causal = 1, .q_offset = 5, .sinks = 1},
        {.name = "mask softcap window causal strides", .heads = 2, .q_len = 4, .kv_len = 11,
         .st = F, .ot = F, .mt = F, .scale = 0.5f, .softcap = 5, .mask = 1, .causal = 1,
         .q_offset = 6, .window = 4, .row_stride = 13, .out_stride = 12},
        {.name = "head mask f16 alibi slopes mask_stride", .heads = 3, .q_len = 2, .kv_len = 17,
         .st = B16, .ot = H16, .mt = H16, .scale = 0.3f, .mask = 2, .mask_stride = 20,
         .alibi = 1},
        {.name = "bf16 mask alibi max_bias sinks", .heads = 3, .q_len = 3, .kv_len = 24,
         .st = H16, .ot = B16, .mt = B16, .scale = 1, .mask = 1, .alibi = 2, .max_bias = 8,
         .sinks = 1},
        {.name = "window without causal", .heads = 2, .q_len = 5, .kv_len = 8, .st = F, .ot = F,
         .mt = F, .scale = 1, .window = 3},
        /* q_offset is read only with causal (the header): 0 for the window here. */
        {.name = "window, q_offset without causal", .heads = 1, .q_len = 6, .kv_len = 9,
         .st = F, .ot = F, .mt = F, .scale = 1, .q_offset = 5, .window = 2},
        {.name = "everything", .heads = 4, .q_len = 3, .kv_len = 40, .st = F, .ot = B16, .mt = F,
         .scale = 0.7f, .softcap = 20, .mask = 2, .mask_stride = 41, .alibi = 1, .causal = 1,
         .q_offset = 30, .window = 12, .sinks = 1, .row_stride = 45, .out_stride = 43},
        {.name = "long rows", .heads = 2, .q_len = 2, .kv_len = 1500, .st = F, .ot = F, .mt = F,
         .scale = 0.125f, .softcap = 30, .mask = 1, .alibi = 2, .max_bias = 4, .causal = 1,
         .q_offset = 1498, .sinks = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_attention(b, r, &cases[i]);

    /* Fully masked rows give zeros, with a sink too; a +inf sink takes it all. */
    set_ctx("%s attention special", bname(b));
    float sc[4] = {1, 2, 3, 4}, y[4], mask[2] = {-INFINITY, -INFINITY}, sinks[2] = {0, INFINITY};
    simd_softmax_attention_options o;
    simd_softmax_attention_options_init(&o);
    o.mask = mask;
    o.mask_len = 2;
    o.sinks = sinks;
    o.sinks_len = 2;
    EXPECT_OK(simd_softmax_attention(b, &o, F, sc, 4, F, y, 4, 2, 1, 2));
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 0, "fully masked rows: %g %g %g %g",
          y[0], y[1], y[2], y[3]);
    o.mask = NULL;
    o.mask_len = 0;
    EXPECT_OK(simd_softmax_attention(b, &o, F, sc, 4, F, y, 4, 2, 1, 2));
    CHECK(y[0] > 0 && y[1] > 0 && y[2] == 0 && y[3] == 0, "+inf sink: %g %g %g %g", y[0], y[1],
          y[2], y[3]);
    /* Empty tensors. */
    EXPECT_OK(simd_softmax_attention(b, NULL, F, NULL, 0, F, NULL, 0, 0, 4, 4));
    EXPECT_OK(simd_softmax_attention(b, NULL, F, NULL, 0, F, NULL, 0, 2, 0, 4));
}

/* ------------------------------------------------------------------ */
/* The online state.                                                     */

static void sec_state(simd_softmax_backend b, rng_t *r)
{
    const simd_softmax_dtype F = SIMD_SOFTMAX_F32;
    size_t n = g_quick ? 300 : 3000;
    set_ctx("%s state n=%zu", bname(b), n);
    float *x = fbuf(n), *y = fbuf(n), *v = fbuf(n), *ex = fbuf(n);
    double *xd = dbuf(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(4 * rng_normal(r));
        v[i] = (float)rng_range(r, -1, 1);
    }
    x[n / 3] = -INFINITY; /* a masked entry */
    to_double(x, xd, n);
    expect_t e;
    expect_init(&e, n);
    expect_softmax(&e, xd, n, -INFINITY, NULL, F);
    float xmax = -INFINITY;
    for (size_t i = 0; i < n; i++)
        xmax = x[i] > xmax ? x[i] : xmax;

    /* Chunk boundaries: random lengths, some empty. */
    size_t bounds[64], nb = 0;
    bounds[nb++] = 0;
    while (bounds[nb - 1] < n && nb < 62) {
        size_t len = rng_below(r, 5) == 0 ? 0 : 1 + rng_below(r, n / 8);
        size_t next = bounds[nb - 1] + len;
        bounds[nb++] = next > n ? n : next;
    }
    bounds[nb - 1] = n;

    simd_softmax_state st;
    memset(&st, 0xff, sizeof st);
    EXPECT_OK(simd_softmax_state_init(b, &st));
    CHECK(st.backend == resolved(b) && st.max == -INFINITY && st.ones == 0 && st.rest == 0,
          "state_init: backend %u max %g ones %g rest %g", (unsigned)st.backend, st.max, st.ones,
          st.rest);
    double sum0 = -1;
    float lse0 = 0;
    EXPECT_OK(simd_softmax_state_sum(&st, &sum0));
    EXPECT_OK(simd_softmax_state_logsumexp(&st, &lse0));
    CHECK(sum0 == 0 && lse0 == -INFINITY, "empty state: sum %g, logsumexp %g", sum0, lse0);
    EXPECT_OK(simd_softmax_state_update(&st, NULL, 0));
    for (size_t c = 0; c + 1 < nb; c++)
        EXPECT_OK(simd_softmax_state_update(&st, x + bounds[c], bounds[c + 1] - bounds[c]));
    CHECK(st.max == xmax, "state max %.9g, want %.9g", st.max, xmax);
    CHECK(st.ones + st.rest > 0, "state fields: ones %g rest %g", st.ones, st.rest);
    double sum = 0;
    float lse = 0;
    EXPECT_OK(simd_softmax_state_sum(&st, &sum));
    EXPECT_OK(simd_softmax_state_logsumexp(&st, &lse));
    /* The sum's error: the logsumexp bound, relative. */
    CHECK(fabs(sum - e.S) <= e.S * (C_ULPS * 0x1p-23 + e.K), "state sum %.17g, want %.17g", sum,
          e.S);
    CHECK(fabs(sum - (st.ones + st.rest)) <= 1e-12 * sum, "sum %.17g != ones + rest %.17g", sum,
          st.ones + st.rest);
    CHECK(fabs(lse - e.lse) <= e.tlse, "state logsumexp %.9g, want %.17g (tol %.3g)", lse, e.lse,
          e.tlse);
    /* normalize / log_normalize chunk by chunk: the whole row's softmax. */
    fill_canary(y, n);
    for (size_t c = 0; c + 1 < nb; c++) {
        size_t lo = bounds[c], len = bounds[c + 1] - lo;
        EXPECT_OK(simd_softmax_state_normalize(&st, len ? x + lo : NULL, len, y + lo, len));
    }
    CHECK_P(&e, F, y, "state_normalize");
    fill_canary(y, n);
    for (size_t c = 0; c + 1 < nb; c++) {
        size_t lo = bounds[c], len = bounds[c + 1] - lo;
        EXPECT_OK(simd_softmax_state_log_normalize(&st, x + lo, len, y + lo, len));
    }
    CHECK_LP(&e, F, y, "state_log_normalize");

    /* Merge two halves' states (into the first itself). */
    simd_softmax_state a, bb, empty, m2;
    EXPECT_OK(simd_softmax_state_init(b, &a));
    EXPECT_OK(simd_softmax_state_init(b, &bb));
    EXPECT_OK(simd_softmax_state_init(b, &empty));
    size_t half = n / 2 + 3;
    EXPECT_OK(simd_softmax_state_update(&a, x, half));
    EXPECT_OK(simd_softmax_state_update(&bb, x + half, n - half));
    float fa = -1, fb = -1;
    EXPECT_OK(simd_softmax_state_merge_factors(&a, &bb, &fa, &fb));
    double mm = a.max > bb.max ? a.max : bb.max;
    double wa = exp((double)a.max - mm), wb = exp((double)bb.max - mm);
    CHECK(fabs(fa - wa) <= ulp32(wa) && fabs(fb - wb) <= ulp32(wb),
          "merge_factors %.9g %.9g, want %.9g %.9g", fa, fb, wa, wb);
    CHECK(fa == 1.0f || fb == 1.0f, "merge_factors: neither is 1 (%g, %g)", fa, fb);
    EXPECT_OK(simd_softmax_state_merge_factors(&empty, &a, &fa, &fb));
    CHECK(fa == 0.0f && fb == 1.0f, "merge_factors(empty, a) = %g, %g", fa, fb);
    EXPECT_OK(simd_softmax_state_merge(&empty, &a, &m2));
    CHECK(m2.max == a.max && fabs((m2.ones + m2.rest) - (a.ones + a.rest)) <= 1e-15 * a.ones,
          "merge(empty, a) is not a");
    EXPECT_OK(simd_softmax_state_merge(&a, &bb, &a));
    CHECK(a.max == xmax, "merged max %.9g, want %.9g", a.max, xmax);
    EXPECT_OK(simd_softmax_state_sum(&a, &sum));
    CHECK(fabs(sum - e.S) <= e.S * (C_ULPS * 0x1p-23 + e.K), "merged sum %.17g, want %.17g", sum,
          e.S);
    fill_canary(y, n);
    EXPECT_OK(simd_softmax_state_normalize(&a, x, n, y, n));
    CHECK_P(&e, F, y, "merged state_normalize");
    EXPECT_OK(simd_softmax_state_log_normalize(&a, x, n, y, n));
    CHECK_LP(&e, F, y, "merged state_log_normalize");

    /* exp_update: flash attention's loop; acc / sum = sum_j p_j v_j. */
    simd_softmax_state fs;
    EXPECT_OK(simd_softmax_state_init(b, &fs));
    double acc = 0;
    float prev = -INFINITY;
    worst_t w;
    worst_init(&w);
    int factors_ok = 1, first = 1;
    char fmsg[160] = "";
    for (size_t c = 0; c + 1 < nb; c++) {
        size_t lo = bounds[c], len = bounds[c + 1] - lo;
        float f = -7;
        fill_canary(ex, len);
        EXPECT_OK(simd_softmax_state_exp_update(&fs, x + lo, len, ex, len, &f));
        float now = fs.max;
        /* The factor: 0 while nothing was seen before, else e^(old - new). */
        double wf = (prev == -INFINITY) ? 0.0 : exp((double)prev - now);
        if (len == 0 && prev == -INFINITY)
            wf = 0.0;
        if (!(fabs(f - wf) <= ulp32(wf)) && factors_ok) {
            factors_ok = 0;
            snprintf(fmsg, sizeof fmsg, "chunk %zu: factor %.9g, want %.9g (max %g -> %g)", c, f,
                     wf, prev, now);
        }
        if (len && first) {
            CHECK(f == 0.0f, "first exp_update's factor %g", f);
            first = 0;
        }
        for (size_t i = 0; i < len; i++) {
            double d = (double)x[lo + i] - now, want = exp(d);
            if (d < -87.3 && ex[i] == 0)
                continue;
            worst_add(&w, lo + i, ex[i], want, (C_ULPS + fabs(d)) * ulp32(want) * (1 + 1e-9));
        }
        acc *= f;
        for (size_t i = 0; i < len; i++)
            acc += (double)ex[i] * v[lo + i];
        prev = now;
    }
    CHECK(factors_ok, "exp_update %s", fmsg);
    WORST_CHECK(&w, "exp_update exps");
    CHECK(fs.max == xmax, "exp_update state max %.9g, want %.9g", fs.max, xmax);
    EXPECT_OK(simd_softmax_state_sum(&fs, &sum));
    double want = 0, aw = 0;
    for (size_t i = 0; i < n; i++) {
        want += e.p[i] * v[i];
        aw += e.p[i] * fabs(v[i]);
    }
    CHECK(fabs(acc / sum - want) <= 1e-5 * aw, "flash accumulate %.9g, want %.9g", acc / sum,
          want);

    /* Special values: a NaN makes the state NaN; +inf entries share the mass. */
    simd_softmax_state sp;
    EXPECT_OK(simd_softmax_state_init(b, &sp));
    float chunk[3] = {1, NAN, 2}, inf3[3] = {INFINITY, 0, INFINITY}, o3[3];
    EXPECT_OK(simd_softmax_state_update(&sp, chunk, 3));
    EXPECT_OK(simd_softmax_state_update(&sp, inf3, 3));
    EXPECT_OK(simd_softmax_state_sum(&sp, &sum));
    EXPECT_OK(simd_softmax_state_normalize(&sp, inf3, 3, o3, 3));
    CHECK(isnan(sum) && isnan(sp.max) && isnan(o3[0]) && isnan(o3[1]),
          "NaN state: sum %g max %g", sum, sp.max);
    EXPECT_OK(simd_softmax_state_init(b, &sp));
    EXPECT_OK(simd_softmax_state_update(&sp, inf3, 3));
    EXPECT_OK(simd_softmax_state_update(&sp, x, 5));
    EXPECT_OK(simd_softmax_state_normalize(&sp, inf3, 3, o3, 3));
    CHECK(sp.max == INFINITY && o3[0] == 0.5f && o3[1] == 0.0f && o3[2] == 0.5f,
          "+inf state: max %g, normalize %g %g %g", sp.max, o3[0], o3[1], o3[2]);

    /* Errors leave the state and the outputs untouched. */
    simd_softmax_state keep = fs;
    float f = CANARY;
    fill_canary(ex, 4);
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_state_exp_update(&fs, x, 4, ex, 3, &f));
    CHECK(memcmp(&keep, &fs, sizeof fs) == 0 && f == CANARY && all_canary(ex, 4),
          "exp_update wrote on error");
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_state_normalize(&fs, x, 4, ex, 3));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_state_log_normalize(&fs, x, 3, ex, 4));
    CHECK(all_canary(ex, 4), "normalize wrote on error");
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_state_normalize(&fs, ex, 4, ex + 2, 4));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_update(&fs, NULL, 3));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_update(NULL, x, 3));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_init(b, NULL));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_sum(&fs, NULL));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_sum(NULL, &sum));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_logsumexp(NULL, &lse));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_merge(&fs, NULL, &m2));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_state_merge_factors(&fs, &fs, NULL, &fb));
    CHECK(memcmp(&keep, &fs, sizeof fs) == 0, "a refused state call changed the state");
    /* A state whose backend names nothing, or one this CPU lacks. */
    simd_softmax_state bad = fs;
    bad.backend = 0;
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_state_update(&bad, x, 3));
    bad.backend = 99;
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_state_sum(&bad, &sum));
    if (g_unsupported) {
        bad.backend = g_unsupported;
        simd_softmax_state keep2 = bad;
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_state_update(&bad, x, 3));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_state_merge(&fs, &bad, &m2));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_state_init(g_unsupported, &m2));
        CHECK(memcmp(&keep2, &bad, sizeof bad) == 0, "an unsupported state was changed");
    }
    /* A misaligned state pointer. */
    unsigned char raw[sizeof(simd_softmax_state) + 16];
    simd_softmax_state *mis = (simd_softmax_state *)(void *)(raw + 4 + (8 - (uintptr_t)raw % 8) % 8);
    EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_state_init(b, mis));

    expect_free(&e);
    free(x);
    free(y);
    free(v);
    free(ex);
    free(xd);
}

/* ------------------------------------------------------------------ */
/* The sampler.                                                          */

/* Indices sorted by logit descending, ties by lower index (qsort helper). */
static _Thread_local const float *t_sort_keys; /* qsort has no context argument */
static int by_logit_desc(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    float xa = t_sort_keys[a], xb = t_sort_keys[b];
    if (xa != xb)
        return xa > xb ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* The reference survivors: sorted indices, weights e^(alpha (x - m)) (alpha
 * the f32 1/T, as the sampler uses), top-k, top-p (normalizer: the top-k set,
 * or the whole row), min-p (relative to the top weight), zero weights dropped.
 * Returns the count; *near says whether a cut lies within 1e-6 of its limit
 * (then the sampler may cut one later or earlier). */
static size_t ref_survivors(const float *x, size_t n, const simd_softmax_sampler_options *o,
                            uint32_t *idx, double *w, int *near)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    t_sort_keys = x;
    qsort(idx, n, sizeof *idx, by_logit_desc);
    float alpha = (float)(1.0 / (double)o->temperature);
    double m = x[idx[0]];
    size_t keep = o->top_k && o->top_k < n ? o->top_k : n;
    double z = 0;
    for (size_t j = 0; j < n; j++) {
        w[j] = exp((double)alpha * (x[idx[j]] - m));
        if (j < keep)
            z += w[j];
    }
    *near = 0;
    if (o->top_p < 1) {
        double acc = 0;
        for (size_t j = 0; j < keep; j++) {
            acc += w[j];
            if (acc / z >= o->top_p) {
                if (fabs(acc / z - o->top_p) < 1e-6 || fabs((acc - w[j]) / z - o->top_p) < 1e-6)
                    *near = 1;
                keep = j + 1;
                break;
            }
        }
    }
    if (o->min_p > 0) {
        size_t k = 0;
        while (k < keep && w[k] >= o->min_p * w[0]) {
            if (fabs(w[k] - o->min_p * w[0]) < 1e-6 * w[0])
                *near = 1;
            k++;
        }
        if (k < keep && fabs(w[k] - o->min_p * w[0]) < 1e-6 * w[0])
            *near = 1;
        keep = k;
    }
    while (keep > 0 && w[keep - 1] == 0)
        keep--;
    return keep;
}

static void check_sampler_case(simd_softmax_backend b, rng_t *r, const float *x, size_t n,
                               const simd_softmax_sampler_options *o, void *scratch,
                               size_t bytes, const char *label)
{
    uint32_t *idx = xmalloc(n * sizeof *idx);
    double *w = dbuf(n);
    int near = 0;
    size_t want = ref_survivors(x, n, o, idx, w, &near);
    const simd_softmax_candidate *sv = NULL;
    size_t count = 0;
    EXPECT_OK(simd_softmax_sampler_survivors(b, o, x, n, scratch, bytes, &sv, &count));
    if (!CHECK(sv && count > 0, "%s: no survivors", label))
        goto out;
    CHECK((const char *)sv >= (const char *)scratch &&
              (const char *)(sv + count) <= (const char *)scratch + bytes,
          "%s: survivors not in the scratch", label);
    CHECK(count == want || (near && (count + 1 == want || count == want + 1)),
          "%s: %zu survivors, want %zu", label, count, want);
    if (o->top_k)
        CHECK(count <= o->top_k, "%s: %zu survivors > top_k %zu", label, count, o->top_k);
    /* Sorted by descending probability, ties by lower index; they are the
     * most probable `count` entries, with their renormalized probabilities. */
    int sorted = 1, same = 1;
    double total = 0, sum = 0;
    size_t cmp = count < want ? count : want;
    for (size_t j = 0; j < cmp; j++)
        total += w[j];
    worst_t pw;
    worst_init(&pw);
    for (size_t j = 0; j < count; j++) {
        sum += sv[j].prob;
        /* (Probabilities that round to the same float keep their logits'
         * order; equal logits go by lower index.) */
        if (j > 0)
            sorted &= sv[j].prob <= sv[j - 1].prob &&
                      (x[sv[j].index] != x[sv[j - 1].index] || sv[j].index > sv[j - 1].index);
        if (j < cmp) {
            same &= sv[j].index == idx[j];
            worst_add(&pw, j, sv[j].prob, w[j] / total, 1e-6 * (w[j] / total) + 1e-9);
        }
    }
    CHECK(sorted, "%s: survivors not sorted by descending probability", label);
    CHECK(same, "%s: survivors are not the most probable entries", label);
    if (count == want)
        WORST_CHECK(&pw, label);
    CHECK(fabs(sum - 1) <= 1e-5, "%s: survivors' probabilities sum to %.9g", label, sum);

    /* Copy them out: the next scratch use overwrites them. */
    simd_softmax_candidate *keep = xmalloc(count * sizeof *keep);
    memcpy(keep, sv, count * sizeof *keep);
    /* Draws: the token is a survivor, the one whose cumulative probability
     * first exceeds u, with its probability, and the same for the same u. */
    const double us[] = {0.0, 0.1, 0.37, 0.5, 0.9, 0.999999, rng_unif(r), rng_unif(r)};
    for (size_t k = 0; k < sizeof us / sizeof us[0]; k++) {
        simd_softmax_candidate t = {0xFFFFFFFFu, -1}, t2 = {0, 0};
        EXPECT_OK(simd_softmax_sample(b, o, x, n, us[k], scratch, bytes, &t));
        EXPECT_OK(simd_softmax_sample(b, o, x, n, us[k], scratch, bytes, &t2));
        CHECK(t.index == t2.index && f32_bits(t.prob) == f32_bits(t2.prob),
              "%s: u=%g gave %u then %u", label, us[k], t.index, t2.index);
        size_t pos = count;
        for (size_t j = 0; j < count; j++)
            if (keep[j].index == t.index)
                pos = j;
        if (!CHECK(pos < count, "%s: u=%g: token %u is no survivor", label, us[k], t.index))
            continue;
        CHECK(fabsf(t.prob - keep[pos].prob) <= 1e-6f * keep[pos].prob,
              "%s: token prob %.9g, survivor's %.9g", label, t.prob, keep[pos].prob);
        double acc = 0;
        size_t pick = count - 1;
        int boundary = 0;
        for (size_t j = 0; j < count; j++) {
            acc += keep[j].prob;
            if (fabs(us[k] - acc) < 1e-5)
                boundary = 1;
            if (us[k] < acc) {
                pick = j;
                break;
            }
        }
        CHECK(boundary || pick == pos, "%s: u=%g drew survivor #%zu, want #%zu", label, us[k],
              pos, pick);
    }
    free(keep);
out:
    free(idx);
    free(w);
}

static void sec_sampler(simd_softmax_backend b, rng_t *r)
{
    size_t V = g_quick ? 2000 : 32000;
    set_ctx("%s sampler V=%zu", bname(b), V);
    size_t bytes = simd_softmax_sampler_scratch_bytes(V);
    CHECK(bytes >= V * 16, "scratch_bytes(%zu) = %zu", V, bytes);
    CHECK(simd_softmax_sampler_scratch_bytes(1000) == 16064, "scratch_bytes(1000) = %zu",
          simd_softmax_sampler_scratch_bytes(1000));
    CHECK(simd_softmax_sampler_scratch_bytes(0) == 0, "scratch_bytes(0) = %zu",
          simd_softmax_sampler_scratch_bytes(0));
    /* Uninitialized on purpose: valgrind checks nothing depends on it. */
    void *scratch = malloc(bytes);
    float *x = fbuf(V);
    size_t amax = rng_below(r, V);
    for (size_t i = 0; i < V; i++)
        x[i] = (float)(2.5 * rng_normal(r));
    x[amax] = 20.0f; /* a unique maximum */

    simd_softmax_sampler_options o;
    simd_softmax_sampler_options_init(&o);
    /* Greedy: temperature 0 picks the argmax, whatever u. */
    o.temperature = 0;
    simd_softmax_candidate t = {0, 0};
    EXPECT_OK(simd_softmax_sample(b, &o, x, V, 0.73, scratch, bytes, &t));
    CHECK(t.index == amax && t.prob == 1.0f, "T=0: token %u (%g), want %zu", t.index, t.prob,
          amax);
    /* top_k = 1: the argmax too. */
    simd_softmax_sampler_options_init(&o);
    o.top_k = 1;
    for (int k = 0; k < 3; k++) {
        EXPECT_OK(simd_softmax_sample(b, &o, x, V, k * 0.45, scratch, bytes, &t));
        CHECK(t.index == amax, "top_k=1: token %u, want %zu", t.index, amax);
    }
    /* Ties: greedy takes the lowest index among the maxima. */
    x[V / 2] = 20.0f;
    o.temperature = 0;
    o.top_k = 0;
    EXPECT_OK(simd_softmax_sample(b, &o, x, V, 0.5, scratch, bytes, &t));
    CHECK(t.index == (amax < V / 2 ? amax : V / 2), "greedy tie: token %u", t.index);
    x[V / 2] = 0.0f;

    /* The filters, alone and together. */
    struct {
        float T, p, minp;
        size_t k;
    } cases[] = {{1, 1, 0, 0},     {0.8f, 1, 0, 40}, {1, 0.9f, 0, 0},  {1.3f, 1, 0.05f, 0},
                 {0.8f, 0.95f, 0, 40}, {0.7f, 0.5f, 0.1f, 100}, {2, 1, 0, 5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        simd_softmax_sampler_options_init(&o);
        o.temperature = cases[c].T;
        o.top_p = cases[c].p;
        o.min_p = cases[c].minp;
        o.top_k = cases[c].k;
        char label[96];
        snprintf(label, sizeof label, "T=%g top_k=%zu top_p=%g min_p=%g", o.temperature, o.top_k,
                 o.top_p, o.min_p);
        set_ctx("%s sampler V=%zu %s", bname(b), V, label);
        x[amax] = 3.0f; /* a flatter head, so top-p keeps more than one */
        check_sampler_case(b, r, x, V, &o, scratch, bytes, label);
    }
    /* Null options: temperature 1, no filter: every entry survives. */
    set_ctx("%s sampler null options", bname(b));
    {
        size_t n = 200;
        const simd_softmax_candidate *sv = NULL;
        size_t count = 0;
        EXPECT_OK(simd_softmax_sampler_survivors(b, NULL, x, n, scratch, bytes, &sv, &count));
        CHECK(count == n, "null options: %zu survivors of %zu", count, n);
        simd_softmax_sampler_options_init(&o);
        check_sampler_case(b, r, x, n, &o, scratch, bytes, "null options");
        EXPECT_OK(simd_softmax_sample(b, NULL, x, n, 0.25, scratch, bytes, &t));
        CHECK(t.index < n, "null options: token %u", t.index);
    }
    /* The scratch's contents on entry do not matter. */
    {
        simd_softmax_sampler_options_init(&o);
        o.temperature = 0.9f;
        o.top_k = 50;
        o.top_p = 0.9f;
        simd_softmax_candidate t1, t2;
        EXPECT_OK(simd_softmax_sample(b, &o, x, V, 0.6, scratch, bytes, &t1));
        memset(scratch, 0xFF, bytes);
        EXPECT_OK(simd_softmax_sample(b, &o, x, V, 0.6, scratch, bytes, &t2));
        CHECK(t1.index == t2.index && t1.prob == t2.prob, "scratch contents changed the draw");
    }
    /* +inf logits share the mass; T = +inf is uniform over the finite logits. */
    {
        float y[6] = {1, INFINITY, 3, INFINITY, -INFINITY, 2};
        const simd_softmax_candidate *sv = NULL;
        size_t count = 0;
        simd_softmax_sampler_options_init(&o);
        EXPECT_OK(simd_softmax_sampler_survivors(b, &o, y, 6, scratch, bytes, &sv, &count));
        CHECK(count == 2 && sv[0].index == 1 && sv[1].index == 3 && sv[0].prob == 0.5f,
              "+inf logits: %zu survivors", count);
        y[1] = y[3] = 0;
        o.temperature = INFINITY;
        EXPECT_OK(simd_softmax_sampler_survivors(b, &o, y, 6, scratch, bytes, &sv, &count));
        int ok = count == 5;
        for (size_t j = 0; ok && j < count; j++)
            ok &= fabsf(sv[j].prob - 0.2f) <= 1e-7f && sv[j].index != 4;
        CHECK(ok, "T=inf: %zu survivors, not uniform over the finite logits", count);
    }
    free(x);
    free(scratch);
}

/* ------------------------------------------------------------------ */
/* Cross-entropy.                                                        */

typedef struct {
    double loss, tol; /* per row; loss 0 for an ignored row */
} ce_row;

/* The reference of one row and its gradient (docs/ACCURACY.md's bounds). */
static void ce_ref_row(const double *x, size_t n, uint32_t t, double eps, double g,
                       simd_softmax_dtype gt, ce_row *out, double *grad, double *gtol)
{
    expect_t e;
    expect_init(&e, n);
    expect_softmax(&e, x, n, -INFINITY, NULL, SIMD_SOFTMAX_F32);
    double mean = 0;
    for (size_t j = 0; j < n; j++)
        mean += x[j];
    mean /= (double)n;
    double lnS = e.lnS;
    out->loss = lnS + (1 - eps) * (e.m - x[t]) + eps * (e.m - mean);
    double w = e.rest / e.S; /* delta / Sigma */
    out->tol = (ulp32(out->loss) + C_ULPS * 0x1p-23 * w + e.K) * 1.0001;
    /* 1 - p_t from the other terms (p_t - 1 would cancel where p_t ~ 1). */
    double others = 0;
    for (size_t j = 0; j < n; j++)
        if (j != t)
            others += exp(x[j] - e.m);
    double one_minus_pt = others / e.S;
    for (size_t j = 0; j < n; j++) {
        double q = (j == t ? 1 - eps : 0) + eps / (double)n;
        double rho = j == t ? g * (-(1 - eps) * one_minus_pt + eps * (e.p[j] - 1 / (double)n))
                            : g * (e.p[j] - q);
        grad[j] = rho;
        double pj = e.p[j];
        if (j != t)
            gtol[j] = fabs(g) * (C_ULPS + fabs(x[j] - e.m)) * ulp32(pj) + ulp32(rho) +
                      0.5 * ulp32(g * eps / (double)n) + fabs(g) * 0x1p-126;
        else
            gtol[j] = ulp32(rho) + fabs(g) * (2 * (1 - eps) * ((1 - pj) * C_ULPS * 0x1p-23 + e.K) +
                                              eps * pj * (C_ULPS * 0x1p-23 + e.K));
        gtol[j] = gtol[j] * 1.0001 + 0.5 * ulp_half(rho, gt);
    }
    expect_free(&e);
}

static void sec_cross_entropy(simd_softmax_backend b, rng_t *r)
{
    const uint32_t IGN = (uint32_t)-100;
    size_t R = 6, N = g_quick ? 57 : 1000, len = R * N;
    static const simd_softmax_dtype T[] = {SIMD_SOFTMAX_F32, SIMD_SOFTMAX_F16, SIMD_SOFTMAX_BF16};
    float *x = fbuf(len);
    double *xd = dbuf(len), *grad = dbuf(len), *gtol = dbuf(len);
    uint32_t targets[6];
    ce_row rr[6];
    for (size_t rw = 0; rw < R; rw++)
        targets[rw] = (uint32_t)rng_below(r, N);
    targets[2] = IGN;
    for (int lt = 0; lt < 3; lt++) {
        simd_softmax_dtype it = T[lt], gt = T[(lt + 1) % 3];
        gen_row(r, lt == 1 ? GEN_UNIFORM : GEN_WIDE, x, len);
        for (size_t i = 0; i < len; i++)
            x[i] = round_to(it, x[i]);
        x[4 * N + targets[4]] = round_to(it, 40.0f); /* a confident, correct row */
        to_double(x, xd, len);
        void *in = tbuf(it, len);
        for (size_t i = 0; i < len; i++)
            tput(it, in, i, x[i]);
        const float epss[] = {0.0f, 0.1f};
        const float gs[] = {1.0f, 0.37f, -2.0f};
        for (int ei = 0; ei < 2; ei++)
            for (int gi = 0; gi < 3; gi++) {
                float eps = epss[ei], g = gs[gi];
                set_ctx("%s cross_entropy %s->%s eps=%g g=%g", bname(b), dtype_name(it),
                        dtype_name(gt), eps, g);
                simd_softmax_cross_entropy_options o;
                simd_softmax_cross_entropy_options_init(&o);
                o.use_ignore_index = 1;
                o.ignore_index = IGN;
                o.label_smoothing = eps;
                double mean = 0, mtol = 0;
                size_t counted = 0;
                for (size_t rw = 0; rw < R; rw++) {
                    if (targets[rw] == IGN) {
                        rr[rw].loss = 0;
                        rr[rw].tol = 0;
                        for (size_t j = 0; j < N; j++)
                            grad[rw * N + j] = gtol[rw * N + j] = 0;
                        continue;
                    }
                    ce_ref_row(xd + rw * N, N, targets[rw], eps, g, gt, &rr[rw], grad + rw * N,
                               gtol + rw * N);
                    mean += rr[rw].loss;
                    mtol += rr[rw].tol;
                    counted++;
                }
                mean /= (double)counted;
                mtol = mtol / (double)counted + ulp32(mean);

                float loss = CANARY;
                EXPECT_OK(simd_softmax_cross_entropy(b, &o, it, in, len, N, targets, R, &loss));
                CHECK(fabs(loss - mean) <= mtol, "cross_entropy %.9g, want %.17g (tol %.3g)",
                      loss, mean, mtol);
                float losses[6];
                fill_canary(losses, R);
                EXPECT_OK(simd_softmax_cross_entropy_rows(b, &o, it, in, len, N, targets, R,
                                                          losses, R));
                worst_t w;
                worst_init(&w);
                for (size_t rw = 0; rw < R; rw++)
                    worst_add(&w, rw, losses[rw], rr[rw].loss, rr[rw].tol);
                WORST_CHECK(&w, "cross_entropy_rows");
                CHECK(f32_bits(losses[2]) == 0, "ignored row's loss %g", losses[2]);

                void *d = tbuf(gt, len), *d2 = tbuf(gt, len);
                EXPECT_OK(simd_softmax_cross_entropy_backward(b, &o, it, in, len, N, targets, R,
                                                              g, gt, d, len));
                worst_init(&w);
                for (size_t i = 0; i < len; i++)
                    worst_add(&w, i, tget(gt, d, i), grad[i], gtol[i]);
                WORST_CHECK(&w, "cross_entropy_backward");
                int zero = 1;
                for (size_t j = 0; j < N; j++)
                    zero &= tget(gt, d, 2 * N + j) == 0;
                CHECK(zero, "ignored row's gradient is not 0");
                /* A half gradient is the f32 gradient rounded once, bit for bit. */
                if (gt != SIMD_SOFTMAX_F32) {
                    float *g32 = fbuf(len);
                    EXPECT_OK(simd_softmax_cross_entropy_backward(
                        b, &o, it, in, len, N, targets, R, g, SIMD_SOFTMAX_F32, g32, len));
                    size_t bad = len;
                    for (size_t i = 0; i < len && bad == len; i++)
                        if (f32_bits(tget(gt, d, i)) != f32_bits(round_to(gt, g32[i])))
                            bad = i;
                    CHECK(bad == len, "%s gradient [%zu] is not the f32 gradient rounded",
                          dtype_name(gt), bad);
                    free(g32);
                }
                /* with_grad: both results the bits of the separate calls. */
                float loss2 = CANARY;
                EXPECT_OK(simd_softmax_cross_entropy_with_grad(b, &o, it, in, len, N, targets, R,
                                                               g, gt, d2, len, &loss2));
                CHECK(f32_bits(loss2) == f32_bits(loss), "with_grad loss %.9g != %.9g", loss2,
                      loss);
                CHECK(memcmp(d, d2, len * simd_softmax_dtype_size(gt)) == 0,
                      "with_grad gradient differs from cross_entropy_backward's");
                free(d);
                free(d2);
            }
        /* Every row ignored: NaN (as PyTorch); null options: no ignore index. */
        set_ctx("%s cross_entropy special %s", bname(b), dtype_name(it));
        simd_softmax_cross_entropy_options o;
        simd_softmax_cross_entropy_options_init(&o);
        o.use_ignore_index = 1;
        o.ignore_index = 7;
        uint32_t all7[6] = {7, 7, 7, 7, 7, 7};
        float loss = 0;
        EXPECT_OK(simd_softmax_cross_entropy(b, &o, it, in, len, N, all7, R, &loss));
        CHECK(isnan(loss), "every row ignored: loss %g", loss);
        float l1 = 0, l2 = 0;
        EXPECT_OK(simd_softmax_cross_entropy(b, NULL, it, in, len, N, all7, R, &l1));
        simd_softmax_cross_entropy_options_init(&o);
        EXPECT_OK(simd_softmax_cross_entropy(b, &o, it, in, len, N, all7, R, &l2));
        CHECK(!isnan(l1) && f32_bits(l1) == f32_bits(l2), "null options: %g vs %g", l1, l2);
        free(in);
    }
    /* A -inf target logit: +inf loss; a NaN logit: NaN. */
    set_ctx("%s cross_entropy special values", bname(b));
    float sx[4] = {0, -INFINITY, 1, 2}, sl[2];
    uint32_t st2[2] = {1, 0};
    EXPECT_OK(simd_softmax_cross_entropy_rows(b, NULL, SIMD_SOFTMAX_F32, sx, 4, 2, st2, 2, sl, 2));
    CHECK(sl[0] == INFINITY && sl[1] > 0 && isfinite(sl[1]), "special rows: %g %g", sl[0], sl[1]);
    sx[2] = NAN;
    EXPECT_OK(simd_softmax_cross_entropy_rows(b, NULL, SIMD_SOFTMAX_F32, sx, 4, 2, st2, 2, sl, 2));
    CHECK(isnan(sl[1]), "NaN row: %g", sl[1]);
    /* Empty: no rows. */
    float le = 0;
    EXPECT_OK(simd_softmax_cross_entropy_rows(b, NULL, SIMD_SOFTMAX_F32, NULL, 0, 3, NULL, 0, NULL,
                                              0));
    EXPECT_OK(simd_softmax_cross_entropy(b, NULL, SIMD_SOFTMAX_F32, NULL, 0, 3, NULL, 0, &le));
    free(x);
    free(xd);
    free(grad);
    free(gtol);
}

/* ------------------------------------------------------------------ */
/* Every error status, each refused call leaving its outputs untouched.  */

/* A float pointer one byte off its alignment. */
static float *misaligned_f(void *base)
{
    return (float *)(void *)((char *)base + 1);
}

static void sec_errors(simd_softmax_backend b)
{
    const simd_softmax_dtype F = SIMD_SOFTMAX_F32, H = SIMD_SOFTMAX_F16;
    set_ctx("%s errors", bname(b));
    float x[64], y[64], z[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 7) - 2.0f;
    float res = CANARY;
#define UNTOUCHED(buf, n) CHECK(all_canary((buf), (n)), "%s: output written on error", #buf)

    /* LENGTH_MISMATCH */
    fill_canary(y, 64);
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_softmax(b, F, x, 8, F, y, 7));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_log_softmax(b, F, x, 8, H, y, 9));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_softmax_rows(b, F, x, 8, F, y, 12, 4));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_log_softmax_rows(b, F, x, 8, F, y, 4, 4));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_softmax_scaled(b, x, 8, y, 7, 2.0f));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH,
              simd_softmax_softmax_scaled_rows(b, x, 8, y, 4, 4, 2.0f));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_sigmoid(b, x, 8, y, 7));
    EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH,
              simd_softmax_logits_from_probs(b, z, 0, y, 3, SIMD_SOFTMAX_ANCHOR_ZERO_MEAN, 0));
    UNTOUCHED(y, 64);

    /* INVALID_ROW_LEN: 0, or not dividing the length. */
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN, simd_softmax_softmax_rows(b, F, x, 10, F, y, 10, 3));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN, simd_softmax_softmax_rows(b, F, x, 10, F, y, 10, 0));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN,
              simd_softmax_log_softmax_rows(b, F, x, 10, F, y, 10, 4));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN,
              simd_softmax_softmax_scaled_rows(b, x, 10, y, 10, 3, 1.0f));
    memcpy(z, x, sizeof z);
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN, simd_softmax_softmax_rows_in_place(b, F, z, 10, 3));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN,
              simd_softmax_log_softmax_rows_in_place(b, F, z, 10, 0));
    CHECK(memcmp(z, x, sizeof z) == 0, "in-place rows written on error");
    UNTOUCHED(y, 64);

    /* INVALID_STRIDE and ROWS_BEYOND_BUFFER (strided rows, attention). */
    EXPECT_ST(SIMD_SOFTMAX_INVALID_STRIDE,
              simd_softmax_softmax_rows_strided(b, F, x, 20, F, y, 20, 3, 4, 3, 4));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_STRIDE,
              simd_softmax_log_softmax_rows_strided(b, F, x, 20, F, y, 20, 3, 4, 4, 2));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_STRIDE,
              simd_softmax_softmax_rows_strided(b, F, x, 20, F, y, 20, 3, 0, 4, 4));
    EXPECT_ST(SIMD_SOFTMAX_ROWS_BEYOND_BUFFER,
              simd_softmax_softmax_rows_strided(b, F, x, 13, F, y, 20, 3, 4, 5, 5));
    EXPECT_ST(SIMD_SOFTMAX_ROWS_BEYOND_BUFFER,
              simd_softmax_log_softmax_rows_strided(b, F, x, 14, F, y, 13, 3, 4, 5, 5));
    {
        simd_softmax_attention_options o;
        simd_softmax_attention_options_init(&o);
        o.row_stride = 3; /* below kv_len 4 */
        EXPECT_ST(SIMD_SOFTMAX_INVALID_STRIDE,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
    }
    UNTOUCHED(y, 64);

    /* NULL_POINTER: null with a nonzero length, null result pointers. */
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_softmax(b, F, NULL, 4, F, y, 4));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_softmax(b, F, x, 4, F, NULL, 4));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_softmax_in_place(b, F, NULL, 4));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_logsumexp(b, F, x, 4, NULL));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_logsumexp(b, F, NULL, 4, &res));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_sigmoid(b, NULL, 3, y, 3));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_jacobian(b, x, 2, NULL, 4));
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_softmax_of_combination(b, NULL, 2, y, 4));
    {
        simd_softmax_term t = {1.0f, NULL, 4};
        EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER, simd_softmax_softmax_of_combination(b, &t, 1, y, 4));
    }
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
              simd_softmax_cross_entropy(b, NULL, F, x, 4, 2, NULL, 2, &res));
    /* A buffer that would wrap around the address space. */
    EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
              simd_softmax_softmax(b, F, x, SIZE_MAX / 2, F, y, SIZE_MAX / 2));
    CHECK(res == CANARY, "a result written on error");
    UNTOUCHED(y, 64);

    /* MISALIGNED: a float pointer offset by one byte; a half by one. */
    {
        float *raw = fbuf(40);
        fill_canary(raw, 40);
        float *mis = misaligned_f(raw);
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_softmax(b, F, mis, 8, F, y, 8));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_softmax(b, F, x, 8, F, mis, 8));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED,
                  simd_softmax_softmax(b, H, (char *)raw + 1, 8, F, y, 8));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_softmax_in_place(b, F, mis, 8));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_logsumexp(b, F, x, 8, mis));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_softmax_scaled(b, mis, 8, y, 8, 1.0f));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_softmax_backward(b, x, 4, x, 4, mis, 4));
        float *chk = fbuf(40);
        fill_canary(chk, 40);
        CHECK(memcmp(raw, chk, 40 * sizeof(float)) == 0, "misaligned output written on error");
        free(chk);
        free(raw);
    }
    UNTOUCHED(y, 64);

    /* INVALID_ENUM: element type 7, backend 99, anchor 5. */
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_softmax(b, 7, x, 8, F, y, 8));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_softmax(b, F, x, 8, 3, y, 8));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_softmax(99, F, x, 8, F, y, 8));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_softmax_in_place(b, 7, y, 8));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_logsumexp(b, 7, x, 8, &res));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM,
              simd_softmax_logits_from_probs(b, x + 8, 4, y, 4, 5, 0));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM, simd_softmax_state_init(99, (simd_softmax_state *)NULL));
    EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM,
              simd_softmax_cross_entropy(b, NULL, 7, x, 4, 2, NULL, 0, &res));
    {
        simd_softmax_attention_options o;
        simd_softmax_attention_options_init(&o);
        o.mask = x;
        o.mask_len = 4;
        o.mask_type = 7;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        EXPECT_ST(SIMD_SOFTMAX_INVALID_ENUM,
                  simd_softmax_attention(b, NULL, 7, x, 8, F, y, 8, 2, 1, 4));
    }
    CHECK(res == CANARY, "a result written on error");
    UNTOUCHED(y, 64);

    /* OVERLAP: an input overlapping the output (any element types). */
    memcpy(z, x, sizeof z);
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax(b, F, z, 8, F, z + 4, 8));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax(b, F, z, 8, F, z, 8));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_log_softmax(b, H, z, 8, F, z + 3, 8));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax_rows(b, F, z + 4, 8, F, z, 8, 4));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
              simd_softmax_softmax_rows_strided(b, F, z, 20, F, z + 19, 8, 2, 4, 8, 4));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax_scaled(b, z, 8, z + 7, 8, 1.0f));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_sigmoid(b, z, 8, z + 1, 8));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax_backward(b, z, 4, z + 8, 4, z + 10, 4));
    EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_jacobian(b, z, 2, z + 1, 4));
    {
        simd_softmax_term t[2] = {{1.0f, z, 4}, {1.0f, z + 20, 4}};
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_softmax_of_combination(b, t, 2, z + 22, 4));
        /* The terms array is an input as well: an output over it is refused
         * (the pass reads the terms again while it writes). */
        simd_softmax_term *tt = xmalloc(4 * sizeof *tt);
        tt[0] = t[0];
        tt[1] = (simd_softmax_term){-0.5f, z + 20, 4};
        simd_softmax_term keep[2] = {tt[0], tt[1]};
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
                  simd_softmax_softmax_of_combination(b, tt, 2, (float *)(void *)tt, 4));
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
                  simd_softmax_softmax_of_combination(b, tt, 2, (float *)(void *)(tt + 1) + 2, 4));
        int terms_same = 1; /* (field by field: the struct has padding) */
        for (int k = 0; k < 2; k++)
            terms_same &= f32_bits(keep[k].weight) == f32_bits(tt[k].weight) &&
                          keep[k].data == tt[k].data && keep[k].len == tt[k].len;
        CHECK(terms_same, "the terms were written");
        free(tt);
        simd_softmax_attention_options o;
        simd_softmax_attention_options_init(&o);
        o.sinks = z + 30;
        o.sinks_len = 2;
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
                  simd_softmax_attention(b, &o, F, z, 8, F, z + 24, 8, 2, 1, 4));
        uint32_t tg[2] = {0, 1};
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP, simd_softmax_cross_entropy_backward(
                                            b, NULL, F, z, 8, 4, tg, 2, 1.0f, F, z + 2, 8));
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
                  simd_softmax_cross_entropy_rows(b, NULL, F, z, 8, 4, tg, 2, z + 7, 2));
    }
    CHECK(memcmp(z, x, sizeof z) == 0, "an overlapping call wrote");

    /* NAN_ALPHA: a NaN temperature or combination weight. */
    fill_canary(y, 64);
    EXPECT_ST(SIMD_SOFTMAX_NAN_ALPHA, simd_softmax_softmax_scaled(b, x, 8, y, 8, NAN));
    EXPECT_ST(SIMD_SOFTMAX_NAN_ALPHA, simd_softmax_softmax_scaled_rows(b, x, 8, y, 8, 4, NAN));
    {
        simd_softmax_term t[2] = {{1.0f, x, 8}, {NAN, x + 8, 8}};
        EXPECT_ST(SIMD_SOFTMAX_NAN_ALPHA, simd_softmax_softmax_of_combination(b, t, 2, y, 8));
        /* TERM_LENGTH: a term shorter than the output. */
        t[1].weight = 1.0f;
        t[1].len = 7;
        EXPECT_ST(SIMD_SOFTMAX_TERM_LENGTH, simd_softmax_softmax_of_combination(b, t, 2, y, 8));
    }
    UNTOUCHED(y, 64);

    /* INVALID_PARAMETER: attention (softcap -1, slopes with max_bias, ALiBi
     * without a mask, NaN scale). */
    {
        simd_softmax_attention_options o;
        simd_softmax_attention_options_init(&o);
        o.softcap = -1;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        simd_softmax_attention_options_init(&o);
        float slopes[2] = {0.5f, 0.25f}, mask[4] = {0, -1, -2, -3};
        o.mask = mask;
        o.mask_len = 4;
        o.alibi_slopes = slopes;
        o.alibi_slopes_len = 2;
        o.use_alibi_max_bias = 1;
        o.alibi_max_bias = 8;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        simd_softmax_attention_options_init(&o);
        o.alibi_slopes = slopes;
        o.alibi_slopes_len = 2;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        simd_softmax_attention_options_init(&o);
        o.scale = NAN;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        /* ATTENTION_LENGTH: scores, output, mask, sinks, slopes. */
        simd_softmax_attention_options_init(&o);
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 7, F, y, 8, 2, 1, 4));
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 9, 2, 1, 4));
        o.sinks = slopes;
        o.sinks_len = 1;
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        simd_softmax_attention_options_init(&o);
        o.mask = mask;
        o.mask_len = 3;
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        o.mask_len = 4;
        o.mask_per_head = 1; /* needs [2, 1, 4] */
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        o.mask_per_head = 0;
        o.alibi_slopes = slopes;
        o.alibi_slopes_len = 1;
        EXPECT_ST(SIMD_SOFTMAX_ATTENTION_LENGTH,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        /* NULL_POINTER and MISALIGNED in the options' buffers. */
        o.alibi_slopes = NULL;
        o.alibi_slopes_len = 2;
        EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
        o.alibi_slopes_len = 0;
        o.mask = (char *)mask + 1;
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED,
                  simd_softmax_attention(b, &o, F, x, 8, F, y, 8, 2, 1, 4));
    }
    UNTOUCHED(y, 64);

    /* INVALID_PARAMETER, SCRATCH_TOO_SHORT, NO_FINITE_LOGIT, NAN_LOGIT: the sampler. */
    {
        size_t V = 100, bytes = simd_softmax_sampler_scratch_bytes(V);
        void *scratch = malloc(bytes + 16);
        float *lg = fbuf(V);
        for (size_t i = 0; i < V; i++)
            lg[i] = (float)(i % 13);
        simd_softmax_sampler_options o;
        simd_softmax_candidate tok = {12345, CANARY};
        const simd_softmax_candidate *sv = (const simd_softmax_candidate *)x;
        size_t count = 999;
        simd_softmax_sampler_options_init(&o);
        o.temperature = -1;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        o.temperature = NAN;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        simd_softmax_sampler_options_init(&o);
        o.top_p = 0;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sampler_survivors(b, &o, lg, V, scratch, bytes, &sv, &count));
        o.top_p = 1.5f;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        simd_softmax_sampler_options_init(&o);
        o.min_p = 2;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        simd_softmax_sampler_options_init(&o);
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, 1.0, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, -0.1, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_sample(b, &o, lg, V, NAN, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_SCRATCH_TOO_SHORT,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes - 1, &tok));
        EXPECT_ST(SIMD_SOFTMAX_SCRATCH_TOO_SHORT,
                  simd_softmax_sampler_survivors(b, &o, lg, V, scratch,
                                                 simd_softmax_sampler_scratch_bytes(V - 1), &sv,
                                                 &count));
        EXPECT_ST(SIMD_SOFTMAX_SCRATCH_TOO_SHORT,
                  simd_softmax_sample(b, &o, lg, V, 0.5, NULL, 0, &tok));
        EXPECT_ST(SIMD_SOFTMAX_MISALIGNED, simd_softmax_sample(b, &o, lg, V, 0.5,
                                                               (char *)scratch + 4, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_OVERLAP,
                  simd_softmax_sample(b, &o, (float *)scratch, V, 0.5, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, NULL));
        EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
                  simd_softmax_sampler_survivors(b, &o, lg, V, scratch, bytes, NULL, &count));
        EXPECT_ST(SIMD_SOFTMAX_NO_FINITE_LOGIT,
                  simd_softmax_sample(b, &o, NULL, 0, 0.5, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_NO_FINITE_LOGIT,
                  simd_softmax_sample(b, &o, NULL, 0, 0.5, NULL, 0, &tok));
        for (size_t i = 0; i < V; i++)
            lg[i] = -INFINITY;
        EXPECT_ST(SIMD_SOFTMAX_NO_FINITE_LOGIT,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_NO_FINITE_LOGIT,
                  simd_softmax_sampler_survivors(b, &o, lg, V, scratch, bytes, &sv, &count));
        lg[70] = NAN;
        EXPECT_ST(SIMD_SOFTMAX_NAN_LOGIT,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        o.temperature = 0;
        EXPECT_ST(SIMD_SOFTMAX_NAN_LOGIT,
                  simd_softmax_sample(b, &o, lg, V, 0.5, scratch, bytes, &tok));
        EXPECT_ST(SIMD_SOFTMAX_NAN_LOGIT,
                  simd_softmax_sampler_survivors(b, &o, lg, V, scratch, bytes, &sv, &count));
        CHECK(tok.index == 12345 && tok.prob == CANARY, "sample wrote its token on error");
        CHECK(sv == (const simd_softmax_candidate *)x && count == 999,
              "survivors wrote its results on error");
        free(lg);
        free(scratch);
    }

    /* Cross-entropy: TARGETS_LENGTH, LOSSES_LENGTH, TARGET_OUT_OF_RANGE,
     * INVALID_PARAMETER (smoothing 2), LENGTH_MISMATCH (gradient). */
    {
        uint32_t tg[3] = {0, 3, 1};
        float losses[3] = {CANARY, CANARY, CANARY};
        simd_softmax_cross_entropy_options o;
        simd_softmax_cross_entropy_options_init(&o);
        res = CANARY;
        fill_canary(y, 64);
        EXPECT_ST(SIMD_SOFTMAX_TARGETS_LENGTH,
                  simd_softmax_cross_entropy(b, &o, F, x, 12, 4, tg, 2, &res));
        EXPECT_ST(SIMD_SOFTMAX_TARGETS_LENGTH, simd_softmax_cross_entropy_backward(
                                                   b, &o, F, x, 12, 4, tg, 2, 1.0f, F, y, 12));
        EXPECT_ST(SIMD_SOFTMAX_LOSSES_LENGTH,
                  simd_softmax_cross_entropy_rows(b, &o, F, x, 12, 4, tg, 3, losses, 2));
        tg[1] = 4;
        EXPECT_ST(SIMD_SOFTMAX_TARGET_OUT_OF_RANGE,
                  simd_softmax_cross_entropy(b, &o, F, x, 12, 4, tg, 3, &res));
        EXPECT_ST(SIMD_SOFTMAX_TARGET_OUT_OF_RANGE,
                  simd_softmax_cross_entropy_with_grad(b, &o, F, x, 12, 4, tg, 3, 1.0f, F, y, 12,
                                                       &res));
        /* ... unless it is the ignore index. */
        o.use_ignore_index = 1;
        o.ignore_index = 4;
        EXPECT_OK(simd_softmax_cross_entropy_rows(b, &o, F, x, 12, 4, tg, 3, losses, 3));
        CHECK(losses[1] == 0.0f, "ignored row's loss %g", losses[1]);
        losses[0] = losses[1] = losses[2] = CANARY;
        tg[1] = 3;
        simd_softmax_cross_entropy_options_init(&o);
        o.label_smoothing = 2;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_cross_entropy(b, &o, F, x, 12, 4, tg, 3, &res));
        o.label_smoothing = NAN;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PARAMETER,
                  simd_softmax_cross_entropy_rows(b, &o, F, x, 12, 4, tg, 3, losses, 3));
        o.label_smoothing = 0;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_ROW_LEN,
                  simd_softmax_cross_entropy(b, &o, F, x, 12, 5, tg, 3, &res));
        EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH, simd_softmax_cross_entropy_backward(
                                                    b, &o, F, x, 12, 4, tg, 3, 1.0f, F, y, 11));
        EXPECT_ST(SIMD_SOFTMAX_LENGTH_MISMATCH,
                  simd_softmax_cross_entropy_with_grad(b, &o, F, x, 12, 4, tg, 3, 1.0f, H, y, 13,
                                                       &res));
        EXPECT_ST(SIMD_SOFTMAX_NULL_POINTER,
                  simd_softmax_cross_entropy_with_grad(b, &o, F, x, 12, 4, tg, 3, 1.0f, F, y, 12,
                                                       NULL));
        CHECK(res == CANARY && all_canary(losses, 3), "cross-entropy wrote on error");
        UNTOUCHED(y, 64);
    }

    /* GRADIENT_LENGTH, JACOBIAN_SIZE. */
    EXPECT_ST(SIMD_SOFTMAX_GRADIENT_LENGTH, simd_softmax_softmax_backward(b, x, 4, x + 8, 3, y, 4));
    EXPECT_ST(SIMD_SOFTMAX_GRADIENT_LENGTH, simd_softmax_softmax_backward(b, x, 4, x + 8, 4, y, 5));
    EXPECT_ST(SIMD_SOFTMAX_JACOBIAN_SIZE, simd_softmax_jacobian(b, x, 3, y, 8));
    EXPECT_ST(SIMD_SOFTMAX_JACOBIAN_SIZE, simd_softmax_jacobian(b, x, 3, y, 10));
    UNTOUCHED(y, 64);

    /* logits_from_probs: INVALID_PROBABILITY, ZERO_PROBABILITY, ANCHOR_OUT_OF_RANGE. */
    {
        float p[4] = {0.5f, 0.25f, 0.125f, 0.125f};
        const uint32_t ZM = SIMD_SOFTMAX_ANCHOR_ZERO_MEAN, CO = SIMD_SOFTMAX_ANCHOR_COMPONENT;
        p[2] = -0.125f;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PROBABILITY,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, ZM, 0));
        p[2] = NAN;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PROBABILITY,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, CO, 0));
        p[2] = INFINITY;
        EXPECT_ST(SIMD_SOFTMAX_INVALID_PROBABILITY,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, ZM, 0));
        p[2] = 0.0f;
        EXPECT_ST(SIMD_SOFTMAX_ZERO_PROBABILITY,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, ZM, 0));
        EXPECT_ST(SIMD_SOFTMAX_ZERO_PROBABILITY,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, CO, 2));
        EXPECT_ST(SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, CO, 4));
        EXPECT_ST(SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE,
                  simd_softmax_logits_from_probs(b, p, 4, y, 4, CO, SIZE_MAX));
        UNTOUCHED(y, 64);
    }

    /* UNSUPPORTED_BACKEND: one this CPU lacks (NEON on x86-64, AVX2 on aarch64). */
    if (g_unsupported) {
        simd_softmax_backend u = g_unsupported;
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_backend_check(u));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_softmax(u, F, x, 8, F, y, 8));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND, simd_softmax_softmax_in_place(u, F, y, 8));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND,
                  simd_softmax_attention(u, NULL, F, x, 8, F, y, 8, 2, 1, 4));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND,
                  simd_softmax_sample(u, NULL, x, 8, 0.5, NULL, 0, NULL));
        EXPECT_ST(SIMD_SOFTMAX_UNSUPPORTED_BACKEND,
                  simd_softmax_cross_entropy(u, NULL, F, x, 8, 4, NULL, 0, &res));
        CHECK(res == CANARY, "a result written on error");
        UNTOUCHED(y, 64);
        /* The backend number's name is known even so. */
        simd_softmax_backend got = 0;
        EXPECT_OK(simd_softmax_backend_from_name(bname(u), &got));
        CHECK(got == u, "from_name(%s) = %u", bname(u), (unsigned)got);
    } else {
        printf("note: every backend runs here; UNSUPPORTED_BACKEND not provoked\n");
    }
    /* UNKNOWN_BACKEND */
    {
        simd_softmax_backend got = 77;
        EXPECT_ST(SIMD_SOFTMAX_UNKNOWN_BACKEND, simd_softmax_backend_from_name("sse", &got));
        CHECK(got == 77, "from_name(\"sse\") wrote %u", (unsigned)got);
    }
#undef UNTOUCHED
}

/* ------------------------------------------------------------------ */
/* Threads: a part of the checks from 8 threads at once.                 */

#define N_THREADS 8

typedef struct {
    int id;
    simd_softmax_backend backend;
    long pass, fail; /* this thread's counts, read after the join */
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    rng_t r = {g_seed + 0x1234567ull * (uint64_t)(job->id + 1)};
    simd_softmax_backend b = job->backend;
    t_pass = t_fail = 0;
    /* Each thread its own buffers (every section allocates its own). */
    const size_t lens[] = {1, 17, 64, 257, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        float *x = fbuf(lens[i]);
        set_ctx("thread %d %s softmax n=%zu", job->id, bname(b), lens[i]);
        gen_row(&r, (int)((i + (size_t)job->id) % GEN_COUNT), x, lens[i]);
        check_row_f32(b, x, lens[i], "thread");
        free(x);
    }
    sec_rows(b, &r);
    sec_attention(b, &r);
    sec_state(b, &r);
    sec_sampler(b, &r);
    sec_cross_entropy(b, &r);
    sec_errors(b);
    job->pass = t_pass;
    job->fail = t_fail;
    return NULL;
}

static void sec_threads(void)
{
    pthread_t th[N_THREADS];
    thread_job jobs[N_THREADS];
    int started[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i].id = i;
        jobs[i].backend = g_runnable[(size_t)i % g_n_runnable];
        jobs[i].pass = jobs[i].fail = -1;
        started[i] = pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0;
    }
    set_ctx("threads");
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(started[i], "pthread_create %d failed", i);
        if (started[i])
            CHECK(pthread_join(th[i], NULL) == 0, "pthread_join %d failed", i);
    }
    long total = 0;
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(jobs[i].fail == 0 && jobs[i].pass > 100, "thread %d (%s): %ld passed, %ld failed",
              i, bname(jobs[i].backend), jobs[i].pass, jobs[i].fail);
        total += jobs[i].pass > 0 ? jobs[i].pass : 0;
    }
    printf("threads: %d threads ran %ld checks at once\n", N_THREADS, total);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    const char *q = getenv("SIMD_SOFTMAX_TEST_QUICK");
    g_quick = q && *q && strcmp(q, "0") != 0;
    const char *seed = getenv("SIMD_SOFTMAX_TEST_SEED");
    if (seed && *seed)
        g_seed = strtoull(seed, NULL, 0);
    printf("simd-softmax %s C API test%s, seed %llu\n", simd_softmax_version(),
           g_quick ? " (quick)" : "", (unsigned long long)g_seed);
    sec_library();
    sec_statuses();
    find_backends();
    rng_t r = {g_seed};
    for (size_t i = 0; i < g_n_runnable; i++) {
        simd_softmax_backend b = g_runnable[i];
        long before = atomic_load(&g_pass) + atomic_load(&g_fail);
        sec_softmax(b, &r);
        sec_dtypes(b, &r);
        sec_rows(b, &r);
        sec_special(b);
        sec_scaled(b, &r);
        sec_backward_jacobian(b, &r);
        sec_logits_from_probs(b, &r);
        sec_combination(b, &r);
        sec_sigmoid(b, &r);
        sec_attention(b, &r);
        sec_state(b, &r);
        sec_sampler(b, &r);
        sec_cross_entropy(b, &r);
        sec_errors(b);
        long after = atomic_load(&g_pass) + atomic_load(&g_fail);
        printf("backend %s%s: %ld checks\n", b == SIMD_SOFTMAX_BACKEND_DEFAULT ? "default = " : "",
               bname(b), after - before);
    }
    sec_threads();
    long p = atomic_load(&g_pass), f = atomic_load(&g_fail);
    if (f > MAX_PRINTED)
        printf("(only the first %d failures were printed)\n", MAX_PRINTED);
    fflush(stdout);
    printf("%ld passed, %ld failed\n", p, f);
    return f != 0;
}
