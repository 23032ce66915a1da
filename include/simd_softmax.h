/*
 * simd_softmax.h: the C ABI of simd-softmax, SIMD softmax kernels for
 * inference engines (AVX-512, AVX2+FMA, NEON, scalar; runtime dispatch).
 *
 * Every function returns a status (SIMD_SOFTMAX_OK or an error code) and
 * leaves its outputs untouched on error. No call allocates, unwinds or
 * keeps a pointer past its return; all are thread-safe. Element types are
 * SIMD_SOFTMAX_F32, SIMD_SOFTMAX_F16 and SIMD_SOFTMAX_BF16 (half types as
 * uint16_t bits). A (pointer, length) pair counts elements; a null pointer
 * is allowed only with length 0. Inputs and outputs must not overlap (the
 * _in_place functions work in place).
 */

#ifndef SIMD_SOFTMAX_H
#define SIMD_SOFTMAX_H

/* Generated from capi/src/lib.rs by cbindgen (scripts/capi.sh header); do not edit. */

#include <stddef.h>
#include <stdint.h>

/**
 * `logits_from_probs`'s anchor: `sum(x) = 0`.
 */
#define SIMD_SOFTMAX_ANCHOR_ZERO_MEAN 0

/**
 * `logits_from_probs`'s anchor: `x[anchor_index] = 0`.
 */
#define SIMD_SOFTMAX_ANCHOR_COMPONENT 1

/**
 * A backend: `SIMD_SOFTMAX_BACKEND_DEFAULT` (the best this CPU runs, or
 * the one the `SIMD_SOFTMAX_BACKEND` environment variable names, decided
 * once per process) or one by name.
 */
typedef uint32_t simd_softmax_backend;

/**
 * A status code: `SIMD_SOFTMAX_OK` or why a call was refused (nothing
 * was written then).
 */
typedef int32_t simd_softmax_status;

/**
 * An element type: one of `SIMD_SOFTMAX_F32`, `SIMD_SOFTMAX_F16`,
 * `SIMD_SOFTMAX_BF16`.
 */
typedef uint32_t simd_softmax_dtype;

/**
 * One term `weight * data` of `simd_softmax_softmax_of_combination`.
 */
typedef struct simd_softmax_term {
  /**
   * The term's weight (not NaN).
   */
  float weight;
  /**
   * `len` floats.
   */
  const float *data;
  /**
   * The term's length (the output's).
   */
  size_t len;
} simd_softmax_term;

/**
 * The options of `simd_softmax_attention`; start from
 * `simd_softmax_attention_options_init` (or pass null for none). Each
 * field's "off" value is its initial one.
 */
typedef struct simd_softmax_attention_options {
  /**
   * Multiplies every score first (typically `1/sqrt(head_dim)`); 1.
   */
  float scale;
  /**
   * Caps the scaled scores at `+-softcap` smoothly (`c*tanh(t/c)`); 0 is
   * off, otherwise it must be `> 0`.
   */
  float softcap;
  /**
   * An additive mask (`-inf` masks an entry): `[q_len, kv_len]` shared
   * by every head, or `[heads, q_len, kv_len]` when `mask_per_head`;
   * null for none.
   */
  const void *mask;
  /**
   * The mask's length in elements.
   */
  size_t mask_len;
  /**
   * The mask's element type.
   */
  simd_softmax_dtype mask_type;
  /**
   * Nonzero: one mask per head.
   */
  uint32_t mask_per_head;
  /**
   * Elements between two mask rows; 0 for `kv_len`.
   */
  size_t mask_stride;
  /**
   * ALiBi: one slope per head multiplying the mask (which holds the
   * position term); null for none.
   */
  const float *alibi_slopes;
  /**
   * The number of slopes (`heads`).
   */
  size_t alibi_slopes_len;
  /**
   * Nonzero: ALiBi with ggml's slopes from `alibi_max_bias` (not with
   * `alibi_slopes`).
   */
  uint32_t use_alibi_max_bias;
  /**
   * ggml's `max_bias` (not NaN).
   */
  float alibi_max_bias;
  /**
   * Nonzero: causal, query `q` sees keys `j <= q + q_offset`.
   */
  uint32_t causal;
  /**
   * The cache length before this block of queries (read only when
   * `causal` is nonzero; taken as 0 otherwise, the window's too).
   */
  size_t q_offset;
  /**
   * A sliding window of `window` keys: query `q` sees keys
   * `j > q + q_offset - window` only; 0 is off.
   */
  size_t window;
  /**
   * One sink logit per head (joins each row's denominator, gets no
   * output); null for none.
   */
  const float *sinks;
  /**
   * The number of sinks (`heads`).
   */
  size_t sinks_len;
  /**
   * Elements between two score rows; 0 for `kv_len`.
   */
  size_t row_stride;
  /**
   * Elements between two output rows; 0 for `kv_len`.
   */
  size_t out_stride;
} simd_softmax_attention_options;

/**
 * An online softmax state (a running max and exp sum over a row seen in
 * chunks), a plain struct the caller owns; make one with
 * `simd_softmax_state_init`. Its fields are readable: `max` is the max
 * so far and `ones + rest` the sum `sum(exp(x - max))` (split so that its
 * log stays accurate).
 */
typedef struct simd_softmax_state {
  /**
   * The backend its passes run on (a named one, never 0).
   */
  simd_softmax_backend backend;
  /**
   * The max so far (`-inf`: nothing seen; `+inf`: an `+inf` entry; NaN:
   * a NaN entry).
   */
  float max;
  /**
   * The terms of the sum that are exactly 1.
   */
  double ones;
  /**
   * Every other term of the sum.
   */
  double rest;
} simd_softmax_state;

/**
 * The sampler's options; start from `simd_softmax_sampler_options_init`
 * (or pass null for none: temperature 1, no filter).
 */
typedef struct simd_softmax_sampler_options {
  /**
   * `T >= 0`; 0 is greedy.
   */
  float temperature;
  /**
   * Top-p `p` in `(0, 1]`; 1 is off.
   */
  float top_p;
  /**
   * Min-p `p` in `[0, 1]`; 0 is off.
   */
  float min_p;
  /**
   * Top-k; 0 is off.
   */
  size_t top_k;
} simd_softmax_sampler_options;

/**
 * A survivor of the sampler: a vocabulary index and its probability among
 * the survivors.
 */
typedef struct simd_softmax_candidate {
  /**
   * The index in the logits.
   */
  uint32_t index;
  /**
   * Its renormalized probability.
   */
  float prob;
} simd_softmax_candidate;

/**
 * Cross-entropy's options; start from
 * `simd_softmax_cross_entropy_options_init` (or pass null for none).
 */
typedef struct simd_softmax_cross_entropy_options {
  /**
   * Nonzero: rows whose target is `ignore_index` contribute no loss, are
   * not counted in the mean and get a zero gradient.
   */
  uint32_t use_ignore_index;
  /**
   * The ignored target (PyTorch's default is -100, as `uint32_t`).
   */
  uint32_t ignore_index;
  /**
   * `eps` in `[0, 1]`: the weight moved from the target to the uniform
   * distribution.
   */
  float label_smoothing;
} simd_softmax_cross_entropy_options;

/**
 * Success.
 */
#define SIMD_SOFTMAX_OK 0

/**
 * Input and output lengths differ.
 */
#define SIMD_SOFTMAX_LENGTH_MISMATCH 1

/**
 * `row_len` is 0 or does not divide the buffer's length.
 */
#define SIMD_SOFTMAX_INVALID_ROW_LEN 2

/**
 * `softmax_backward`: `y`, `dy` and `dx` differ in length.
 */
#define SIMD_SOFTMAX_GRADIENT_LENGTH 3

/**
 * `jacobian`: the output is not `n*n` long.
 */
#define SIMD_SOFTMAX_JACOBIAN_SIZE 4

/**
 * A temperature or combination weight is NaN.
 */
#define SIMD_SOFTMAX_NAN_ALPHA 5

/**
 * A combination term's length differs from the output's.
 */
#define SIMD_SOFTMAX_TERM_LENGTH 6

/**
 * `logits_from_probs`: a probability is negative, NaN or `+inf`.
 */
#define SIMD_SOFTMAX_INVALID_PROBABILITY 7

/**
 * `logits_from_probs`: a zero probability where the anchor needs its log.
 */
#define SIMD_SOFTMAX_ZERO_PROBABILITY 8

/**
 * `logits_from_probs`: the anchor component is not below the length.
 */
#define SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE 9

/**
 * Strided rows: `row_len` is 0 or a stride is shorter than a row.
 */
#define SIMD_SOFTMAX_INVALID_STRIDE 10

/**
 * Strided rows reach beyond a buffer.
 */
#define SIMD_SOFTMAX_ROWS_BEYOND_BUFFER 11

/**
 * A parameter is out of its range (temperature, top-p, min-p, the uniform
 * sample, label smoothing, an attention scale, cap, window or ALiBi).
 */
#define SIMD_SOFTMAX_INVALID_PARAMETER 12

/**
 * The sampler met a NaN logit.
 */
#define SIMD_SOFTMAX_NAN_LOGIT 13

/**
 * The sampler has no logit to choose: the row is empty or all `-inf`.
 */
#define SIMD_SOFTMAX_NO_FINITE_LOGIT 14

/**
 * The sampler's scratch is smaller than the row needs
 * (`simd_softmax_sampler_scratch_bytes`).
 */
#define SIMD_SOFTMAX_SCRATCH_TOO_SHORT 15

/**
 * Cross-entropy: `targets` does not have one entry per row.
 */
#define SIMD_SOFTMAX_TARGETS_LENGTH 16

/**
 * Cross-entropy: `losses` does not have one entry per row.
 */
#define SIMD_SOFTMAX_LOSSES_LENGTH 17

/**
 * Cross-entropy: a target (not the ignore index) is not below `row_len`.
 */
#define SIMD_SOFTMAX_TARGET_OUT_OF_RANGE 18

/**
 * Attention: scores, output, mask, slopes or sinks do not fit the shape.
 */
#define SIMD_SOFTMAX_ATTENTION_LENGTH 19

/**
 * This CPU (or build) cannot run the backend asked for.
 */
#define SIMD_SOFTMAX_UNSUPPORTED_BACKEND 20

/**
 * `simd_softmax_backend_from_name`: no backend has that name.
 */
#define SIMD_SOFTMAX_UNKNOWN_BACKEND 21

/**
 * A null pointer with a nonzero length (or a null result pointer), or a
 * buffer that would wrap around the address space.
 */
#define SIMD_SOFTMAX_NULL_POINTER 100

/**
 * A pointer not aligned for its element type (4 bytes for f32, 2 for the
 * half types, 8 for the sampler's scratch and the structs).
 */
#define SIMD_SOFTMAX_MISALIGNED 101

/**
 * An element type, backend or anchor number that names nothing.
 */
#define SIMD_SOFTMAX_INVALID_ENUM 102

/**
 * An input overlaps an output (the `_in_place` functions work in place).
 */
#define SIMD_SOFTMAX_OVERLAP 103

/**
 * A bug in the library (a caught panic); please report it.
 */
#define SIMD_SOFTMAX_INTERNAL_ERROR 199

/**
 * `float`.
 */
#define SIMD_SOFTMAX_F32 0

/**
 * IEEE binary16, as `uint16_t` bits.
 */
#define SIMD_SOFTMAX_F16 1

/**
 * bfloat16, as `uint16_t` bits.
 */
#define SIMD_SOFTMAX_BF16 2

/**
 * The default backend, as the Rust free functions use.
 */
#define SIMD_SOFTMAX_BACKEND_DEFAULT 0

/**
 * Plain code, one lane; runs everywhere.
 */
#define SIMD_SOFTMAX_BACKEND_SCALAR 1

/**
 * x86-64 AVX2 + FMA.
 */
#define SIMD_SOFTMAX_BACKEND_AVX2 2

/**
 * x86-64 AVX-512 F/BW/CD/DQ/VL.
 */
#define SIMD_SOFTMAX_BACKEND_AVX512 3

/**
 * aarch64 NEON.
 */
#define SIMD_SOFTMAX_BACKEND_NEON 4

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * The library's version, e.g. `"0.1.0"` (a static string).
 */
const char *simd_softmax_version(void);

/**
 * The best backend this CPU runs (ignores `SIMD_SOFTMAX_BACKEND`).
 */
simd_softmax_backend simd_softmax_backend_detect(void);

/**
 * The backend `SIMD_SOFTMAX_BACKEND_DEFAULT` runs: the one the
 * `SIMD_SOFTMAX_BACKEND` environment variable names when it is valid,
 * else the detected one; decided at the first call of the process.
 */
simd_softmax_backend simd_softmax_backend_default(void);

/**
 * Whether this CPU and build run `backend`: `SIMD_SOFTMAX_OK`,
 * `SIMD_SOFTMAX_UNSUPPORTED_BACKEND` or `SIMD_SOFTMAX_INVALID_ENUM`.
 */
simd_softmax_status simd_softmax_backend_check(simd_softmax_backend backend);

/**
 * The backend's lower-case name (`"scalar"`, `"avx2"`, `"avx512"`,
 * `"neon"`; the default backend's for 0), a static string; null for a
 * number that names no backend.
 */
const char *simd_softmax_backend_name(simd_softmax_backend backend);

/**
 * Why this CPU or build cannot run `backend` (e.g. `"CPU lacks avx512f"`),
 * copied NUL-terminated into `buf` (truncated to `len - 1` bytes); an
 * empty string when it can. Returns the reason's full length in bytes
 * (as `snprintf` does), or `SIZE_MAX` for a number that names no
 * backend (then nothing is written).
 *
 * # Safety
 * `buf` points to `len` writable bytes, or is null with `len == 0` (to
 * ask for the length).
 */
size_t simd_softmax_backend_unavailable_reason(simd_softmax_backend backend, char *buf, size_t len);

/**
 * f32 lanes per vector of `backend` (0 for a number that names none).
 */
size_t simd_softmax_backend_lanes(simd_softmax_backend backend);

/**
 * The backend named `name` (a NUL-terminated string; case and surrounding
 * whitespace ignored) into `*backend`; `SIMD_SOFTMAX_UNKNOWN_BACKEND` for
 * an unknown name (whether the CPU runs it is
 * `simd_softmax_backend_check`'s question).
 *
 * # Safety
 * `name` is null (refused) or a NUL-terminated string; `backend` points
 * to a writable `simd_softmax_backend` (null is refused).
 */
simd_softmax_status simd_softmax_backend_from_name(const char *name, simd_softmax_backend *backend);

/**
 * The status's constant name without its prefix (`"LENGTH_MISMATCH"`), a
 * static string; `"UNKNOWN_STATUS"` for a number that is none.
 */
const char *simd_softmax_status_name(simd_softmax_status status);

/**
 * What the status means, one line (a static string).
 */
const char *simd_softmax_status_message(simd_softmax_status status);

/**
 * `out = softmax(in)` over one row of `len` elements, any element types.
 *
 * # Safety
 * `input` points to `input_len` elements of `input_type` and `output` to
 * `output_len` writable elements of `output_type`, not overlapping (or
 * null with a length of 0).
 */
simd_softmax_status simd_softmax_softmax(simd_softmax_backend backend,
                                         simd_softmax_dtype input_type,
                                         const void *input,
                                         size_t input_len,
                                         simd_softmax_dtype output_type,
                                         void *output,
                                         size_t output_len);

/**
 * `data = softmax(data)` in place.
 *
 * # Safety
 * `data` points to `len` writable elements of `data_type` (or is null
 * with `len == 0`).
 */
simd_softmax_status simd_softmax_softmax_in_place(simd_softmax_backend backend,
                                                  simd_softmax_dtype data_type,
                                                  void *data,
                                                  size_t len);

/**
 * `out = log_softmax(in)` over one row, any element types.
 *
 * # Safety
 * As `simd_softmax_softmax`.
 */
simd_softmax_status simd_softmax_log_softmax(simd_softmax_backend backend,
                                             simd_softmax_dtype input_type,
                                             const void *input,
                                             size_t input_len,
                                             simd_softmax_dtype output_type,
                                             void *output,
                                             size_t output_len);

/**
 * `data = log_softmax(data)` in place.
 *
 * # Safety
 * As `simd_softmax_softmax_in_place`.
 */
simd_softmax_status simd_softmax_log_softmax_in_place(simd_softmax_backend backend,
                                                      simd_softmax_dtype data_type,
                                                      void *data,
                                                      size_t len);

/**
 * `*result = ln(sum(exp(in)))` (`-inf` for an empty row).
 *
 * # Safety
 * `input` points to `len` elements of `input_type` (or is null with
 * `len == 0`); `result` to a writable `float`.
 */
simd_softmax_status simd_softmax_logsumexp(simd_softmax_backend backend,
                                           simd_softmax_dtype input_type,
                                           const void *input,
                                           size_t len,
                                           float *result);

/**
 * Softmax of each `row_len`-long row of a row-major batch.
 *
 * # Safety
 * As `simd_softmax_softmax`.
 */
simd_softmax_status simd_softmax_softmax_rows(simd_softmax_backend backend,
                                              simd_softmax_dtype input_type,
                                              const void *input,
                                              size_t input_len,
                                              simd_softmax_dtype output_type,
                                              void *output,
                                              size_t output_len,
                                              size_t row_len);

/**
 * Softmax of each row, in place.
 *
 * # Safety
 * As `simd_softmax_softmax_in_place`.
 */
simd_softmax_status simd_softmax_softmax_rows_in_place(simd_softmax_backend backend,
                                                       simd_softmax_dtype data_type,
                                                       void *data,
                                                       size_t len,
                                                       size_t row_len);

/**
 * Log-softmax of each `row_len`-long row.
 *
 * # Safety
 * As `simd_softmax_softmax`.
 */
simd_softmax_status simd_softmax_log_softmax_rows(simd_softmax_backend backend,
                                                  simd_softmax_dtype input_type,
                                                  const void *input,
                                                  size_t input_len,
                                                  simd_softmax_dtype output_type,
                                                  void *output,
                                                  size_t output_len,
                                                  size_t row_len);

/**
 * Log-softmax of each row, in place.
 *
 * # Safety
 * As `simd_softmax_softmax_in_place`.
 */
simd_softmax_status simd_softmax_log_softmax_rows_in_place(simd_softmax_backend backend,
                                                           simd_softmax_dtype data_type,
                                                           void *data,
                                                           size_t len,
                                                           size_t row_len);

/**
 * Softmax of `rows` rows of `row_len`, `input_stride` elements apart in
 * the input and `output_stride` apart in the output (the elements between
 * rows are neither read nor written; the last row need not be padded).
 *
 * # Safety
 * As `simd_softmax_softmax`.
 */
simd_softmax_status simd_softmax_softmax_rows_strided(simd_softmax_backend backend,
                                                      simd_softmax_dtype input_type,
                                                      const void *input,
                                                      size_t input_len,
                                                      simd_softmax_dtype output_type,
                                                      void *output,
                                                      size_t output_len,
                                                      size_t rows,
                                                      size_t row_len,
                                                      size_t input_stride,
                                                      size_t output_stride);

/**
 * Log-softmax of strided rows (see `simd_softmax_softmax_rows_strided`).
 *
 * # Safety
 * As `simd_softmax_softmax`.
 */
simd_softmax_status simd_softmax_log_softmax_rows_strided(simd_softmax_backend backend,
                                                          simd_softmax_dtype input_type,
                                                          const void *input,
                                                          size_t input_len,
                                                          simd_softmax_dtype output_type,
                                                          void *output,
                                                          size_t output_len,
                                                          size_t rows,
                                                          size_t row_len,
                                                          size_t input_stride,
                                                          size_t output_stride);

/**
 * `out = softmax(alpha * in)` (a temperature's `1/T`); `alpha` not NaN.
 *
 * # Safety
 * `input` points to `input_len` floats and `output` to `output_len`
 * writable floats, not overlapping (or null with a length of 0).
 */
simd_softmax_status simd_softmax_softmax_scaled(simd_softmax_backend backend,
                                                const float *input,
                                                size_t input_len,
                                                float *output,
                                                size_t output_len,
                                                float alpha);

/**
 * `simd_softmax_softmax_scaled` of each `row_len`-long row.
 *
 * # Safety
 * As `simd_softmax_softmax_scaled`.
 */
simd_softmax_status simd_softmax_softmax_scaled_rows(simd_softmax_backend backend,
                                                     const float *input,
                                                     size_t input_len,
                                                     float *output,
                                                     size_t output_len,
                                                     size_t row_len,
                                                     float alpha);

/**
 * The softmax's vector-Jacobian product: `dx = y * (dy - dot(y, dy))`
 * for `y = softmax(x)`.
 *
 * # Safety
 * `y` and `dy` point to `y_len` and `dy_len` floats, `dx` to `dx_len`
 * writable floats not overlapping them (or null with a length of 0).
 */
simd_softmax_status simd_softmax_softmax_backward(simd_softmax_backend backend,
                                                  const float *y,
                                                  size_t y_len,
                                                  const float *dy,
                                                  size_t dy_len,
                                                  float *dx,
                                                  size_t dx_len);

/**
 * The softmax's Jacobian `diag(y) - y*y^T`, row-major `n*n` into `out`.
 *
 * # Safety
 * `y` points to `n` floats, `out` to `out_len` writable floats not
 * overlapping them (or null with a length of 0).
 */
simd_softmax_status simd_softmax_jacobian(simd_softmax_backend backend,
                                          const float *y,
                                          size_t n,
                                          float *out,
                                          size_t out_len);

/**
 * The inverse of softmax: logits whose softmax is `p`, fixed by an anchor
 * (`SIMD_SOFTMAX_ANCHOR_ZERO_MEAN`, or `SIMD_SOFTMAX_ANCHOR_COMPONENT`
 * with `anchor_index`: that logit is 0).
 *
 * # Safety
 * `p` points to `p_len` floats, `out` to `out_len` writable floats not
 * overlapping them (or null with a length of 0).
 */
simd_softmax_status simd_softmax_logits_from_probs(simd_softmax_backend backend,
                                                   const float *p,
                                                   size_t p_len,
                                                   float *out,
                                                   size_t out_len,
                                                   uint32_t anchor,
                                                   size_t anchor_index);

/**
 * `out = softmax(sum_k terms[k].weight * terms[k].data)`, in one pass
 * (classifier-free guidance, product of experts); no terms give the
 * uniform distribution.
 *
 * # Safety
 * `terms` points to `count` terms (or is null with `count == 0`), each
 * term's `data` to its `len` floats; `out` to `out_len` writable floats
 * overlapping none of them.
 */
simd_softmax_status simd_softmax_softmax_of_combination(simd_softmax_backend backend,
                                                        const struct simd_softmax_term *terms,
                                                        size_t count,
                                                        float *out,
                                                        size_t out_len);

/**
 * The logistic sigmoid `1 / (1 + exp(-x))` of each element.
 *
 * # Safety
 * As `simd_softmax_softmax_scaled`.
 */
simd_softmax_status simd_softmax_sigmoid(simd_softmax_backend backend,
                                         const float *input,
                                         size_t input_len,
                                         float *output,
                                         size_t output_len);

/**
 * Sets `*options` to no options (scale 1, nothing else).
 *
 * # Safety
 * `options` points to a writable `simd_softmax_attention_options` or is
 * null (then nothing happens).
 */
void simd_softmax_attention_options_init(struct simd_softmax_attention_options *options);

/**
 * The attention softmax over a `[heads, q_len, kv_len]` score tensor:
 * scale, softcap, mask, ALiBi, causal limit, window and sinks fused into
 * one pass (see `simd_softmax_attention_options`); masked and skipped
 * keys get 0.
 *
 * # Safety
 * `scores` points to `scores_len` elements of `scores_type`, `output` to
 * `output_len` writable elements of `output_type`; `options` is null or
 * points to options whose buffers are valid as their fields say; no
 * input overlaps the output.
 */
simd_softmax_status simd_softmax_attention(simd_softmax_backend backend,
                                           const struct simd_softmax_attention_options *options,
                                           simd_softmax_dtype scores_type,
                                           const void *scores,
                                           size_t scores_len,
                                           simd_softmax_dtype output_type,
                                           void *output,
                                           size_t output_len,
                                           size_t heads,
                                           size_t q_len,
                                           size_t kv_len);

/**
 * `*state` = the empty state (max `-inf`, sum 0) on `backend`.
 *
 * # Safety
 * `state` points to a writable `simd_softmax_state`.
 */
simd_softmax_status simd_softmax_state_init(simd_softmax_backend backend,
                                            struct simd_softmax_state *state);

/**
 * Adds a chunk of the row to `*state` (one pass over it).
 *
 * # Safety
 * `state` points to a state; `chunk` to `len` floats (or null with
 * `len == 0`).
 */
simd_softmax_status simd_softmax_state_update(struct simd_softmax_state *state,
                                              const float *chunk,
                                              size_t len);

/**
 * `*merged` = the state of both rows' entries (on `a`'s backend); it may
 * be `a` or `b` itself.
 *
 * # Safety
 * `a` and `b` point to states, `merged` to a writable state.
 */
simd_softmax_status simd_softmax_state_merge(const struct simd_softmax_state *a,
                                             const struct simd_softmax_state *b,
                                             struct simd_softmax_state *merged);

/**
 * The factors `exp(max_a - m)` and `exp(max_b - m)` (`m` the merged max)
 * that rescale what a caller accumulated with each state before adding
 * them (flash attention's split-K combine).
 *
 * # Safety
 * `a` and `b` point to states, `fa` and `fb` to writable floats.
 */
simd_softmax_status simd_softmax_state_merge_factors(const struct simd_softmax_state *a,
                                                     const struct simd_softmax_state *b,
                                                     float *fa,
                                                     float *fb);

/**
 * The row's sum so far in `*sum` (NaN for a NaN row).
 *
 * # Safety
 * `state` points to a state, `sum` to a writable double.
 */
simd_softmax_status simd_softmax_state_sum(const struct simd_softmax_state *state, double *sum);

/**
 * `ln(sum(exp(x)))` of the row so far in `*result`.
 *
 * # Safety
 * `state` points to a state, `result` to a writable float.
 */
simd_softmax_status simd_softmax_state_logsumexp(const struct simd_softmax_state *state,
                                                 float *result);

/**
 * Writes a chunk's part of the whole row's softmax, once every chunk was
 * added: `out = exp(chunk - max) / sum`.
 *
 * # Safety
 * `state` points to a state; `chunk` to `chunk_len` floats, `output` to
 * `output_len` writable floats not overlapping them.
 */
simd_softmax_status simd_softmax_state_normalize(const struct simd_softmax_state *state,
                                                 const float *chunk,
                                                 size_t chunk_len,
                                                 float *output,
                                                 size_t output_len);

/**
 * The log-softmax counterpart of `simd_softmax_state_normalize`.
 *
 * # Safety
 * As `simd_softmax_state_normalize`.
 */
simd_softmax_status simd_softmax_state_log_normalize(const struct simd_softmax_state *state,
                                                     const float *chunk,
                                                     size_t chunk_len,
                                                     float *output,
                                                     size_t output_len);

/**
 * Flash attention's step: adds `chunk` to `*state`, writes
 * `exps = exp(chunk - new max)` and `*factor = exp(old max - new max)`,
 * what the caller's accumulator is rescaled by.
 *
 * # Safety
 * `state` points to a state; `chunk` to `chunk_len` floats, `exps` to
 * `exps_len` writable floats not overlapping them; `factor` to a writable
 * float.
 */
simd_softmax_status simd_softmax_state_exp_update(struct simd_softmax_state *state,
                                                  const float *chunk,
                                                  size_t chunk_len,
                                                  float *exps,
                                                  size_t exps_len,
                                                  float *factor);

/**
 * Sets `*options` to no filter at temperature 1.
 *
 * # Safety
 * `options` points to writable options or is null (nothing happens).
 */
void simd_softmax_sampler_options_init(struct simd_softmax_sampler_options *options);

/**
 * The bytes of scratch (8-byte aligned) the sampler needs for rows of up
 * to `vocab` logits: what a caller allocates once per sampling thread.
 */
size_t simd_softmax_sampler_scratch_bytes(size_t vocab);

/**
 * Draws the next token from `logits` with the uniform sample `u` in
 * `[0, 1)`: temperature, then top-k, top-p and min-p, the survivors
 * renormalized; deterministic given `u`. The scratch's contents on entry
 * do not matter.
 *
 * # Safety
 * `logits` points to `len` floats; `scratch` to `scratch_bytes` writable
 * bytes (8-byte aligned) not overlapping them; `options` is null or
 * points to options; `token` to a writable candidate.
 */
simd_softmax_status simd_softmax_sample(simd_softmax_backend backend,
                                        const struct simd_softmax_sampler_options *options,
                                        const float *logits,
                                        size_t len,
                                        double u,
                                        void *scratch,
                                        size_t scratch_bytes,
                                        struct simd_softmax_candidate *token);

/**
 * The survivors of `logits` by descending probability (ties by lower
 * index) with their renormalized probabilities: `*survivors` points into
 * the scratch (valid until its next use), `*count` says how many.
 *
 * # Safety
 * As `simd_softmax_sample`; `survivors` and `count` point to writable
 * results.
 */
simd_softmax_status simd_softmax_sampler_survivors(simd_softmax_backend backend,
                                                   const struct simd_softmax_sampler_options *options,
                                                   const float *logits,
                                                   size_t len,
                                                   void *scratch,
                                                   size_t scratch_bytes,
                                                   const struct simd_softmax_candidate **survivors,
                                                   size_t *count);

/**
 * Sets `*options` to no ignore index and no smoothing.
 *
 * # Safety
 * `options` points to writable options or is null (nothing happens).
 */
void simd_softmax_cross_entropy_options_init(struct simd_softmax_cross_entropy_options *options);

/**
 * The mean cross-entropy of the rows of `logits` (`row_len` each) against
 * `targets` (one per row) in `*loss`; NaN when every row is ignored.
 *
 * # Safety
 * `logits` points to `len` elements of `logits_type`, `targets` to
 * `targets_len` `uint32_t`; `options` is null or points to options;
 * `loss` to a writable float.
 */
simd_softmax_status simd_softmax_cross_entropy(simd_softmax_backend backend,
                                               const struct simd_softmax_cross_entropy_options *options,
                                               simd_softmax_dtype logits_type,
                                               const void *logits,
                                               size_t len,
                                               size_t row_len,
                                               const uint32_t *targets,
                                               size_t targets_len,
                                               float *loss);

/**
 * Each row's cross-entropy into `losses` (one per row; 0 for ignored
 * rows).
 *
 * # Safety
 * As `simd_softmax_cross_entropy`; `losses` points to `losses_len`
 * writable floats overlapping no input.
 */
simd_softmax_status simd_softmax_cross_entropy_rows(simd_softmax_backend backend,
                                                    const struct simd_softmax_cross_entropy_options *options,
                                                    simd_softmax_dtype logits_type,
                                                    const void *logits,
                                                    size_t len,
                                                    size_t row_len,
                                                    const uint32_t *targets,
                                                    size_t targets_len,
                                                    float *losses,
                                                    size_t losses_len);

/**
 * The gradient `grad_scale * (softmax(x) - q)` of each row into
 * `dlogits` (`q` the one-hot or smoothed target; ignored rows get 0).
 *
 * # Safety
 * As `simd_softmax_cross_entropy`; `dlogits` points to `dlogits_len`
 * writable elements of `dlogits_type` overlapping no input.
 */
simd_softmax_status simd_softmax_cross_entropy_backward(simd_softmax_backend backend,
                                                        const struct simd_softmax_cross_entropy_options *options,
                                                        simd_softmax_dtype logits_type,
                                                        const void *logits,
                                                        size_t len,
                                                        size_t row_len,
                                                        const uint32_t *targets,
                                                        size_t targets_len,
                                                        float grad_scale,
                                                        simd_softmax_dtype dlogits_type,
                                                        void *dlogits,
                                                        size_t dlogits_len);

/**
 * The mean loss in `*loss` and the gradient in `dlogits`, from one pass
 * for the sums and one for the gradient.
 *
 * # Safety
 * As `simd_softmax_cross_entropy_backward`; `loss` points to a writable
 * float.
 */
simd_softmax_status simd_softmax_cross_entropy_with_grad(simd_softmax_backend backend,
                                                         const struct simd_softmax_cross_entropy_options *options,
                                                         simd_softmax_dtype logits_type,
                                                         const void *logits,
                                                         size_t len,
                                                         size_t row_len,
                                                         const uint32_t *targets,
                                                         size_t targets_len,
                                                         float grad_scale,
                                                         simd_softmax_dtype dlogits_type,
                                                         void *dlogits,
                                                         size_t dlogits_len,
                                                         float *loss);

/**
 * Every element type's size in bytes, as the header's callers may want
 * it: 4 for `SIMD_SOFTMAX_F32`, 2 for the half types, 0 for a number that
 * names none.
 */
size_t simd_softmax_dtype_size(simd_softmax_dtype dtype);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* SIMD_SOFTMAX_H */
