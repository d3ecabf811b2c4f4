/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_app: streams a wav file through nsn_stream (front end + early-exit network) one hop
 * (NSN_STREAM_HOP samples; 160 for the default front end, whose numbers this comment uses)
 * at a time, as an audio callback would, writes the enhanced wav and prints the cost of
 * every network step. The same source builds for the boards (files over
 * semihosting, QEMU) and for the host (tests compare the two byte for byte).
 *
 *   nsn_app IN.wav OUT.wav [--exit NAME | --schedule SPEC] [--frames N]
 *           [--masks FILE] [--features FILE] [--quiet]
 *
 *   --exit NAME      run every frame at this exit (default: the last exit)
 *   --schedule SPEC  exit per frame, cycling: NAME[:N],NAME[:N],... runs N frames (default 1)
 *                    of each exit in turn, e.g. "gru1,gru2,fc2,final" or "gru1:50,final:50"
 *   --frames N       stop after N network frames (the input is cut to 160 N samples)
 *   --masks FILE     write the int8 mask of every frame (frames x 161 bytes)
 *   --features FILE  write the int8 features of every frame (frames x 161 bytes)
 *   --quiet          no per-frame lines
 *
 * OUT.wav has as many samples as the (cut) input and is aligned with it: the stream's
 * one-hop delay is removed by dropping the priming hop's output, and frame k's output lands
 * at samples [160 k, 160 k + 160) as in the batch featurelib istft.
 *
 * Standard output, one line per network frame k (values in the unit of the header line):
 *   step K exit NAME network N analyze A synthesize S
 * then per exit: summary exit NAME frames F network mean M min LO max HI frontend mean FE
 * Built with -DNSN_STACK_PROBE (Cortex-M): also per exit
 *   stack exit NAME network peak BYTES      (deepest nsn_model_step stack use, in bytes)
 * Built with -DNSN_PROFILE_OPS: after the header "nsn_app: model bytes N" (sizeof nsn_model_t)
 * and "nsn_app: frontend bytes N" (sizeof nsn_frontend_state, the front end's static state),
 * and per exit and op kind (nsn_op_kind, in the unit of the header line):
 *   ops exit NAME kind KIND mean M
 * Exit status: 0 ok, 1 usage or file error, 2 processing error.
 *
 * On the boards the command line comes over semihosting: at most 255 characters including
 * the program path, split at spaces; use short relative paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_app_util.h" /* nsn_u64_text */
#include "nsn_port.h"
#include "nsn_stream.h"
#include "nsn_wav.h"

/* The output alignment below (drop the priming hop's output, one hop out per frame) is that
 * of front ends whose window is two hops and whose first frame is dropped, as featurelib
 * and every nsNet2 layout; nsconv export refuses other front ends for firmware targets. */
#if NSN_FRONTEND_TAIL != NSN_FRONTEND_HOP || !NSN_FRONTEND_DROP_FIRST
#error "nsn_app needs a front end with win = 2 hop and the first frame dropped"
#endif

#define MAX_SCHEDULE 32

typedef struct
{
    int exit_id[MAX_SCHEDULE];
    uint32_t frames[MAX_SCHEDULE];
    int length;
} schedule_t;

typedef struct
{
    uint32_t frames;
    uint64_t network_total;
    uint64_t network_min;
    uint64_t network_max;
    uint64_t frontend_total;
    uint32_t stack_peak;
#ifdef NSN_PROFILE_OPS
    uint64_t op_total[NSN_NUM_OP_KINDS];
#endif
} exit_stats_t;

static nsn_stream_t g_stream;

#ifdef NSN_PROFILE_OPS
/* Per-op counts of the current network step (hooks called by nsn_model_step). */
static const char *const g_op_names[NSN_NUM_OP_KINDS] = {
    "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC", "TANH", "QUANTIZE", "COPY"};
static uint64_t g_op_step[NSN_NUM_OP_KINDS];
static uint64_t g_op_t0;

void nsn_profile_op_begin(nsn_op_kind kind)
{
    (void)kind;
    g_op_t0 = nsn_port_instr_begin();
}

void nsn_profile_op_end(nsn_op_kind kind)
{
    const uint64_t n = nsn_port_instr_end(g_op_t0);
    const unsigned k = (unsigned)kind;
    if (k < (unsigned)NSN_NUM_OP_KINDS)
    {
        g_op_step[k] += n;
    }
}
#endif

static void usage(void)
{
    fprintf(stderr, "usage: nsn_app IN.wav OUT.wav [--exit NAME | --schedule NAME[:N],...] "
                    "[--frames N] [--masks FILE] [--features FILE] [--quiet]\n");
}

static void list_exits(void)
{
    int k;
    fprintf(stderr, "exits:");
    for (k = 0; k < NSN_NUM_EXITS; ++k)
    {
        fprintf(stderr, " %s", nsn_exit_names[k]);
    }
    fprintf(stderr, "\n");
}

static int parse_count(const char *text, uint32_t *value)
{
    char *end;
    unsigned long v;
    if (text == NULL || *text < '0' || *text > '9')
    {
        return -1;
    }
    v = strtoul(text, &end, 10);
    if (*end != '\0' || v == 0 || v > 0xFFFFFFFFul)
    {
        return -1;
    }
    *value = (uint32_t)v;
    return 0;
}

/* "NAME[:N],NAME[:N],..." -> schedule; modifies spec. */
static int parse_schedule(char *spec, schedule_t *s)
{
    char *item = spec;
    s->length = 0;
    while (item != NULL && *item != '\0')
    {
        char *next = strchr(item, ',');
        char *colon;
        uint32_t n = 1;
        if (next != NULL)
        {
            *next++ = '\0';
        }
        colon = strchr(item, ':');
        if (colon != NULL)
        {
            *colon++ = '\0';
            if (parse_count(colon, &n) != 0)
            {
                fprintf(stderr, "nsn_app: bad frame count '%s' in the schedule\n", colon);
                return -1;
            }
        }
        if (s->length == MAX_SCHEDULE)
        {
            fprintf(stderr, "nsn_app: more than %d schedule entries\n", MAX_SCHEDULE);
            return -1;
        }
        s->exit_id[s->length] = nsn_stream_exit_id(item);
        if (s->exit_id[s->length] < 0)
        {
            fprintf(stderr, "nsn_app: unknown exit '%s'\n", item);
            list_exits();
            return -1;
        }
        s->frames[s->length] = n;
        s->length += 1;
        item = next;
    }
    if (s->length == 0)
    {
        fprintf(stderr, "nsn_app: empty schedule\n");
        return -1;
    }
    return 0;
}

/* Exit of network frame k under the cyclic schedule. */
static int schedule_exit(const schedule_t *s, uint32_t k)
{
    uint64_t period = 0;
    uint64_t pos;
    int i;
    for (i = 0; i < s->length; ++i)
    {
        period += s->frames[i];
    }
    pos = (uint64_t)k % period;
    for (i = 0; i < s->length; ++i)
    {
        if (pos < s->frames[i])
        {
            return s->exit_id[i];
        }
        pos -= s->frames[i];
    }
    return s->exit_id[s->length - 1]; /* not reached */
}

static FILE *open_file(const char *path, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (f == NULL)
    {
        fprintf(stderr, "nsn_app: %s: cannot open\n", path);
    }
    return f;
}

static void print_summary(const exit_stats_t stats[NSN_NUM_EXITS])
{
    int k;
    for (k = 0; k < NSN_NUM_EXITS; ++k)
    {
        const exit_stats_t *e = &stats[k];
        char b1[21], b2[21], b3[21], b4[21];
        if (e->frames == 0)
        {
            continue;
        }
        printf("summary exit %s frames %lu network mean %s min %s max %s frontend mean %s\n",
               nsn_exit_names[k], (unsigned long)e->frames,
               nsn_u64_text((e->network_total + e->frames / 2u) / e->frames, b1),
               nsn_u64_text(e->network_min, b2), nsn_u64_text(e->network_max, b3),
               nsn_u64_text((e->frontend_total + e->frames / 2u) / e->frames, b4));
#if defined(NSN_STACK_PROBE) && defined(__arm__)
        printf("stack exit %s network peak %lu\n", nsn_exit_names[k],
               (unsigned long)e->stack_peak);
#endif
#ifdef NSN_PROFILE_OPS
        {
            int kind;
            for (kind = 0; kind < NSN_NUM_OP_KINDS; ++kind)
            {
                printf("ops exit %s kind %s mean %s\n", nsn_exit_names[k], g_op_names[kind],
                       nsn_u64_text((e->op_total[kind] + e->frames / 2u) / e->frames, b1));
            }
        }
#endif
    }
}

int main(int argc, char **argv)
{
    static schedule_t schedule;
    static exit_stats_t stats[NSN_NUM_EXITS];
    const char *in_path = NULL;
    const char *out_path = NULL;
    const char *masks_path = NULL;
    const char *features_path = NULL;
    const char *error = "";
    char *schedule_spec = NULL;
    uint32_t max_frames = 0;
    int quiet = 0;
    FILE *in = NULL;
    FILE *out = NULL;
    FILE *masks = NULL;
    FILE *features = NULL;
    long samples;
    uint32_t left, to_write, frames, k;
    int status = 0;
    int i;

    for (i = 1; i < argc; ++i)
    {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        if (strcmp(a, "--exit") == 0 && has_value)
        {
            schedule_spec = argv[++i];
            if (strchr(schedule_spec, ',') != NULL || strchr(schedule_spec, ':') != NULL)
            {
                fprintf(stderr, "nsn_app: --exit takes one exit name\n");
                return 1;
            }
        }
        else if (strcmp(a, "--schedule") == 0 && has_value)
        {
            schedule_spec = argv[++i];
        }
        else if (strcmp(a, "--frames") == 0 && has_value)
        {
            if (parse_count(argv[++i], &max_frames) != 0)
            {
                fprintf(stderr, "nsn_app: --frames needs a positive number\n");
                return 1;
            }
        }
        else if (strcmp(a, "--masks") == 0 && has_value)
        {
            masks_path = argv[++i];
        }
        else if (strcmp(a, "--features") == 0 && has_value)
        {
            features_path = argv[++i];
        }
        else if (strcmp(a, "--quiet") == 0)
        {
            quiet = 1;
        }
        else if (a[0] == '-' && a[1] == '-')
        {
            usage();
            return 1;
        }
        else if (in_path == NULL)
        {
            in_path = a;
        }
        else if (out_path == NULL)
        {
            out_path = a;
        }
        else
        {
            usage();
            return 1;
        }
    }
    if (in_path == NULL || out_path == NULL)
    {
        usage();
        return 1;
    }
    if (schedule_spec != NULL)
    {
        if (parse_schedule(schedule_spec, &schedule) != 0)
        {
            return 1;
        }
    }
    else
    {
        schedule.exit_id[0] = NSN_NUM_EXITS - 1;
        schedule.frames[0] = 1;
        schedule.length = 1;
    }

    if (nsn_stream_init(&g_stream) != NSN_STREAM_OK)
    {
        fprintf(stderr, "nsn_app: nsn_stream_init failed (a build with fused multiply-add?)\n");
        return 2;
    }

    in = open_file(in_path, "rb");
    if (in == NULL)
    {
        return 1;
    }
    samples = nsn_wav_read_header(in, &error);
    if (samples < 0)
    {
        fprintf(stderr, "nsn_app: %s: %s\n", in_path, error);
        fclose(in);
        return 1;
    }
    if (samples == 0)
    {
        fprintf(stderr, "nsn_app: %s: no samples\n", in_path);
        fclose(in);
        return 1;
    }
    /* featurelib: K = ceil(samples / 160) frames; the first hop only primes the window. */
    left = (uint32_t)samples;
    frames = (left + NSN_STREAM_HOP - 1u) / NSN_STREAM_HOP;
    if (max_frames != 0 && frames > max_frames)
    {
        frames = max_frames;
        left = frames * NSN_STREAM_HOP;
    }
    to_write = left;

    out = open_file(out_path, "wb");
    if (out == NULL || nsn_wav_write_header(out, to_write) != 0)
    {
        status = 1;
    }
    if (status == 0 && masks_path != NULL && (masks = open_file(masks_path, "wb")) == NULL)
    {
        status = 1;
    }
    if (status == 0 && features_path != NULL &&
        (features = open_file(features_path, "wb")) == NULL)
    {
        status = 1;
    }
    if (status == 0)
    {
        int e;
        printf("nsn_app: board %s, unit %s, frames %lu, exits", nsn_port_board_name(),
               nsn_port_count_unit(), (unsigned long)frames);
        for (e = 0; e < NSN_NUM_EXITS; ++e)
        {
            printf(" %s", nsn_exit_names[e]);
        }
        printf("\n");
        printf("nsn_app: kernels %s\n", nsn_kernels_path());
#ifdef NSN_PROFILE_OPS
        printf("nsn_app: model bytes %lu\n", (unsigned long)sizeof(nsn_model_t));
        printf("nsn_app: frontend bytes %lu\n", (unsigned long)sizeof(nsn_frontend_state));
#endif
    }

    /* Call m = 0 .. frames: call m >= 1 completes frame m - 1 and returns its first hop of
     * output, batch samples [160 (m - 1), 160 m). */
    for (k = 0; status == 0 && k <= frames; ++k)
    {
        int16_t hop_in[NSN_STREAM_HOP];
        int16_t hop_out[NSN_STREAM_HOP];
        const int exit_id = k == 0 ? schedule.exit_id[0] : schedule_exit(&schedule, k - 1u);
        nsn_stream_status st;

        (void)nsn_wav_read(in, &left, hop_in, NSN_STREAM_HOP);
#ifdef NSN_PROFILE_OPS
        memset(g_op_step, 0, sizeof g_op_step);
#endif
        st = nsn_stream_process(&g_stream, hop_in, exit_id, hop_out);
        if (st != NSN_STREAM_OK && st != NSN_STREAM_PRIMING)
        {
            fprintf(stderr, "nsn_app: frame %lu: nsn_stream_process failed (%d)\n",
                    (unsigned long)(k - 1u), (int)st);
            status = 2;
            break;
        }
        if (k == 0)
        {
            continue; /* priming: no frame, and the output is the stream's one-hop delay */
        }
        {
            const uint32_t n = to_write < NSN_STREAM_HOP ? to_write : NSN_STREAM_HOP;
            const nsn_stream_counts *c = &g_stream.counts;
            exit_stats_t *e = &stats[exit_id];
            if (nsn_wav_write(out, hop_out, n) != 0 ||
                (masks != NULL && fwrite(g_stream.mask, 1, NSN_NUM_BINS, masks) != NSN_NUM_BINS) ||
                (features != NULL &&
                 fwrite(g_stream.features, 1, NSN_NUM_FEATURES, features) != NSN_NUM_FEATURES))
            {
                fprintf(stderr, "nsn_app: write error\n");
                status = 1;
                break;
            }
            to_write -= n;
            if (e->frames == 0 || c->network < e->network_min)
            {
                e->network_min = c->network;
            }
            if (e->frames == 0 || c->network > e->network_max)
            {
                e->network_max = c->network;
            }
            if (c->network_stack > e->stack_peak)
            {
                e->stack_peak = c->network_stack;
            }
#ifdef NSN_PROFILE_OPS
            {
                int kind;
                for (kind = 0; kind < NSN_NUM_OP_KINDS; ++kind)
                {
                    e->op_total[kind] += g_op_step[kind];
                }
            }
#endif
            e->frames += 1;
            e->network_total += c->network;
            e->frontend_total += c->analyze + c->synthesize;
            if (!quiet)
            {
                char b1[21], b2[21], b3[21];
                printf("step %lu exit %s network %s analyze %s synthesize %s\n",
                       (unsigned long)(k - 1u), nsn_exit_names[exit_id], nsn_u64_text(c->network, b1),
                       nsn_u64_text(c->analyze, b2), nsn_u64_text(c->synthesize, b3));
            }
        }
    }

    if (status == 0)
    {
        print_summary(stats);
    }
    fclose(in);
    if (out != NULL && fclose(out) != 0 && status == 0)
    {
        fprintf(stderr, "nsn_app: %s: write error\n", out_path);
        status = 1;
    }
    if (masks != NULL && fclose(masks) != 0 && status == 0)
    {
        status = 1;
    }
    if (features != NULL && fclose(features) != 0 && status == 0)
    {
        status = 1;
    }
    return status;
}
