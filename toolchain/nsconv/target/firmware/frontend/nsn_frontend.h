/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NSNet2 audio front end, streaming: the featurelib pipeline of the NSNet2 baseline
 * (Microsoft DNS Challenge) one 10 ms hop at a time, for a 16 kHz audio callback.
 *
 * The numbers below are the default front end's. Sizes, window, feature, floors and whether
 * the first frame is dropped come from the generated nsn_frontend_config.h (nsconv export
 * writes it for the model's front end): NSN_FRONTEND_HOP samples per call, frames of
 * NSN_FRONTEND_WIN_LEN, an NSN_RFFT_N-point FFT, NSN_FRONTEND_BINS bins and a flush of
 * NSN_FRONTEND_TAIL = win - hop samples.
 *
 *   analysis:  320-sample frame (previous hop + new hop) * sqrt-Hann(320, symmetric)
 *              -> 320-point rFFT -> 161 bins -> log10(max(|X|^2, 1e-12)) -> int8 features
 *   synthesis: int8 mask -> gain = clip(dequantized mask, 1e-4, 1) -> X * gain
 *              -> inverse rFFT -> * sqrt-Hann -> overlap-add (hop 160) -> 160 samples
 *
 * Use in an audio callback (160 samples in, 160 samples out, every 10 ms):
 *
 *     static nsn_frontend_state fe;      // nsn_frontend_init(&fe, &feature_q, &mask_q) once
 *     int8_t features[NSN_FRONTEND_BINS], mask[NSN_FRONTEND_BINS];
 *     if (nsn_frontend_analyze_s16(&fe, in, features) == NSN_FRONTEND_OK) {
 *         run_network(features, mask);   // int8 in, int8 out
 *     }
 *     nsn_frontend_synthesize_s16(&fe, mask, out);  // zeros on the first (priming) hop
 *
 * Alignment with featurelib's batch stft/istft (see docs/frontend.md): call m (m = 0, 1, ...)
 * receives input samples x[160m .. 160m+159]. Call 0 only primes the buffer: featurelib
 * drops that frame (160 zeros + 160 samples), so it yields no features and 160 zeros of
 * output. Call m >= 1 yields the features of batch frame m-1 (x[160(m-1) .. 160m+159]) and
 * outputs batch istft samples y[160(m-1) .. 160m-1]. The stream is therefore the batch
 * output delayed by exactly one hop: out_stream[n] = y[n - 160]. After the last input hop,
 * nsn_frontend_flush_* returns the final 160 samples of y.
 *
 * Bit-exactness: float32 arithmetic only, no libm, constants as hex-float tables, built with
 * -ffp-contract=off and FLT_EVAL_METHOD == 0: the host (x86-64, SSE) and every Cortex-M
 * build produce identical bits. nsn_frontend_init refuses a build that fused a * b + c.
 */
#ifndef NSN_FRONTEND_H
#define NSN_FRONTEND_H

#include <stdint.h>

#include "nsn_rfft.h"

#define NSN_FRONTEND_FRAME NSN_FRONTEND_WIN_LEN
#define NSN_FRONTEND_BINS NSN_RFFT_BINS
/* samples of overlap-add tail kept between hops, and returned by flush */
#define NSN_FRONTEND_TAIL (NSN_FRONTEND_WIN_LEN - NSN_FRONTEND_HOP)

/* int8 affine quantisation, real = scale * (q - zero_point), as TFLite. */
typedef struct
{
    float scale;
    int32_t zero_point;
} nsn_frontend_qparams;

typedef enum
{
    NSN_FRONTEND_OK = 0,
    /* First hop of a stream: no complete frame yet (featurelib drops it); no features,
     * and synthesis outputs zeros. */
    NSN_FRONTEND_PRIMING = 1,
    /* scale not positive and finite, or zero point outside [-128, 127] */
    NSN_FRONTEND_ERR_ARGUMENT = -1,
    /* compiled with floating-point contraction (FMA): results would differ per target */
    NSN_FRONTEND_ERR_FLOAT_BUILD = -2,
    /* synthesize called twice for one analysed frame */
    NSN_FRONTEND_ERR_SEQUENCE = -3
} nsn_frontend_status;

/*
 * All state of one stream, about 6.5 KB; allocate it statically. Fields are public so that
 * tests can inspect them; treat them as read-only.
 */
typedef struct
{
    nsn_frontend_qparams feature_q;          /* network input quantisation */
    nsn_frontend_qparams mask_q;             /* network output (mask) quantisation */
    uint32_t hops;                           /* hops analysed since init (saturating) */
    int frame_pending;                       /* analysed frame not yet synthesised */
    float frame[NSN_FRONTEND_FRAME];         /* last win input samples, oldest first */
    nsn_complex spectrum[NSN_FRONTEND_BINS]; /* noisy spectrum of the last frame */
    float log_power[NSN_FRONTEND_BINS];      /* float features of the last frame */
    float overlap[NSN_FRONTEND_TAIL];        /* overlap-add tail (win - hop samples) */
    float time[NSN_RFFT_N];                  /* scratch: windowed frame, inverse FFT */
    nsn_complex scratch[NSN_RFFT_HALF];      /* scratch: FFT working memory */
} nsn_frontend_state;

/* Starts a stream (all-zero history). */
nsn_frontend_status nsn_frontend_init(nsn_frontend_state *st, const nsn_frontend_qparams *feature_q,
                                      const nsn_frontend_qparams *mask_q);

/*
 * Pushes one hop (int16 full scale = 1.0, i.e. sample / 32768, as soundfile reads it; or
 * floats in that scale) and writes the int8 features of the frame it completes.
 * Returns NSN_FRONTEND_OK, or NSN_FRONTEND_PRIMING on the first hop (features untouched).
 */
nsn_frontend_status nsn_frontend_analyze_s16(nsn_frontend_state *st,
                                             const int16_t in[NSN_FRONTEND_HOP],
                                             int8_t features[NSN_FRONTEND_BINS]);
nsn_frontend_status nsn_frontend_analyze_f32(nsn_frontend_state *st,
                                             const float in[NSN_FRONTEND_HOP],
                                             int8_t features[NSN_FRONTEND_BINS]);

/*
 * Applies the int8 mask of the last analysed frame and writes the next 160 output samples
 * (int16: round half away from zero of 32768 * y, saturated). After a PRIMING analysis it
 * writes 160 zeros and returns NSN_FRONTEND_PRIMING (mask not read).
 */
nsn_frontend_status nsn_frontend_synthesize_f32(nsn_frontend_state *st,
                                                const int8_t mask[NSN_FRONTEND_BINS],
                                                float out[NSN_FRONTEND_HOP]);
nsn_frontend_status nsn_frontend_synthesize_s16(nsn_frontend_state *st,
                                                const int8_t mask[NSN_FRONTEND_BINS],
                                                int16_t out[NSN_FRONTEND_HOP]);

/* End of stream: the last NSN_FRONTEND_TAIL samples of the overlap-add tail (then zeros). */
void nsn_frontend_flush_f32(nsn_frontend_state *st, float out[NSN_FRONTEND_TAIL]);
void nsn_frontend_flush_s16(nsn_frontend_state *st, int16_t out[NSN_FRONTEND_TAIL]);

/* Building blocks, exposed for tests and for callers that want float features. */

/* log10(x) for positive normal floats, float32 only, within about 1 ulp. */
float nsn_frontend_log10(float x);

/* ln(x) likewise (the feature when the front end says feature=ln). */
float nsn_frontend_ln(float x);

/* TFLite QUANTIZE: clamp(round_half_away_from_zero(value / scale) + zero_point, -128, 127),
 * with the division in float32. */
int8_t nsn_frontend_quantize(float value, const nsn_frontend_qparams *q);

/* clip(scale * (q - zero_point), min, max) (1e-4, 1 by default): the gain of one bin. */
float nsn_frontend_gain(int8_t mask, const nsn_frontend_qparams *q);

#endif /* NSN_FRONTEND_H */
