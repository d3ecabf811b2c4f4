/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for GTCRN's C front end (nsn_gtcrn_frontend.h), built for the host and for the
 * QEMU boards (file I/O via semihosting there). The network is replaced by a fixed mask
 * pattern read from a file, fed through the API the real core's runner uses (quantize the
 * features, dequantize the network's output, synthesise). Outputs are raw little-endian
 * arrays that tests/test_gtcrn_frontend_c.py compares with numpy and across targets.
 *
 *   gtcrn_harness stream IN.s16 MASK IN_BITS IN_SCALE_BITS IN_ZP OUT_BITS OUT_SCALE_BITS OUT_ZP
 *                 [f32]
 *       IN.s16: mono 16 kHz int16 samples; pushed as H = ceil(samples / 256) hops (the last
 *       zero padded). MASK: H frames of NSN_GTCRN_MASK int8 (OUT_BITS 8) or int16 (16) values,
 *       the network's output quantized with OUT_*. Writes
 *         feat.f32 (H x 771 float features), featq.bin (H x 771, int8 or int16 by IN_*),
 *         out.f32 and out.s16 (256 (H + 1) samples: H hops and the flush).
 *       f32: push sample / 32768 through the float API instead of the int16 one.
 *       Scales are float32 bit patterns in hex (exact on every C library), e.g. 0x3d800000.
 *   gtcrn_harness quantize IN.f32 BITS SCALE_BITS ZP
 *       quant.bin: nsn_gtcrn_quantize_s8/_s16 of each value.
 *   gtcrn_harness sweep BITS SCALE_BITS ZP STRIDE
 *       nsn_gtcrn_quantize_s8/_s16 of every float bit pattern k * STRIDE + (k % 7) (STRIDE 1:
 *       all 2^32) against reference_quantize below; prints "sweep N values, M differ".
 *   gtcrn_harness api
 *       Checks the call-sequence and argument errors; prints "api ok".
 * Prints the cost per hop of each stage (instructions on the boards under -icount).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_gtcrn_frontend.h"
#include "nsn_port.h"

#define FAIL(...)                                                                                  \
    do                                                                                             \
    {                                                                                              \
        fprintf(stderr, "gtcrn_harness: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        exit(2);                                                                                   \
    } while (0)

static FILE *open_or_die(const char *path, const char *mode)
{
    FILE *f = fopen(path, mode);
    if (f == NULL)
    {
        FAIL("cannot open %s", path);
    }
    return f;
}

static void write_or_die(FILE *f, const void *data, size_t size, size_t count)
{
    if (fwrite(data, size, count, f) != count)
    {
        FAIL("write failed");
    }
}

static void read_or_die(FILE *f, void *data, size_t size, size_t count, const char *what)
{
    if (fread(data, size, count, f) != count)
    {
        FAIL("%s: short read", what);
    }
}

static float parse_float_bits(const char *text)
{
    const uint32_t bits = (uint32_t)strtoul(text, NULL, 16);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static nsn_gtcrn_qparams parse_qparams(const char *scale, const char *zero_point, int bits)
{
    nsn_gtcrn_qparams q;
    q.scale = parse_float_bits(scale);
    q.zero_point = (int32_t)strtol(zero_point, NULL, 10);
    if (nsn_gtcrn_check_qparams(&q, bits) != NSN_GTCRN_OK)
    {
        FAIL("bad quantisation %s %s for int%d", scale, zero_point, bits);
    }
    return q;
}

static long file_size(FILE *f)
{
    long size;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
    {
        FAIL("cannot size input");
    }
    return size;
}

typedef struct
{
    nsn_gtcrn_qparams in_q;
    nsn_gtcrn_qparams out_q;
    int in_bits;
    int out_bits;
    int use_float_api;
    uint64_t cost[4]; /* analyze, quantize, dequantize, synthesize */
} stream_cfg;

/* One hop up to the mask: analyse, quantise (as the core's input), dequantise the mask. */
static void analyze_hop(nsn_gtcrn_frontend_state *st, stream_cfg *cfg, const int16_t hop[],
                        FILE *masks, FILE *f_feat, FILE *f_featq, float mask[NSN_GTCRN_MASK])
{
    static float feat[NSN_GTCRN_FEATURES];
    static int16_t featq[NSN_GTCRN_FEATURES]; /* int8 values use the first half of the bytes */
    static int16_t maskq[NSN_GTCRN_MASK];
    const size_t in_width = cfg->in_bits == 8 ? 1 : 2;
    const size_t out_width = cfg->out_bits == 8 ? 1 : 2;
    uint64_t t0;

    if (cfg->use_float_api)
    {
        float hop_f32[NSN_GTCRN_HOP];
        unsigned n;
        for (n = 0; n < NSN_GTCRN_HOP; ++n)
        {
            hop_f32[n] = (float)hop[n] / 32768.0f;
        }
        (void)nsn_gtcrn_analyze_f32(st, hop_f32, feat);
    }
    else
    {
        t0 = nsn_port_instr_begin();
        (void)nsn_gtcrn_analyze_s16(st, hop, feat);
        cfg->cost[0] += nsn_port_instr_end(t0);
    }
    t0 = nsn_port_instr_begin();
    if (cfg->in_bits == 8)
    {
        nsn_gtcrn_quantize_s8(feat, NSN_GTCRN_FEATURES, &cfg->in_q, (int8_t *)featq);
    }
    else
    {
        nsn_gtcrn_quantize_s16(feat, NSN_GTCRN_FEATURES, &cfg->in_q, featq);
    }
    cfg->cost[1] += nsn_port_instr_end(t0);
    write_or_die(f_feat, feat, sizeof(float), NSN_GTCRN_FEATURES);
    write_or_die(f_featq, featq, in_width, NSN_GTCRN_FEATURES);

    read_or_die(masks, maskq, out_width, NSN_GTCRN_MASK, "mask file");
    t0 = nsn_port_instr_begin();
    if (cfg->out_bits == 8)
    {
        nsn_gtcrn_dequantize_s8((const int8_t *)maskq, NSN_GTCRN_MASK, &cfg->out_q, mask);
    }
    else
    {
        nsn_gtcrn_dequantize_s16(maskq, NSN_GTCRN_MASK, &cfg->out_q, mask);
    }
    cfg->cost[2] += nsn_port_instr_end(t0);
}

typedef struct
{
    FILE *pcm;
    FILE *masks;
    FILE *feat;
    FILE *featq;
    FILE *out;
    FILE *out16;
} stream_files;

static stream_files open_stream_files(const char *pcm, const char *masks)
{
    stream_files f;
    f.pcm = open_or_die(pcm, "rb");
    f.masks = open_or_die(masks, "rb");
    f.feat = open_or_die("feat.f32", "wb");
    f.featq = open_or_die("featq.bin", "wb");
    f.out = open_or_die("out.f32", "wb");
    f.out16 = open_or_die("out.s16", "wb");
    return f;
}

static void close_stream_files(stream_files *f)
{
    fclose(f->out16);
    fclose(f->out);
    fclose(f->featq);
    fclose(f->feat);
    fclose(f->masks);
    fclose(f->pcm);
}

static void print_costs(const stream_cfg *cfg, unsigned hops)
{
    static const char *const names[4] = {"analyze", "quantize", "dequantize", "synthesize"};
    unsigned i;
    printf("hops %u\n", hops);
    for (i = 0; i < 4; ++i)
    {
        printf("%s per hop: %lu %s\n", names[i], (unsigned long)(cfg->cost[i] / (hops ? hops : 1u)),
               nsn_port_count_unit());
    }
}

static int run_stream(int argc, char **argv)
{
    static nsn_gtcrn_frontend_state st;
    static nsn_gtcrn_frontend_state copy;
    stream_cfg cfg;
    stream_files f;
    unsigned hops;
    unsigned h;
    float y[NSN_GTCRN_HOP];
    int16_t y16[NSN_GTCRN_HOP];

    if (argc != 10 && !(argc == 11 && strcmp(argv[10], "f32") == 0))
    {
        FAIL("usage: stream IN.s16 MASK IN_BITS IN_SCALE_BITS IN_ZP OUT_BITS OUT_SCALE_BITS "
             "OUT_ZP [f32]");
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.in_bits = (int)strtol(argv[4], NULL, 10);
    cfg.in_q = parse_qparams(argv[5], argv[6], cfg.in_bits);
    cfg.out_bits = (int)strtol(argv[7], NULL, 10);
    cfg.out_q = parse_qparams(argv[8], argv[9], cfg.out_bits);
    cfg.use_float_api = argc == 11;
    if (nsn_gtcrn_init(&st) != NSN_GTCRN_OK)
    {
        FAIL("nsn_gtcrn_init failed: %d", (int)nsn_gtcrn_init(&st));
    }
    f = open_stream_files(argv[2], argv[3]);
    hops = (unsigned)((file_size(f.pcm) / 2 + NSN_GTCRN_HOP - 1) / NSN_GTCRN_HOP);
    for (h = 0; h < hops; ++h)
    {
        int16_t hop[NSN_GTCRN_HOP] = {0};
        static float mask[NSN_GTCRN_MASK];
        uint64_t t0;
        (void)fread(hop, sizeof hop[0], NSN_GTCRN_HOP, f.pcm); /* zeros past the end */
        analyze_hop(&st, &cfg, hop, f.masks, f.feat, f.featq, mask);
        copy = st; /* the same frame through the int16 output API */
        if (nsn_gtcrn_synthesize_s16(&copy, mask, y16) != NSN_GTCRN_OK)
        {
            FAIL("synthesize_s16 failed");
        }
        t0 = nsn_port_instr_begin();
        if (nsn_gtcrn_synthesize_f32(&st, mask, y) != NSN_GTCRN_OK)
        {
            FAIL("synthesize failed");
        }
        cfg.cost[3] += nsn_port_instr_end(t0);
        write_or_die(f.out, y, sizeof(float), NSN_GTCRN_HOP);
        write_or_die(f.out16, y16, sizeof(int16_t), NSN_GTCRN_HOP);
    }
    copy = st;
    nsn_gtcrn_flush_s16(&copy, y16);
    nsn_gtcrn_flush_f32(&st, y);
    write_or_die(f.out, y, sizeof(float), NSN_GTCRN_HOP);
    write_or_die(f.out16, y16, sizeof(int16_t), NSN_GTCRN_HOP);
    close_stream_files(&f);
    print_costs(&cfg, hops);
    return 0;
}

/* Reads a whole file of floats; returns the count. */
static size_t read_floats(const char *path, float **values)
{
    FILE *f = open_or_die(path, "rb");
    const long size = file_size(f);
    const size_t count = (size_t)size / sizeof(float);
    *values = malloc(count ? count * sizeof(float) : 1);
    if (*values == NULL)
    {
        FAIL("out of memory");
    }
    read_or_die(f, *values, sizeof(float), count, path);
    fclose(f);
    return count;
}

static int run_quantize(int argc, char **argv)
{
    float *x;
    size_t count;
    size_t i;
    int bits;
    nsn_gtcrn_qparams q;
    FILE *out;
    if (argc != 6)
    {
        FAIL("usage: quantize IN.f32 BITS SCALE_BITS ZP");
    }
    bits = (int)strtol(argv[3], NULL, 10);
    q = parse_qparams(argv[4], argv[5], bits);
    count = read_floats(argv[2], &x);
    out = open_or_die("quant.bin", "wb");
    for (i = 0; i < count; ++i)
    {
        if (bits == 8)
        {
            int8_t v;
            nsn_gtcrn_quantize_s8(x + i, 1, &q, &v);
            write_or_die(out, &v, 1, 1);
        }
        else
        {
            int16_t v;
            nsn_gtcrn_quantize_s16(x + i, 1, &q, &v);
            write_or_die(out, &v, 2, 1);
        }
    }
    fclose(out);
    free(x);
    return 0;
}

/*
 * TFLite QUANTIZE written the direct way (the front end's first implementation): clamp
 * x / scale to [-2^17, 2^17] (NaN to -2^17), truncate, add or subtract 1 when the fraction
 * (exact) reaches 1/2, add the zero point, clamp. The sweep holds the library to it.
 */
static int32_t reference_quantize(float x, const nsn_gtcrn_qparams *q, int bits)
{
    const int32_t hi = bits == 8 ? 127 : 32767;
    float y = x / q->scale;
    int32_t t;
    float frac;
    if (!(y >= -131072.0f))
    {
        y = -131072.0f;
    }
    else if (y > 131072.0f)
    {
        y = 131072.0f;
    }
    t = (int32_t)y;
    frac = y - (float)t;
    t += frac >= 0.5f ? 1 : (frac <= -0.5f ? -1 : 0);
    t += q->zero_point;
    return t < -hi - 1 ? -hi - 1 : (t > hi ? hi : t);
}

static int32_t library_quantize(float x, const nsn_gtcrn_qparams *q, int bits)
{
    int8_t v8;
    int16_t v16;
    if (bits == 8)
    {
        nsn_gtcrn_quantize_s8(&x, 1, q, &v8);
        return v8;
    }
    nsn_gtcrn_quantize_s16(&x, 1, q, &v16);
    return v16;
}

static int run_sweep(int argc, char **argv)
{
    const int bits = argc == 6 ? (int)strtol(argv[2], NULL, 10) : 0;
    nsn_gtcrn_qparams q;
    uint64_t stride;
    uint64_t k;
    unsigned long differ = 0;
    if (argc != 6)
    {
        FAIL("usage: sweep BITS SCALE_BITS ZP STRIDE");
    }
    q = parse_qparams(argv[3], argv[4], bits);
    stride = strtoull(argv[5], NULL, 10);
    if (stride == 0)
    {
        FAIL("stride must be positive");
    }
    for (k = 0; k * stride < (1ull << 32); ++k)
    {
        const uint32_t u = (uint32_t)(k * stride + (stride > 1 ? k % 7 : 0));
        float x;
        memcpy(&x, &u, sizeof x);
        if (library_quantize(x, &q, bits) != reference_quantize(x, &q, bits))
        {
            if (differ++ < 5)
            {
                printf("differ at 0x%08lx\n", (unsigned long)u);
            }
        }
    }
    printf("sweep %llu values, %lu differ\n", (unsigned long long)k, differ);
    return 0;
}

#define CHECK(cond)                                                                                \
    do                                                                                             \
    {                                                                                              \
        if (!(cond))                                                                               \
        {                                                                                          \
            FAIL("api check failed: %s (line %d)", #cond, __LINE__);                               \
        }                                                                                          \
    } while (0)

static int all_zero(const float *x, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; ++i)
    {
        if (x[i] != 0.0f)
        {
            return 0;
        }
    }
    return 1;
}

static void check_qparams_api(void)
{
    nsn_gtcrn_qparams q = {0.5f, 0};
    CHECK(nsn_gtcrn_check_qparams(&q, 8) == NSN_GTCRN_OK);
    CHECK(nsn_gtcrn_check_qparams(&q, 16) == NSN_GTCRN_OK);
    CHECK(nsn_gtcrn_check_qparams(&q, 32) == NSN_GTCRN_ERR_ARGUMENT);
    q.zero_point = 128;
    CHECK(nsn_gtcrn_check_qparams(&q, 8) == NSN_GTCRN_ERR_ARGUMENT);
    CHECK(nsn_gtcrn_check_qparams(&q, 16) == NSN_GTCRN_OK);
    q.zero_point = -32769;
    CHECK(nsn_gtcrn_check_qparams(&q, 16) == NSN_GTCRN_ERR_ARGUMENT);
    q.zero_point = 0;
    q.scale = 0.0f;
    CHECK(nsn_gtcrn_check_qparams(&q, 8) == NSN_GTCRN_ERR_ARGUMENT);
    q.scale = -1.0f;
    CHECK(nsn_gtcrn_check_qparams(&q, 8) == NSN_GTCRN_ERR_ARGUMENT);
    q.scale = parse_float_bits("7fc00000"); /* NaN */
    CHECK(nsn_gtcrn_check_qparams(&q, 8) == NSN_GTCRN_ERR_ARGUMENT);
    q.scale = parse_float_bits("7f800000"); /* inf */
    CHECK(nsn_gtcrn_check_qparams(&q, 16) == NSN_GTCRN_ERR_ARGUMENT);
}

static int run_api(void)
{
    static nsn_gtcrn_frontend_state st;
    static float feat[NSN_GTCRN_FEATURES];
    static float mask[NSN_GTCRN_MASK];
    int16_t hop[NSN_GTCRN_HOP];
    float y[NSN_GTCRN_HOP];
    unsigned n;

    check_qparams_api();
    CHECK(nsn_gtcrn_init(&st) == NSN_GTCRN_OK);
    /* synthesis before any analysis: a sequence error, zeros out */
    y[0] = 1.0f;
    CHECK(nsn_gtcrn_synthesize_f32(&st, mask, y) == NSN_GTCRN_ERR_SEQUENCE && all_zero(y, 256));
    for (n = 0; n < NSN_GTCRN_HOP; ++n)
    {
        hop[n] = (int16_t)((n * 2654435761u) >> 17);
        mask[n] = 1.0f;
    }
    CHECK(nsn_gtcrn_analyze_s16(&st, hop, feat) == NSN_GTCRN_OK);
    CHECK(st.hops == 1 && st.frame_pending);
    /* output hop 0 precedes the input: zeros, though the frame is not */
    CHECK(nsn_gtcrn_synthesize_f32(&st, mask, y) == NSN_GTCRN_OK && all_zero(y, 256));
    CHECK(!all_zero(st.overlap, NSN_GTCRN_HOP));
    CHECK(nsn_gtcrn_synthesize_f32(&st, mask, y) == NSN_GTCRN_ERR_SEQUENCE && all_zero(y, 256));
    CHECK(nsn_gtcrn_analyze_s16(&st, hop, feat) == NSN_GTCRN_OK);
    CHECK(nsn_gtcrn_synthesize_f32(&st, mask, y) == NSN_GTCRN_OK && !all_zero(y, 256));
    nsn_gtcrn_flush_f32(&st, y);
    CHECK(!all_zero(y, 256));
    nsn_gtcrn_flush_f32(&st, y);
    CHECK(all_zero(y, 256));
    /* the magnitude of silence is sqrt(eps), never 0 or NaN */
    memset(hop, 0, sizeof hop);
    CHECK(nsn_gtcrn_init(&st) == NSN_GTCRN_OK);
    CHECK(nsn_gtcrn_analyze_s16(&st, hop, feat) == NSN_GTCRN_OK);
    CHECK(feat[0] > 0.999e-6f && feat[0] < 1.001e-6f && feat[NSN_GTCRN_BINS] == 0.0f);
    printf("state %lu bytes\n", (unsigned long)sizeof st);
    printf("api ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    nsn_port_init();
    if (argc >= 2 && strcmp(argv[1], "stream") == 0)
    {
        return run_stream(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "quantize") == 0)
    {
        return run_quantize(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "sweep") == 0)
    {
        return run_sweep(argc, argv);
    }
    if (argc == 2 && strcmp(argv[1], "api") == 0)
    {
        return run_api();
    }
    FAIL("usage: gtcrn_harness stream ... | quantize ... | sweep ... | api");
}
