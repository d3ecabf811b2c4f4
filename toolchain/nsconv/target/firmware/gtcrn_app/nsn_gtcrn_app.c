/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_gtcrn_app: streams a wav file through GTCRN on the core -- the C front end
 * (nsn_gtcrn_frontend.h) and the generated quantized network (nsn_model.h) -- one hop of
 * NSN_GTCRN_HOP (256) samples at a time, as an audio callback would, writes the enhanced wav
 * and prints the cost of every stage. The same source builds for the boards (files over
 * semihosting, QEMU) and for the host (tests compare the two wavs byte for byte).
 *
 *   nsn_gtcrn_app IN.wav OUT.wav [--frames N] [--quiet]
 *
 * Alignment (docs/gtcrn-frontend.md): an input of L samples is pushed as H = ceil(L / 256)
 * hops (the last zero padded) plus one hop of zeros; every push runs the network; the first
 * push's output (the stream's one-hop delay) is dropped and L samples are kept, so OUT.wav
 * is aligned with IN.wav. --frames N cuts the input to 256 N samples.
 *
 * Standard output (counts in the unit of the header line):
 *   nsn_gtcrn_app: board B, unit U, hops H
 *   nsn_gtcrn_app: kernels PATH
 *   hop K analyze A quantize Q network N dequantize D synthesize S      (not with --quiet)
 *   summary hops H network mean M min LO max HI analyze A quantize Q dequantize D synthesize S
 * Built with -DNSN_STACK_PROBE (Cortex-M): "stack network peak BYTES" (deepest nsn_model_step).
 * Built with -DNSN_PROFILE_OPS: "nsn_gtcrn_app: model bytes N" (sizeof nsn_model_t),
 * "nsn_gtcrn_app: frontend bytes N" (sizeof nsn_gtcrn_frontend_state) and per op kind of the
 * network "ops kind KIND mean M" (per hop).
 * Exit status: 0 ok, 1 usage or file error, 2 processing error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_app_util.h" /* stack probe, nsn_u64_text */
#include "nsn_gtcrn_frontend.h"
#include "nsn_gtcrn_io.h"
#include "nsn_model.h"
#include "nsn_port.h"
#include "nsn_wav.h"

#define NUM_STAGES 5
enum { ST_ANALYZE, ST_QUANTIZE, ST_NETWORK, ST_DEQUANTIZE, ST_SYNTHESIZE };
static const char *const g_stage_names[NUM_STAGES] = {"analyze", "quantize", "network",
                                                      "dequantize", "synthesize"};


#ifdef NSN_PROFILE_OPS
static uint64_t g_op_total[NSN_NUM_OP_KINDS];
static uint64_t g_op_t0;

void nsn_profile_op_begin(nsn_op_kind kind)
{
    (void)kind;
    g_op_t0 = nsn_port_instr_begin();
}

void nsn_profile_op_end(nsn_op_kind kind)
{
    const uint64_t n = nsn_port_instr_end(g_op_t0);
    if ((unsigned)kind < (unsigned)NSN_NUM_OP_KINDS)
    {
        g_op_total[kind] += n;
    }
}
#endif

typedef struct
{
    nsn_gtcrn_frontend_state frontend;
    nsn_model_t model;
    float features[NSN_GTCRN_FEATURES];
    NSN_GTCRN_IN_CTYPE features_q[NSN_GTCRN_FEATURES];
    NSN_GTCRN_OUT_CTYPE mask_q[NSN_GTCRN_MASK];
    float mask[NSN_GTCRN_MASK];
} gtcrn_stream;

typedef struct
{
    uint64_t total[NUM_STAGES];
    uint64_t step[NUM_STAGES];
    uint64_t network_min;
    uint64_t network_max;
    uint32_t stack_peak;
    uint32_t hops;
} gtcrn_stats;

static gtcrn_stream g_s;
static const nsn_gtcrn_qparams g_in_q = {NSN_GTCRN_IN_SCALE, NSN_GTCRN_IN_ZERO_POINT};
static const nsn_gtcrn_qparams g_out_q = {NSN_GTCRN_OUT_SCALE, NSN_GTCRN_OUT_ZERO_POINT};

/* One hop: analyse, quantise, network step, dequantise, synthesise; counts per stage. */
static int process_hop(const int16_t in[NSN_GTCRN_HOP], int16_t out[NSN_GTCRN_HOP],
                       gtcrn_stats *st)
{
    uint64_t t0;
    uintptr_t top;
    nsn_status ns;

    t0 = nsn_port_instr_begin();
    (void)nsn_gtcrn_analyze_s16(&g_s.frontend, in, g_s.features);
    st->step[ST_ANALYZE] = nsn_port_instr_end(t0);
    t0 = nsn_port_instr_begin();
    NSN_GTCRN_QUANTIZE(g_s.features, NSN_GTCRN_FEATURES, &g_in_q, g_s.features_q);
    st->step[ST_QUANTIZE] = nsn_port_instr_end(t0);
    top = NSN_STACK_BEGIN();
    t0 = nsn_port_instr_begin();
    ns = nsn_model_step(&g_s.model, (const int8_t *)(const void *)g_s.features_q, 0,
                        (int8_t *)(void *)g_s.mask_q);
    st->step[ST_NETWORK] = nsn_port_instr_end(t0);
    {
        const uint32_t peak = NSN_STACK_END(top);
        st->stack_peak = peak > st->stack_peak ? peak : st->stack_peak;
    }
    if (ns != NSN_OK)
    {
        return -1;
    }
    t0 = nsn_port_instr_begin();
    NSN_GTCRN_DEQUANTIZE(g_s.mask_q, NSN_GTCRN_MASK, &g_out_q, g_s.mask);
    st->step[ST_DEQUANTIZE] = nsn_port_instr_end(t0);
    t0 = nsn_port_instr_begin();
    if (nsn_gtcrn_synthesize_s16(&g_s.frontend, g_s.mask, out) != NSN_GTCRN_OK)
    {
        return -1;
    }
    st->step[ST_SYNTHESIZE] = nsn_port_instr_end(t0);
    return 0;
}

static uint64_t mean(uint64_t total, uint32_t n)
{
    return n == 0 ? 0 : (total + n / 2u) / n;
}

static void account(gtcrn_stats *st, uint32_t k, int quiet)
{
    char b[NUM_STAGES][21];
    int i;
    const uint64_t net = st->step[ST_NETWORK];
    for (i = 0; i < NUM_STAGES; ++i)
    {
        st->total[i] += st->step[i];
    }
    st->network_min = st->hops == 0 || net < st->network_min ? net : st->network_min;
    st->network_max = st->hops == 0 || net > st->network_max ? net : st->network_max;
    st->hops += 1;
    if (!quiet)
    {
        printf("hop %lu analyze %s quantize %s network %s dequantize %s synthesize %s\n",
               (unsigned long)k, nsn_u64_text(st->step[0], b[0]), nsn_u64_text(st->step[1], b[1]),
               nsn_u64_text(st->step[2], b[2]), nsn_u64_text(st->step[3], b[3]),
               nsn_u64_text(st->step[4], b[4]));
    }
}

static void print_summary(const gtcrn_stats *st)
{
    char b[8][21];
    const uint32_t n = st->hops;
    printf("summary hops %lu network mean %s min %s max %s analyze %s quantize %s "
           "dequantize %s synthesize %s\n",
           (unsigned long)n, nsn_u64_text(mean(st->total[ST_NETWORK], n), b[0]),
           nsn_u64_text(st->network_min, b[1]), nsn_u64_text(st->network_max, b[2]),
           nsn_u64_text(mean(st->total[ST_ANALYZE], n), b[3]),
           nsn_u64_text(mean(st->total[ST_QUANTIZE], n), b[4]),
           nsn_u64_text(mean(st->total[ST_DEQUANTIZE], n), b[5]),
           nsn_u64_text(mean(st->total[ST_SYNTHESIZE], n), b[6]));
#if defined(NSN_STACK_PROBE) && defined(__arm__)
    printf("stack network peak %lu\n", (unsigned long)st->stack_peak);
#endif
#ifdef NSN_PROFILE_OPS
    {
        int kind;
        for (kind = 0; kind < NSN_NUM_OP_KINDS; ++kind)
        {
            printf("ops kind %s mean %s\n", nsn_op_kind_names[kind],
                   nsn_u64_text(mean(g_op_total[kind], n), b[7]));
        }
    }
#endif
    (void)g_stage_names;
}

typedef struct
{
    const char *in_path;
    const char *out_path;
    uint32_t max_frames;
    int quiet;
} app_args;

static int parse_args(int argc, char **argv, app_args *a)
{
    int i;
    memset(a, 0, sizeof *a);
    for (i = 1; i < argc; ++i)
    {
        if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc)
        {
            char *end;
            const unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || v == 0 || v > 0xFFFFFFul)
            {
                return -1;
            }
            a->max_frames = (uint32_t)v;
        }
        else if (strcmp(argv[i], "--quiet") == 0)
        {
            a->quiet = 1;
        }
        else if (argv[i][0] == '-' && argv[i][1] == '-')
        {
            return -1;
        }
        else if (a->in_path == NULL)
        {
            a->in_path = argv[i];
        }
        else if (a->out_path == NULL)
        {
            a->out_path = argv[i];
        }
        else
        {
            return -1;
        }
    }
    return a->in_path != NULL && a->out_path != NULL ? 0 : -1;
}

/* Streams `hops` hops of `in` (plus the zero hop) into `out`; 0 ok, 1 file, 2 processing. */
static int stream(FILE *in, FILE *out, uint32_t left, uint32_t hops, int quiet)
{
    static gtcrn_stats st;
    uint32_t to_write = left;
    uint32_t k;
    for (k = 0; k <= hops; ++k)
    {
        int16_t hop_in[NSN_GTCRN_HOP];
        int16_t hop_out[NSN_GTCRN_HOP];
        (void)nsn_wav_read(in, &left, hop_in, NSN_GTCRN_HOP); /* zeros past the end */
        if (process_hop(hop_in, hop_out, &st) != 0)
        {
            fprintf(stderr, "nsn_gtcrn_app: hop %lu: processing failed\n", (unsigned long)k);
            return 2;
        }
        account(&st, k, quiet);
        if (k > 0)
        {
            const uint32_t n = to_write < NSN_GTCRN_HOP ? to_write : NSN_GTCRN_HOP;
            if (nsn_wav_write(out, hop_out, n) != 0)
            {
                fprintf(stderr, "nsn_gtcrn_app: write error\n");
                return 1;
            }
            to_write -= n;
        }
    }
    print_summary(&st);
    return 0;
}

/* Opens IN.wav and OUT.wav (headers written; *left samples kept, *hops hops); 0 ok, 1 error. */
static int open_files(const app_args *a, FILE **in, FILE **out, uint32_t *left, uint32_t *hops)
{
    const char *error = "";
    long samples;
    if ((*in = fopen(a->in_path, "rb")) == NULL)
    {
        fprintf(stderr, "nsn_gtcrn_app: %s: cannot open\n", a->in_path);
        return 1;
    }
    samples = nsn_wav_read_header(*in, &error);
    if (samples <= 0)
    {
        fprintf(stderr, "nsn_gtcrn_app: %s: %s\n", a->in_path, samples < 0 ? error : "no samples");
        fclose(*in);
        return 1;
    }
    *left = (uint32_t)samples;
    *hops = (*left + NSN_GTCRN_HOP - 1u) / NSN_GTCRN_HOP;
    if (a->max_frames != 0 && *hops > a->max_frames)
    {
        *hops = a->max_frames;
        *left = *hops * NSN_GTCRN_HOP;
    }
    *out = fopen(a->out_path, "wb");
    if (*out == NULL || nsn_wav_write_header(*out, *left) != 0)
    {
        fprintf(stderr, "nsn_gtcrn_app: %s: cannot write\n", a->out_path);
        fclose(*in);
        if (*out != NULL)
        {
            fclose(*out);
        }
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    app_args a;
    FILE *in;
    FILE *out;
    uint32_t left, hops;
    int status;

    if (parse_args(argc, argv, &a) != 0)
    {
        fprintf(stderr, "usage: nsn_gtcrn_app IN.wav OUT.wav [--frames N] [--quiet]\n");
        return 1;
    }
    nsn_port_init();
    if (nsn_gtcrn_init(&g_s.frontend) != NSN_GTCRN_OK || nsn_model_init(&g_s.model) != NSN_OK ||
        nsn_gtcrn_check_qparams(&g_in_q, NSN_GTCRN_IN_BITS) != NSN_GTCRN_OK ||
        nsn_gtcrn_check_qparams(&g_out_q, NSN_GTCRN_OUT_BITS) != NSN_GTCRN_OK)
    {
        fprintf(stderr, "nsn_gtcrn_app: initialisation failed (a build with fused "
                        "multiply-add, or too little kernel scratch?)\n");
        return 2;
    }
    if (open_files(&a, &in, &out, &left, &hops) != 0)
    {
        return 1;
    }
    printf("nsn_gtcrn_app: board %s, unit %s, hops %lu\n", nsn_port_board_name(),
           nsn_port_count_unit(), (unsigned long)hops + 1u);
    printf("nsn_gtcrn_app: kernels %s\n", nsn_kernels_path());
#ifdef NSN_PROFILE_OPS
    printf("nsn_gtcrn_app: model bytes %lu\n", (unsigned long)sizeof(nsn_model_t));
    printf("nsn_gtcrn_app: frontend bytes %lu\n", (unsigned long)sizeof(nsn_gtcrn_frontend_state));
#endif
    status = stream(in, out, left, hops, a.quiet);
    fclose(in);
    if (fclose(out) != 0 && status == 0)
    {
        status = 1;
    }
    return status;
}
