/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GTCRN's streaming front end; see nsn_gtcrn_frontend.h for the API and the alignment, and
 * nsn_frontend.c for how identical bits on every target are guaranteed (the same rules hold
 * here; the square root is IEEE's correctly rounded one).
 */
#include "nsn_gtcrn_frontend.h"

#include <float.h>
#include <string.h>

#include "nsn_frontend_tables.h"
#include "nsn_gtcrn_tables.h"

#ifndef __NO_MATH_ERRNO__
#error "build the GTCRN front end with -fno-math-errno (NSN_GTCRN_FRONTEND_CFLAGS in mk/common.mk)"
#endif

#if NSN_GTCRN_BINS != NSN_RFFT_BINS || NSN_FRONTEND_WIN_LEN != NSN_RFFT_N ||                       \
    2 * NSN_FRONTEND_HOP != NSN_RFFT_N || NSN_FRONTEND_HOP % 2 != 0 || NSN_FRONTEND_DROP_FIRST
#error "the GTCRN front end needs win = n_fft = 2 hop (even), no dropped frame, matching bins"
#endif

/* 2^-15: int16 full scale to [-1, 1), exact */
#define S16_TO_FLOAT 0x1p-15f

/* Same check as nsn_rfft_fp_contract_off, for this translation unit's flags. */
static int fp_contract_off(void)
{
    volatile float a = 0x1.001p+0f;
    volatile float c = -0x1.002p+0f;
    const float x = a;
    const float y = c;
    return x * x + y == 0.0f;
}

nsn_gtcrn_status nsn_gtcrn_init(nsn_gtcrn_frontend_state *st)
{
    if (!fp_contract_off() || !nsn_rfft_fp_contract_off())
    {
        return NSN_GTCRN_ERR_FLOAT_BUILD;
    }
    memset(st, 0, sizeof *st);
    return NSN_GTCRN_OK;
}

/* ---------------------------------------------------------------- analysis */

/* The new hop is already in frame[hop .. 2 hop - 1]. */
static void analyze_frame(nsn_gtcrn_frontend_state *st, float features[NSN_GTCRN_FEATURES])
{
    float *mag = features;
    float *re = features + NSN_GTCRN_BINS;
    float *im = features + 2 * NSN_GTCRN_BINS;
    unsigned k;

    if (st->hops < UINT32_MAX)
    {
        st->hops += 1;
    }
    nsn_rfft_forward_windowed(st->frame, nsn_frontend_window, st->spectrum, st->scratch);
    for (k = 0; k < NSN_GTCRN_BINS; ++k)
    {
        const nsn_complex x = st->spectrum[k];
        /* the graph's order: (Re^2 + Im^2) + eps, then the square root */
        mag[k] = __builtin_sqrtf((x.re * x.re + x.im * x.im) + NSN_GTCRN_MAG_EPS);
        re[k] = x.re;
        im[k] = x.im;
    }
    st->frame_pending = 1;
}

nsn_gtcrn_status nsn_gtcrn_analyze_s16(nsn_gtcrn_frontend_state *st,
                                       const int16_t in[NSN_GTCRN_HOP],
                                       float features[NSN_GTCRN_FEATURES])
{
    unsigned n;
    memcpy(st->frame, st->frame + NSN_GTCRN_HOP, NSN_GTCRN_HOP * sizeof st->frame[0]);
    for (n = 0; n < NSN_GTCRN_HOP; ++n)
    {
        st->frame[NSN_GTCRN_HOP + n] = (float)in[n] * S16_TO_FLOAT;
    }
    analyze_frame(st, features);
    return NSN_GTCRN_OK;
}

nsn_gtcrn_status nsn_gtcrn_analyze_f32(nsn_gtcrn_frontend_state *st, const float in[NSN_GTCRN_HOP],
                                       float features[NSN_GTCRN_FEATURES])
{
    memcpy(st->frame, st->frame + NSN_GTCRN_HOP, NSN_GTCRN_HOP * sizeof st->frame[0]);
    memcpy(st->frame + NSN_GTCRN_HOP, in, NSN_GTCRN_HOP * sizeof in[0]);
    analyze_frame(st, features);
    return NSN_GTCRN_OK;
}

/* ---------------------------------------------------------------- synthesis */

/* x *= (mr + i mi) */
static void complex_product(nsn_complex *x, float mr, float mi)
{
    const nsn_complex v = *x;
    x->re = v.re * mr - v.im * mi;
    x->im = v.im * mr + v.re * mi;
}

/*
 * spectrum[k] *= mask[k] (complex). Bins below NSN_GTCRN_LOW take their own mask value; bin
 * low + j takes column j of the ERB synthesis matrix applied to the bands (its non-zero
 * entries in increasing band order, real and imaginary parts in one pass).
 */
static void apply_mask(nsn_complex spectrum[NSN_GTCRN_BINS], const float mask[NSN_GTCRN_MASK])
{
    const float *mask_re = mask;
    const float *mask_im = mask + NSN_GTCRN_MASK_BANDS;
    const float *band_re = mask_re + NSN_GTCRN_LOW;
    const float *band_im = mask_im + NSN_GTCRN_LOW;
    unsigned k;
    unsigned j;
    for (k = 0; k < NSN_GTCRN_LOW; ++k)
    {
        complex_product(&spectrum[k], mask_re[k], mask_im[k]);
    }
    for (j = 0; j < NSN_GTCRN_HIGH; ++j)
    {
        const unsigned end = nsn_gtcrn_erb_start[j + 1];
        float mr = 0.0f;
        float mi = 0.0f;
        unsigned e;
        for (e = nsn_gtcrn_erb_start[j]; e < end; ++e)
        {
            const float w = nsn_gtcrn_erb_weight[e];
            const unsigned b = nsn_gtcrn_erb_band[e];
            mr += w * band_re[b];
            mi += w * band_im[b];
        }
        complex_product(&spectrum[NSN_GTCRN_LOW + j], mr, mi);
    }
}

nsn_gtcrn_status nsn_gtcrn_synthesize_f32(nsn_gtcrn_frontend_state *st,
                                          const float mask[NSN_GTCRN_MASK],
                                          float out[NSN_GTCRN_HOP])
{
    const float *window = nsn_gtcrn_synthesis_window; /* 1/N and the OLA norm folded in */
    const nsn_complex *head = st->scratch;                      /* samples 0 .. hop - 1 */
    const nsn_complex *tail = st->scratch + NSN_GTCRN_HOP / 2; /* samples hop .. 2 hop - 1 */
    unsigned m;

    if (!st->frame_pending)
    {
        memset(out, 0, NSN_GTCRN_HOP * sizeof out[0]);
        return NSN_GTCRN_ERR_SEQUENCE;
    }
    st->frame_pending = 0;
    apply_mask(st->spectrum, mask);
    /* the inverse FFT's samples, 2m = .re and 2m + 1 = -.im (nsn_rfft_inverse_packed), go
     * straight into the overlap-add: out = overlap + time * window, overlap = the next hop's */
    nsn_rfft_inverse_packed(st->spectrum, st->scratch);
    for (m = 0; m < NSN_GTCRN_HOP / 2; ++m)
    {
        const float t0 = head[m].re;
        const float t1 = -head[m].im;
        const float u0 = tail[m].re;
        const float u1 = -tail[m].im;
        out[2 * m] = st->overlap[2 * m] + t0 * window[2 * m];
        out[2 * m + 1] = st->overlap[2 * m + 1] + t1 * window[2 * m + 1];
        st->overlap[2 * m] = u0 * window[NSN_GTCRN_HOP + 2 * m];
        st->overlap[2 * m + 1] = u1 * window[NSN_GTCRN_HOP + 2 * m + 1];
    }
    if (st->hops == 1)
    {
        /* output hop 0 lies before the first input sample */
        memset(out, 0, NSN_GTCRN_HOP * sizeof out[0]);
    }
    return NSN_GTCRN_OK;
}

/* The bits of a float (memcpy: one register move, no aliasing question). */
static uint32_t float_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* bits of 2^18: |y2| at or above it saturates every int8 and int16 result */
#define TWICE_LIMIT_BITS 0x48800000u
/* bits of +infinity: a larger magnitude is NaN */
#define INF_BITS 0x7f800000u
/* beyond int16 whatever the zero point: the value of a saturating input */
#define SATURATED (1 << 18)

/*
 * round_half_away_from_zero(y) + zero_point, given y2 = 2 y (exact: a float times 2 only moves
 * its exponent, or overflows to an infinity that saturates like y would) and bias =
 * 2 zero_point + 1; the caller saturates. With k = trunc(2 y) (toward zero):
 *   y >= 0: round(y) = floor(y + 1/2) = floor((2 y + 1) / 2) = floor((k + 1) / 2)
 *   y < 0:  round(y) = -floor(1/2 - y) = -floor((1 - k) / 2) = ceil((k - 1) / 2) = floor(k / 2)
 * so round(y) + zero_point = (k + 1 + (k < 0 ? -1 : 0) + 2 zero_point) >> 1 (arithmetic shift
 * = floor): no float rounding step at all. |y| >= 2^17, infinities and NaN are tested on the
 * bits (which keeps the float to int conversion defined) and saturate: y >= 2^17 and +inf
 * high (2^17 + zero_point > 32767), everything else (negative, NaN) low, as TFLite's clamp
 * after its float rounding does (NaN: as the previous C, its lowest value).
 */
static int32_t round_twice(float y2, int32_t bias)
{
    const uint32_t u = float_bits(y2);
    int32_t k;
    if (__builtin_expect((uint32_t)(u << 1) >= 2u * TWICE_LIMIT_BITS, 0))
    {
        return u <= INF_BITS ? SATURATED : -SATURATED; /* sign bit clear and not NaN */
    }
    k = (int32_t)y2;
    return (k + bias + (k >> 31)) >> 1;
}

/* Saturation to int16 and int8: SSAT on the cores, the same clamp in C elsewhere. */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
static int32_t saturate16(int32_t x)
{
    int32_t r;
    __asm("ssat %0, #16, %1" : "=r"(r) : "r"(x));
    return r;
}

static int32_t saturate8(int32_t x)
{
    int32_t r;
    __asm("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}
#else
static int32_t saturate16(int32_t x)
{
    return x < -32768 ? -32768 : (x > 32767 ? 32767 : x);
}

static int32_t saturate8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}
#endif

/* 65536 y = 2 (32768 y), exact (a power of two); n even, two per iteration */
static void float_to_s16(const float *y, unsigned n, int16_t *out)
{
    unsigned i;
    for (i = 0; i < n; i += 2)
    {
        out[i] = (int16_t)saturate16(round_twice(y[i] * 65536.0f, 1));
        out[i + 1] = (int16_t)saturate16(round_twice(y[i + 1] * 65536.0f, 1));
    }
}

nsn_gtcrn_status nsn_gtcrn_synthesize_s16(nsn_gtcrn_frontend_state *st,
                                          const float mask[NSN_GTCRN_MASK],
                                          int16_t out[NSN_GTCRN_HOP])
{
    float y[NSN_GTCRN_HOP];
    const nsn_gtcrn_status status = nsn_gtcrn_synthesize_f32(st, mask, y);
    float_to_s16(y, NSN_GTCRN_HOP, out);
    return status;
}

void nsn_gtcrn_flush_f32(nsn_gtcrn_frontend_state *st, float out[NSN_GTCRN_HOP])
{
    memcpy(out, st->overlap, sizeof st->overlap);
    memset(st->overlap, 0, sizeof st->overlap);
}

void nsn_gtcrn_flush_s16(nsn_gtcrn_frontend_state *st, int16_t out[NSN_GTCRN_HOP])
{
    float y[NSN_GTCRN_HOP];
    nsn_gtcrn_flush_f32(st, y);
    float_to_s16(y, NSN_GTCRN_HOP, out);
}

/* ---------------------------------------------------------------- quantisation */

nsn_gtcrn_status nsn_gtcrn_check_qparams(const nsn_gtcrn_qparams *q, int bits)
{
    const int32_t limit = bits == 8 ? 128 : 32768;
    /* written so that NaN fails */
    if ((bits != 8 && bits != 16) || !(q->scale > 0.0f && q->scale <= FLT_MAX) ||
        q->zero_point < -limit || q->zero_point >= limit)
    {
        return NSN_GTCRN_ERR_ARGUMENT;
    }
    return NSN_GTCRN_OK;
}

/*
 * TFLite QUANTIZE: y = x / scale (float32 division, as TFLite), then round_twice on 2 y.
 * 2 y = (x / scale) * 2 exactly. When scale / 2 is exact (checked: half * 2 == scale),
 * x / half is the same value: both are 2 x / scale rounded once, except where x / scale is
 * subnormal or 2 x / scale overflows, and there both give |2 y| < 1 (k = 0) or both saturate
 * with the sign of x (or NaN). `halved` is a constant at each call (two loops).
 */
static inline __attribute__((always_inline)) int32_t quantize_one(float x, float divisor,
                                                                  int halved, int32_t bias)
{
    return round_twice(halved ? x / divisor : (x / divisor) * 2.0f, bias);
}

/* two elements per iteration */
static inline __attribute__((always_inline)) void quantize8(const float *x, unsigned n,
                                                            float divisor, int halved,
                                                            int32_t bias, int8_t *out)
{
    unsigned i;
    for (i = 0; i + 1 < n; i += 2)
    {
        out[i] = (int8_t)saturate8(quantize_one(x[i], divisor, halved, bias));
        out[i + 1] = (int8_t)saturate8(quantize_one(x[i + 1], divisor, halved, bias));
    }
    if (i < n)
    {
        out[i] = (int8_t)saturate8(quantize_one(x[i], divisor, halved, bias));
    }
}

static inline __attribute__((always_inline)) void quantize16(const float *x, unsigned n,
                                                             float divisor, int halved,
                                                             int32_t bias, int16_t *out)
{
    unsigned i;
    for (i = 0; i + 1 < n; i += 2)
    {
        out[i] = (int16_t)saturate16(quantize_one(x[i], divisor, halved, bias));
        out[i + 1] = (int16_t)saturate16(quantize_one(x[i + 1], divisor, halved, bias));
    }
    if (i < n)
    {
        out[i] = (int16_t)saturate16(quantize_one(x[i], divisor, halved, bias));
    }
}

/* (scale and zero point in locals: the int8 stores could otherwise alias *q) */
void nsn_gtcrn_quantize_s8(const float *x, unsigned n, const nsn_gtcrn_qparams *q, int8_t *out)
{
    const float scale = q->scale;
    const float half = scale * 0.5f;
    const int32_t bias = 2 * q->zero_point + 1;
    if (half * 2.0f == scale)
    {
        quantize8(x, n, half, 1, bias, out);
    }
    else
    {
        quantize8(x, n, scale, 0, bias, out);
    }
}

void nsn_gtcrn_quantize_s16(const float *x, unsigned n, const nsn_gtcrn_qparams *q, int16_t *out)
{
    const float scale = q->scale;
    const float half = scale * 0.5f;
    const int32_t bias = 2 * q->zero_point + 1;
    if (half * 2.0f == scale)
    {
        quantize16(x, n, half, 1, bias, out);
    }
    else
    {
        quantize16(x, n, scale, 0, bias, out);
    }
}

/* (q - zero_point) has at most 17 bits: exact in float, so each is TFLite's DEQUANTIZE */
void nsn_gtcrn_dequantize_s8(const int8_t *x, unsigned n, const nsn_gtcrn_qparams *q, float *out)
{
    const float scale = q->scale;
    const int32_t zero_point = q->zero_point;
    unsigned i;
    for (i = 0; i < n; ++i)
    {
        out[i] = (float)((int32_t)x[i] - zero_point) * scale;
    }
}

void nsn_gtcrn_dequantize_s16(const int16_t *x, unsigned n, const nsn_gtcrn_qparams *q,
                              float *out)
{
    const float scale = q->scale;
    const int32_t zero_point = q->zero_point;
    unsigned i;
    for (i = 0; i < n; ++i)
    {
        out[i] = (float)((int32_t)x[i] - zero_point) * scale;
    }
}
