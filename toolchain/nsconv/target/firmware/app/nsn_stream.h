/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_stream: the whole noise suppressor behind one call per 10 ms of audio. Board
 * independent: the C audio front end (firmware/frontend) plus the generated early-exit int8
 * network (nsn_model.h), with no heap, no file I/O and no board code. The only service it
 * takes from the board is the instruction/cycle counter of nsn_port.h, for the per-stage
 * counts in nsn_stream_t.counts (define NSN_STREAM_NO_PROFILE to build without it).
 *
 * Use from an audio callback (default front end: 16 kHz mono, 160 samples in and out every
 * 10 ms; in general NSN_STREAM_HOP samples at NSN_STREAM_SAMPLE_RATE):
 *
 *     static nsn_stream_t ns;            // about 10 KB; nsn_stream_init(&ns) once
 *
 *     void on_audio(const int16_t in[160], int16_t out[160])
 *     {
 *         nsn_stream_process(&ns, in, NSN_EXIT_FINAL, out);   // any exit, per call
 *     }
 *
 * Latency: the output is the enhanced input delayed by one hop (160 samples). The first
 * call only primes the analysis window (no network step, 160 zeros out); call m >= 1 runs
 * the network on the frame that ends with its input and returns enhanced samples
 * [160 (m - 1), 160 m) of the stream. At the end of a recording, nsn_stream_flush() returns
 * the overlap-add tail (see docs/frontend.md for the exact alignment).
 *
 * Exits: the exit may change on every call (an exit schedule). The network's GRU states
 * follow the generated code's state rule (nsn_model.h): a step stores the states of the GRUs
 * it ran; a GRU that a shallower exit skips keeps its last state. This is the rule that
 * `nsconv verify` checks against TFLM.
 */
#ifndef NSN_STREAM_H
#define NSN_STREAM_H

#include <stdint.h>

#include "nsn_frontend.h"
#include "nsn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Samples per call (160: 10 ms at 16 kHz by default) and the sample rate, from the
 * front end generated for the model (nsn_frontend_config.h). */
#define NSN_STREAM_HOP NSN_FRONTEND_HOP
#define NSN_STREAM_SAMPLE_RATE NSN_FRONTEND_SAMPLE_RATE

#if NSN_NUM_FEATURES != NSN_FRONTEND_BINS || NSN_NUM_BINS != NSN_FRONTEND_BINS
#error "the generated network does not take the front end's NSN_FRONTEND_BINS bins"
#endif

typedef enum
{
    NSN_STREAM_OK = 0,
    /* First call of a stream: the analysis window is not full yet; no network step, the
     * output is 160 zeros. */
    NSN_STREAM_PRIMING = 1,
    /* NULL pointer or unknown exit id; nothing was changed */
    NSN_STREAM_ERR_ARGUMENT = -1,
    /* the front end refused (bad quantization parameters or a build with fused multiply-add,
     * see docs/frontend.md); from nsn_stream_init only */
    NSN_STREAM_ERR_FRONTEND = -2,
    /* a network kernel reported an error */
    NSN_STREAM_ERR_NETWORK = -3
} nsn_stream_status;

/* Cost of the last nsn_stream_process call per stage, in nsn_port_count_unit() units
 * ("instructions" under QEMU -icount, "cycles" with the DWT counter, "ns" on the host). */
typedef struct
{
    uint64_t analyze;    /* window, rFFT, log-power, int8 features */
    uint64_t network;    /* nsn_model_step (0 on the priming call) */
    uint64_t synthesize; /* gain, inverse rFFT, overlap-add, int16 output */
    /* stack peak of nsn_model_step in bytes, measured by painting the stack below the stack
     * pointer before the step and scanning it after (Cortex-M builds with -DNSN_STACK_PROBE;
     * else 0) */
    uint32_t network_stack;
} nsn_stream_counts;

/* All state of one stream; allocate it statically. Read-only for the caller. */
typedef struct
{
    nsn_frontend_state frontend;
    nsn_model_t model;
    int8_t features[NSN_NUM_FEATURES]; /* network input of the last step */
    int8_t mask[NSN_NUM_BINS];         /* network output of the last step */
    uint32_t steps;                    /* network steps since init or reset */
    int last_exit;                     /* exit of the last step, -1 before the first */
    nsn_stream_counts counts;          /* of the last nsn_stream_process call */
} nsn_stream_t;

/* Starts a stream: empty analysis window, overlap-add buffer and GRU states at zero. Also
 * starts the board's counter (nsn_port_init). */
nsn_stream_status nsn_stream_init(nsn_stream_t *s);

/* Starts a new recording on an initialised stream (same as nsn_stream_init). */
nsn_stream_status nsn_stream_reset(nsn_stream_t *s);

/*
 * Pushes 160 input samples and writes 160 output samples (int16, full scale 32768), running
 * the network at exit `exit_id` (an nsn_exit_id) on the frame the input completes. Returns
 * NSN_STREAM_OK, or NSN_STREAM_PRIMING on the first call of a stream.
 */
nsn_stream_status nsn_stream_process(nsn_stream_t *s, const int16_t in[NSN_STREAM_HOP],
                                     int exit_id, int16_t out[NSN_STREAM_HOP]);

/* End of a recording: the last NSN_FRONTEND_TAIL (win - hop; 160 by default) samples of
 * the overlap-add tail (zeros after that). */
void nsn_stream_flush(nsn_stream_t *s, int16_t out[NSN_FRONTEND_TAIL]);

/* nsn_exit_id of an exit name ("final", ...), or -1. */
int nsn_stream_exit_id(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* NSN_STREAM_H */
