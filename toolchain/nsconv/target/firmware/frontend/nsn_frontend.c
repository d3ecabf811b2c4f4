/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NSNet2 streaming front end; see nsn_frontend.h for the API and the alignment with
 * featurelib, docs/frontend.md for the bit-exactness argument.
 *
 * How identical bits on every target are guaranteed:
 *  - float32 only (-Wdouble-promotion catches a stray double), FLT_EVAL_METHOD == 0
 *    (checked in nsn_rfft.h: no x87 excess precision; x86-64 uses SSE scalar float);
 *  - -ffp-contract=off on every build, and nsn_frontend_init verifies at run time that
 *    a * b + c was not fused into an FMA in this file or in nsn_rfft.c;
 *  - no libm: log10 is computed here from +, -, *, / and bit manipulation; the window and
 *    FFT twiddles are hex-float tables generated once (gen_tables.py);
 *  - IEEE-754 default environment: round to nearest, subnormals kept (FPSCR.FZ = 0 on
 *    Cortex-M, no -ffast-math / FTZ on the host).
 * The remaining operations (+, -, *, /, int <-> float conversion) are correctly rounded by
 * IEEE 754, so equal inputs give equal outputs.
 */
#include "nsn_frontend.h"

#include <float.h>
#include <string.h>

#include "nsn_frontend_tables.h"

/* float32(1e-12): featurelib's power floor (pmin), by default */
#define MIN_POWER NSN_FRONTEND_MIN_POWER
/* float32(1e-4) = 10^(-80/20): featurelib's minimum gain (mingain = -80 dB), by default */
#define MIN_GAIN NSN_FRONTEND_MIN_GAIN
#define MAX_GAIN NSN_FRONTEND_MAX_GAIN
/* 2^-15: int16 full scale to [-1, 1), exact */
#define S16_TO_FLOAT 0x1p-15f

/* log10(2) = LOG10_2_HI + LOG10_2_LO; HI has 13 significant bits so e * HI is exact. */
#define LOG10_2_HI 0x1.344p-2f
#define LOG10_2_LO 0x1.3509f8p-18f
#define LOG10_E 0x1.bcb7b2p-2f /* 1 / ln(10) */
/* ln(2) = LN2_HI + LN2_LO; HI has 13 significant bits so e * HI is exact. */
#define LN2_HI 0x1.62ep-1f
#define LN2_LO 0x1.0bfbe8p-15f
/* float32(1/3), (1/5), (1/7), (1/9), (1/11): Taylor coefficients of atanh */
#define INV3 0x1.555556p-2f
#define INV5 0x1.99999ap-3f
#define INV7 0x1.24924ap-3f
#define INV9 0x1.c71c72p-4f
#define INV11 0x1.745d18p-4f
/* bits of float32(sqrt(2)) */
#define SQRT2_BITS 0x3fb504f3u

/* x = m * 2^e with m in [sqrt(1/2), sqrt(2)): returns ln(m) and sets *fe = e. */
static inline float log_split(float x, float *fe)
{
    /*
     * x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(s), s = (m-1)/(m+1),
     * |s| < 0.172, and 2 atanh(s) = 2s (1 + s^2/3 + s^4/5 + ...); five terms leave a
     * truncation error below 1e-10 relative. log(x) = e log(2) + ln(m) in any base.
     */
    uint32_t bits;
    int32_t e;
    float m;
    float f;
    float s;
    float z;
    float poly;

    memcpy(&bits, &x, sizeof bits);
    e = (int32_t)((bits >> 23) & 0xffu) - 127;
    bits = (bits & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
    if (bits > SQRT2_BITS)
    {
        bits -= 0x00800000u; /* m / 2, in [sqrt(1/2), 1) */
        e += 1;
    }
    memcpy(&m, &bits, sizeof m);
    f = m - 1.0f; /* exact (Sterbenz) */
    s = f / (2.0f + f);
    z = s * s;
    poly = INV3 + z * (INV5 + z * (INV7 + z * (INV9 + z * INV11)));
    *fe = (float)e;
    return 2.0f * s + 2.0f * s * (z * poly);
}

/* log10(x) = e log10(2) + ln(m) / ln(10) */
float nsn_frontend_log10(float x)
{
    float fe;
    const float ln_m = log_split(x, &fe);
    return (fe * LOG10_2_LO + ln_m * LOG10_E) + fe * LOG10_2_HI;
}

/* ln(x) = e ln(2) + ln(m) */
float nsn_frontend_ln(float x)
{
    float fe;
    const float ln_m = log_split(x, &fe);
    return (fe * LN2_LO + ln_m) + fe * LN2_HI;
}

#if NSN_FRONTEND_FEATURE_LN
#define FEATURE(x) nsn_frontend_ln(x)
#else
#define FEATURE(x) nsn_frontend_log10(x)
#endif

/* Round half away from zero, like std::round, for |x| <= 2^20 (the caller clamps). */
static int32_t round_half_away(float x)
{
    int32_t t = (int32_t)x;          /* truncation toward zero */
    const float frac = x - (float)t; /* exact: x and t share their integer bits */
    if (frac >= 0.5f)
    {
        t += 1;
    }
    else if (frac <= -0.5f)
    {
        t -= 1;
    }
    return t;
}

static int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

int8_t nsn_frontend_quantize(float value, const nsn_frontend_qparams *q)
{
    float scaled = value / q->scale;
    /* Any |scaled| beyond 1024 saturates anyway; clamping first keeps the float to int
     * conversion defined (and maps NaN to -128). */
    if (!(scaled >= -1024.0f))
    {
        scaled = -1024.0f;
    }
    else if (scaled > 1024.0f)
    {
        scaled = 1024.0f;
    }
    return (int8_t)clamp_i32(round_half_away(scaled) + q->zero_point, -128, 127);
}

float nsn_frontend_gain(int8_t mask, const nsn_frontend_qparams *q)
{
    /* (q - zp) has at most 9 bits: exact in float, so this equals TFLite's dequantize */
    float gain = (float)((int32_t)mask - q->zero_point) * q->scale;
    if (gain < MIN_GAIN)
    {
        gain = MIN_GAIN;
    }
    else if (gain > MAX_GAIN)
    {
        gain = MAX_GAIN;
    }
    return gain;
}

static int16_t float_to_s16(float y)
{
    float scaled = y * 32768.0f; /* exact */
    if (!(scaled >= -32768.0f))
    {
        scaled = -32768.0f;
    }
    else if (scaled > 32767.0f)
    {
        scaled = 32767.0f;
    }
    return (int16_t)clamp_i32(round_half_away(scaled), -32768, 32767);
}

/* Same check as nsn_rfft_fp_contract_off, for this translation unit's flags. */
static int fp_contract_off(void)
{
    volatile float a = 0x1.001p+0f;
    volatile float c = -0x1.002p+0f;
    const float x = a;
    const float y = c;
    return x * x + y == 0.0f;
}

static int qparams_valid(const nsn_frontend_qparams *q)
{
    /* written so that NaN fails */
    return q->scale > 0.0f && q->scale <= FLT_MAX && q->zero_point >= -128 && q->zero_point <= 127;
}

nsn_frontend_status nsn_frontend_init(nsn_frontend_state *st, const nsn_frontend_qparams *feature_q,
                                      const nsn_frontend_qparams *mask_q)
{
    if (!fp_contract_off() || !nsn_rfft_fp_contract_off())
    {
        return NSN_FRONTEND_ERR_FLOAT_BUILD;
    }
    if (!qparams_valid(feature_q) || !qparams_valid(mask_q))
    {
        return NSN_FRONTEND_ERR_ARGUMENT;
    }
    memset(st, 0, sizeof *st);
    st->feature_q = *feature_q;
    st->mask_q = *mask_q;
    return NSN_FRONTEND_OK;
}

/* The new hop is already in frame[win - hop .. win - 1]. */
static nsn_frontend_status analyze_frame(nsn_frontend_state *st, int8_t features[NSN_FRONTEND_BINS])
{
    unsigned n;
    unsigned k;

    if (st->hops < UINT32_MAX)
    {
        st->hops += 1;
    }
#if NSN_FRONTEND_DROP_FIRST
    if (st->hops == 1)
    {
        st->frame_pending = 0;
        return NSN_FRONTEND_PRIMING;
    }
#endif
    for (n = 0; n < NSN_FRONTEND_FRAME; ++n)
    {
        st->time[n] = st->frame[n] * nsn_frontend_window[n];
    }
#if NSN_RFFT_N > NSN_FRONTEND_WIN_LEN
    memset(st->time + NSN_FRONTEND_WIN_LEN, 0, (NSN_RFFT_N - NSN_FRONTEND_WIN_LEN) * sizeof(float));
#endif
    nsn_rfft_forward(st->time, st->spectrum, st->scratch);
    for (k = 0; k < NSN_FRONTEND_BINS; ++k)
    {
        const nsn_complex x = st->spectrum[k];
        float power = x.re * x.re + x.im * x.im;
        if (power < MIN_POWER)
        {
            power = MIN_POWER;
        }
        st->log_power[k] = FEATURE(power);
        features[k] = nsn_frontend_quantize(st->log_power[k], &st->feature_q);
    }
    st->frame_pending = 1;
    return NSN_FRONTEND_OK;
}

nsn_frontend_status nsn_frontend_analyze_s16(nsn_frontend_state *st,
                                             const int16_t in[NSN_FRONTEND_HOP],
                                             int8_t features[NSN_FRONTEND_BINS])
{
    unsigned n;
    memmove(st->frame, st->frame + NSN_FRONTEND_HOP, NSN_FRONTEND_TAIL * sizeof st->frame[0]);
    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        st->frame[NSN_FRONTEND_TAIL + n] = (float)in[n] * S16_TO_FLOAT;
    }
    return analyze_frame(st, features);
}

nsn_frontend_status nsn_frontend_analyze_f32(nsn_frontend_state *st,
                                             const float in[NSN_FRONTEND_HOP],
                                             int8_t features[NSN_FRONTEND_BINS])
{
    memmove(st->frame, st->frame + NSN_FRONTEND_HOP, NSN_FRONTEND_TAIL * sizeof st->frame[0]);
    memcpy(st->frame + NSN_FRONTEND_TAIL, in, NSN_FRONTEND_HOP * sizeof in[0]);
    return analyze_frame(st, features);
}

/*
 * Overlap-add of the inverse transform in st->time (first win samples, times the synthesis
 * window): out = the first hop of tail + frame, the tail keeps the remaining win - hop.
 */
static void overlap_add(nsn_frontend_state *st, float out[NSN_FRONTEND_HOP])
{
    const float *window = nsn_frontend_synthesis_window; /* includes irfft's 1/N */
    unsigned n;
#if NSN_FRONTEND_TAIL == NSN_FRONTEND_HOP
    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        out[n] = st->overlap[n] + st->time[n] * window[n];
        st->overlap[n] = st->time[NSN_FRONTEND_HOP + n] * window[NSN_FRONTEND_HOP + n];
    }
#elif NSN_FRONTEND_TAIL > NSN_FRONTEND_HOP
    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        out[n] = st->overlap[n] + st->time[n] * window[n];
    }
    for (n = 0; n < NSN_FRONTEND_TAIL - NSN_FRONTEND_HOP; ++n)
    {
        st->overlap[n] = st->overlap[NSN_FRONTEND_HOP + n] +
                         st->time[NSN_FRONTEND_HOP + n] * window[NSN_FRONTEND_HOP + n];
    }
    for (; n < NSN_FRONTEND_TAIL; ++n)
    {
        st->overlap[n] = st->time[NSN_FRONTEND_HOP + n] * window[NSN_FRONTEND_HOP + n];
    }
#else
    for (n = 0; n < NSN_FRONTEND_TAIL; ++n)
    {
        out[n] = st->overlap[n] + st->time[n] * window[n];
    }
    for (; n < NSN_FRONTEND_HOP; ++n)
    {
        out[n] = st->time[n] * window[n];
    }
    for (n = 0; n < NSN_FRONTEND_TAIL; ++n)
    {
        st->overlap[n] = st->time[NSN_FRONTEND_HOP + n] * window[NSN_FRONTEND_HOP + n];
    }
#endif
}

nsn_frontend_status nsn_frontend_synthesize_f32(nsn_frontend_state *st,
                                                const int8_t mask[NSN_FRONTEND_BINS],
                                                float out[NSN_FRONTEND_HOP])
{
    unsigned k;

    if (!st->frame_pending)
    {
        memset(out, 0, NSN_FRONTEND_HOP * sizeof out[0]);
#if NSN_FRONTEND_DROP_FIRST
        return st->hops <= 1 ? NSN_FRONTEND_PRIMING : NSN_FRONTEND_ERR_SEQUENCE;
#else
        return NSN_FRONTEND_ERR_SEQUENCE;
#endif
    }
    st->frame_pending = 0;
    for (k = 0; k < NSN_FRONTEND_BINS; ++k)
    {
        const float gain = nsn_frontend_gain(mask[k], &st->mask_q);
        st->spectrum[k].re *= gain;
        st->spectrum[k].im *= gain;
    }
    nsn_rfft_inverse_unscaled(st->spectrum, st->time, st->scratch);
    overlap_add(st, out);
    return NSN_FRONTEND_OK;
}

nsn_frontend_status nsn_frontend_synthesize_s16(nsn_frontend_state *st,
                                                const int8_t mask[NSN_FRONTEND_BINS],
                                                int16_t out[NSN_FRONTEND_HOP])
{
    float y[NSN_FRONTEND_HOP];
    unsigned n;
    const nsn_frontend_status status = nsn_frontend_synthesize_f32(st, mask, y);
    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        out[n] = float_to_s16(y[n]);
    }
    return status;
}

void nsn_frontend_flush_f32(nsn_frontend_state *st, float out[NSN_FRONTEND_TAIL])
{
    memcpy(out, st->overlap, sizeof st->overlap);
    memset(st->overlap, 0, sizeof st->overlap);
}

void nsn_frontend_flush_s16(nsn_frontend_state *st, int16_t out[NSN_FRONTEND_TAIL])
{
    float y[NSN_FRONTEND_TAIL];
    unsigned n;
    nsn_frontend_flush_f32(st, y);
    for (n = 0; n < NSN_FRONTEND_TAIL; ++n)
    {
        out[n] = float_to_s16(y[n]);
    }
}
