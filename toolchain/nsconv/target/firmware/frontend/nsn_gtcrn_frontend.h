/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GTCRN's audio front end, streaming: what runs outside the quantized network (docs/gtcrn.md).
 * The numpy twin is nsconv.audio.gtcrn_frontend (Streamer; batch stft/istft).
 *
 *   analysis:  512-sample frame (previous hop + new hop) * sqrt(periodic Hann 512)
 *              -> 512-point rFFT -> 257 bins -> features (|X|, Re X, Im X), channel-major,
 *              |X| = sqrt(Re^2 + Im^2 + 1e-12): the network's input before quantization
 *   synthesis: complex mask in 129 ERB bands (real parts, then imaginary parts; dequantized
 *              from the network's output) -> 257 bins (the first 65 per bin, the rest by the
 *              model's ERB synthesis band matrix) -> complex product with the noisy frame
 *              -> inverse rFFT -> * synthesis window -> overlap-add (hop 256) -> 256 samples
 *
 * Sizes come from the generated nsn_frontend_config.h (the STFT) and nsn_gtcrn_config.h (mask
 * bands, ERB table) that nsconv writes for the model (gen_tables.py render_gtcrn).
 *
 * Use in an audio callback (256 samples in, 256 samples out, every 16 ms):
 *
 *     static nsn_gtcrn_frontend_state fe;          // nsn_gtcrn_init(&fe) once
 *     float feat[NSN_GTCRN_FEATURES], mask[NSN_GTCRN_MASK];
 *     nsn_gtcrn_analyze_s16(&fe, in, feat);
 *     nsn_gtcrn_quantize_s8(feat, NSN_GTCRN_FEATURES, &input_q, input);   // or _s16
 *     run_network(input, output);                  // + its states
 *     nsn_gtcrn_dequantize_s8(output, NSN_GTCRN_MASK, &output_q, mask);   // or _s16
 *     nsn_gtcrn_synthesize_s16(&fe, mask, out);
 *
 * Alignment: call t (t = 0, 1, ...) receives x[256t .. 256t+255] and analyses frame t =
 * x[256(t-1) .. 256t+255], centred on sample 256t, with zeros before the stream (frames t >= 1
 * are exactly those of the batch centred STFT; its frame 0 reflects x[1..256], which a stream
 * has not received yet). Synthesis of call t outputs y[256(t-1) .. 256t-1] of the batch
 * inverse STFT (zeros for t = 0): the stream is the batch output delayed by one hop. After the
 * last hop, nsn_gtcrn_flush_* returns the overlap-add tail (the next 256 samples).
 *
 * Bit-exactness host vs every Cortex-M build: as nsn_frontend.h (float32 only, no FMA, tables
 * as hex floats) plus one square root per bin, a correctly rounded IEEE operation
 * (-fno-math-errno: VSQRT.F32 / SQRTSS inline, no libm). nsn_gtcrn_init refuses a build that
 * fused a * b + c.
 */
#ifndef NSN_GTCRN_FRONTEND_H
#define NSN_GTCRN_FRONTEND_H

#include <stdint.h>

#include "nsn_gtcrn_config.h"
#include "nsn_rfft.h"

#define NSN_GTCRN_HOP NSN_FRONTEND_HOP
/* network input per frame: |X| (bins), Re X (bins), Im X (bins) */
#define NSN_GTCRN_FEATURES (3 * NSN_GTCRN_BINS)
/* network output per frame: real parts (mask bands), imaginary parts (mask bands) */
#define NSN_GTCRN_MASK (2 * NSN_GTCRN_MASK_BANDS)

/* affine quantisation, real = scale * (q - zero_point), as TFLite (int8 or int16) */
typedef struct
{
    float scale;
    int32_t zero_point;
} nsn_gtcrn_qparams;

typedef enum
{
    NSN_GTCRN_OK = 0,
    /* scale not positive and finite, or zero point outside the integer type */
    NSN_GTCRN_ERR_ARGUMENT = -1,
    /* compiled with floating-point contraction (FMA): results would differ per target */
    NSN_GTCRN_ERR_FLOAT_BUILD = -2,
    /* synthesize without an analysed frame, or twice for one */
    NSN_GTCRN_ERR_SEQUENCE = -3
} nsn_gtcrn_status;

/* All state of one stream, about 7 KB; allocate it statically. Treat fields as read-only. */
typedef struct
{
    uint32_t hops;                        /* hops analysed since init (saturating) */
    int frame_pending;                    /* analysed frame not yet synthesised */
    float frame[NSN_RFFT_N];              /* last two hops, oldest first */
    nsn_complex spectrum[NSN_GTCRN_BINS]; /* noisy spectrum of the last frame */
    float overlap[NSN_GTCRN_HOP];         /* overlap-add tail */
    nsn_complex scratch[NSN_RFFT_HALF];   /* scratch: FFT working memory, inverse FFT */
} nsn_gtcrn_frontend_state;

/* Starts a stream (all-zero history). NSN_GTCRN_OK or NSN_GTCRN_ERR_FLOAT_BUILD. */
nsn_gtcrn_status nsn_gtcrn_init(nsn_gtcrn_frontend_state *st);

/*
 * Pushes one hop (int16: sample / 32768; or floats in that scale) and writes the float
 * features of frame t (see the alignment above). Always NSN_GTCRN_OK.
 */
nsn_gtcrn_status nsn_gtcrn_analyze_s16(nsn_gtcrn_frontend_state *st,
                                       const int16_t in[NSN_GTCRN_HOP],
                                       float features[NSN_GTCRN_FEATURES]);
nsn_gtcrn_status nsn_gtcrn_analyze_f32(nsn_gtcrn_frontend_state *st, const float in[NSN_GTCRN_HOP],
                                       float features[NSN_GTCRN_FEATURES]);

/*
 * Applies the float mask (nsn_gtcrn_dequantize_*) to the last analysed frame and writes the
 * next 256 output samples (int16: round half away from zero of 32768 y, saturated).
 * NSN_GTCRN_ERR_SEQUENCE (output zeros, mask not read) without a pending analysed frame.
 */
nsn_gtcrn_status nsn_gtcrn_synthesize_f32(nsn_gtcrn_frontend_state *st,
                                          const float mask[NSN_GTCRN_MASK],
                                          float out[NSN_GTCRN_HOP]);
nsn_gtcrn_status nsn_gtcrn_synthesize_s16(nsn_gtcrn_frontend_state *st,
                                          const float mask[NSN_GTCRN_MASK],
                                          int16_t out[NSN_GTCRN_HOP]);

/* End of stream: the overlap-add tail (256 samples, then zeros). */
void nsn_gtcrn_flush_f32(nsn_gtcrn_frontend_state *st, float out[NSN_GTCRN_HOP]);
void nsn_gtcrn_flush_s16(nsn_gtcrn_frontend_state *st, int16_t out[NSN_GTCRN_HOP]);

/*
 * The network's quantisation, kept apart from the front end: TFLite QUANTIZE
 * (clamp(round_half_away_from_zero(x / scale) + zero_point), float32 division) and
 * DEQUANTIZE (scale * (q - zero_point)) of n values. nsn_gtcrn_check_qparams tells whether
 * q is valid for an int8 (bits 8) or int16 (bits 16) tensor.
 */
nsn_gtcrn_status nsn_gtcrn_check_qparams(const nsn_gtcrn_qparams *q, int bits);
void nsn_gtcrn_quantize_s8(const float *x, unsigned n, const nsn_gtcrn_qparams *q, int8_t *out);
void nsn_gtcrn_quantize_s16(const float *x, unsigned n, const nsn_gtcrn_qparams *q, int16_t *out);
void nsn_gtcrn_dequantize_s8(const int8_t *x, unsigned n, const nsn_gtcrn_qparams *q, float *out);
void nsn_gtcrn_dequantize_s16(const int16_t *x, unsigned n, const nsn_gtcrn_qparams *q,
                              float *out);

#endif /* NSN_GTCRN_FRONTEND_H */
