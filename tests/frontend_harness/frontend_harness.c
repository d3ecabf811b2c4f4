/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for the C front end, built for the host and for each QEMU board (file I/O via
 * semihosting there). Outputs are raw little-endian arrays that tests/test_frontend_c.py
 * compares with numpy and, byte for byte, across targets.
 *
 *   frontend_harness stream IN.wav MASKS.s8 FEAT_SCALE_BITS FEAT_ZP MASK_SCALE_BITS MASK_ZP [f32]
 *       (Numbers for the default front end; nsn_frontend_config.h gives the sizes.)
 *       Streams a 16 kHz mono 16-bit wav hop by hop through analysis (int16 API, or with f32
 *       the float API on sample / 32768), applies one int8 mask
 *       frame per analysed frame, synthesises, and writes (K = analysed frames):
 *         features.s8 (K x 161), logpow.f32 (K x 161), spectrum.f32 (K x 161 x [re, im]),
 *         out.f32 and out.s16 (160 (K + 1) samples: batch istft output, flush included;
 *         in general hop K + win - hop, plus one hop of priming zeros when the first frame
 *         is dropped).
 *       Scales are float32 bit patterns in hex (exact on every C library), e.g. 0x3d800000.
 *   frontend_harness rfft IN.f32
 *       For each 320-float frame: rfft.f32 (161 x [re, im]), irfft.f32 (320, = 320 * irfft).
 *   frontend_harness log10 IN.f32
 *       log10.f32: nsn_frontend_log10 of each value.
 *   frontend_harness quantize IN.f32 SCALE_BITS ZP
 *       quantize.s8: nsn_frontend_quantize of each value.
 *   frontend_harness api
 *       Checks argument validation, the priming hop and call-sequence errors; prints "api ok".
 *
 * Use short relative file names: on the boards the whole command line (program name included)
 * must fit the 255 characters that nsn_startup.c reads over semihosting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_frontend.h"
#include "nsn_port.h"

#define FAIL(...)                                                                                  \
    do                                                                                             \
    {                                                                                              \
        fprintf(stderr, "frontend_harness: " __VA_ARGS__);                                         \
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

static float parse_float_bits(const char *text)
{
    const unsigned long bits = strtoul(text, NULL, 16);
    const uint32_t bits32 = (uint32_t)bits;
    float value;
    memcpy(&value, &bits32, sizeof value);
    return value;
}

static uint32_t read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t read_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Positions f at the start of the PCM data of a 16 kHz mono 16-bit wav; returns its bytes. */
static uint32_t wav_open_data(FILE *f, const char *path)
{
    unsigned char header[12];
    int format_ok = 0;
    if (fread(header, 1, 12, f) != 12 || memcmp(header, "RIFF", 4) != 0 ||
        memcmp(header + 8, "WAVE", 4) != 0)
    {
        FAIL("%s: not a RIFF/WAVE file", path);
    }
    for (;;)
    {
        unsigned char chunk[8];
        uint32_t size;
        if (fread(chunk, 1, 8, f) != 8)
        {
            FAIL("%s: no data chunk", path);
        }
        size = read_le32(chunk + 4);
        if (memcmp(chunk, "fmt ", 4) == 0)
        {
            unsigned char fmt[16];
            if (size < 16 || fread(fmt, 1, 16, f) != 16)
            {
                FAIL("%s: short fmt chunk", path);
            }
            format_ok = read_le16(fmt) == 1 && read_le16(fmt + 2) == 1 &&
                        read_le32(fmt + 4) == NSN_FRONTEND_SAMPLE_RATE && read_le16(fmt + 14) == 16;
            if (!format_ok)
            {
                FAIL("%s: need mono 16-bit PCM at %d Hz", path, NSN_FRONTEND_SAMPLE_RATE);
            }
            if (fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR) != 0)
            {
                FAIL("%s: seek failed", path);
            }
        }
        else if (memcmp(chunk, "data", 4) == 0)
        {
            if (!format_ok)
            {
                FAIL("%s: data before fmt", path);
            }
            return size;
        }
        else if (fseek(f, (long)(size + (size & 1)), SEEK_CUR) != 0)
        {
            FAIL("%s: seek failed", path);
        }
    }
}

/* Reads up to one hop of samples, zero padding past the end; returns samples read. */
static unsigned read_hop(FILE *f, uint32_t *bytes_left, int16_t hop[NSN_FRONTEND_HOP])
{
    unsigned char raw[2 * NSN_FRONTEND_HOP];
    unsigned want = *bytes_left < sizeof raw ? (unsigned)*bytes_left : (unsigned)sizeof raw;
    unsigned got = (unsigned)fread(raw, 1, want, f);
    unsigned n;
    *bytes_left -= got;
    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        hop[n] = 2 * n + 1 < got ? (int16_t)read_le16(raw + 2 * n) : 0;
    }
    return got / 2;
}

static int run_stream(int argc, char **argv)
{
    nsn_frontend_state *st;
    nsn_frontend_qparams feature_q;
    nsn_frontend_qparams mask_q;
    FILE *wav;
    FILE *masks;
    FILE *f_features;
    FILE *f_logpow;
    FILE *f_spectrum;
    FILE *f_out;
    FILE *f_out16;
    uint32_t bytes_left;
    unsigned frames = 0;
    int input_done = 0;
    uint32_t hops = 0;
    uint32_t total_hops;
    uint64_t analyze_count = 0;
    uint64_t synth_count = 0;
    int use_float_api;

    if (argc != 8 && !(argc == 9 && strcmp(argv[8], "f32") == 0))
    {
        FAIL("usage: stream IN.wav MASKS.s8 FEAT_SCALE_BITS FEAT_ZP MASK_SCALE_BITS MASK_ZP [f32]");
    }
    use_float_api = argc == 9;
    feature_q.scale = parse_float_bits(argv[4]);
    feature_q.zero_point = (int32_t)strtol(argv[5], NULL, 10);
    mask_q.scale = parse_float_bits(argv[6]);
    mask_q.zero_point = (int32_t)strtol(argv[7], NULL, 10);

    st = malloc(sizeof *st);
    if (st == NULL)
    {
        FAIL("out of memory");
    }
    {
        const nsn_frontend_status status = nsn_frontend_init(st, &feature_q, &mask_q);
        if (status != NSN_FRONTEND_OK)
        {
            FAIL("nsn_frontend_init failed: %d", (int)status);
        }
    }
    wav = open_or_die(argv[2], "rb");
    bytes_left = wav_open_data(wav, argv[2]);
    /* featurelib's frame count before the drop: ceil((samples + win - hop) / hop) */
    total_hops = (bytes_left / 2u + NSN_FRONTEND_TAIL + NSN_FRONTEND_HOP - 1u) / NSN_FRONTEND_HOP;
    masks = open_or_die(argv[3], "rb");
    f_features = open_or_die("features.s8", "wb");
    f_logpow = open_or_die("logpow.f32", "wb");
    f_spectrum = open_or_die("spectrum.f32", "wb");
    f_out = open_or_die("out.f32", "wb");
    f_out16 = open_or_die("out.s16", "wb");

    /*
     * featurelib pads the input with zeros to K + 1 hops, K = ceil(samples / 160), and drops
     * the first frame: push hops until the hop that is entirely padding has been analysed
     * (in general ceil((samples + win - hop) / hop) hops).
     */
    while (!input_done)
    {
        int16_t hop[NSN_FRONTEND_HOP];
        int8_t features[NSN_FRONTEND_BINS];
        int8_t mask[NSN_FRONTEND_BINS];
        float out[NSN_FRONTEND_HOP];
        int16_t out16[NSN_FRONTEND_HOP];
        nsn_frontend_status status;
        uint64_t t0;
        unsigned k;

        (void)read_hop(wav, &bytes_left, hop);
        hops += 1;
        input_done = hops == total_hops; /* this hop completes the last frame */
        if (use_float_api)
        {
            float hop_f32[NSN_FRONTEND_HOP];
            unsigned n;
            for (n = 0; n < NSN_FRONTEND_HOP; ++n)
            {
                hop_f32[n] = (float)hop[n] / 32768.0f;
            }
            status = nsn_frontend_analyze_f32(st, hop_f32, features);
        }
        else
        {
            t0 = nsn_port_instr_begin();
            status = nsn_frontend_analyze_s16(st, hop, features);
            analyze_count += nsn_port_instr_end(t0);
        }
        if (status == NSN_FRONTEND_PRIMING)
        {
            continue;
        }
        if (status != NSN_FRONTEND_OK)
        {
            FAIL("analyze failed: %d", (int)status);
        }
        if (fread(mask, 1, sizeof mask, masks) != sizeof mask)
        {
            FAIL("%s: fewer mask frames than analysed frames (%u)", argv[3], frames + 1);
        }
        write_or_die(f_features, features, 1, sizeof features);
        write_or_die(f_logpow, st->log_power, sizeof(float), NSN_FRONTEND_BINS);
        for (k = 0; k < NSN_FRONTEND_BINS; ++k)
        {
            write_or_die(f_spectrum, &st->spectrum[k].re, sizeof(float), 1);
            write_or_die(f_spectrum, &st->spectrum[k].im, sizeof(float), 1);
        }
        /* Same frame, synthesised twice: float and int16 paths (state restored between). */
        {
            nsn_frontend_state *copy = malloc(sizeof *copy);
            if (copy == NULL)
            {
                FAIL("out of memory");
            }
            *copy = *st;
            if (nsn_frontend_synthesize_s16(copy, mask, out16) != NSN_FRONTEND_OK)
            {
                FAIL("synthesize_s16 failed");
            }
            free(copy);
        }
        t0 = nsn_port_instr_begin();
        status = nsn_frontend_synthesize_f32(st, mask, out);
        synth_count += nsn_port_instr_end(t0);
        if (status != NSN_FRONTEND_OK)
        {
            FAIL("synthesize failed: %d", (int)status);
        }
        write_or_die(f_out, out, sizeof(float), NSN_FRONTEND_HOP);
        write_or_die(f_out16, out16, sizeof(int16_t), NSN_FRONTEND_HOP);
        frames += 1;
    }
    {
        float out[NSN_FRONTEND_TAIL];
        int16_t out16[NSN_FRONTEND_TAIL];
        nsn_frontend_state *copy = malloc(sizeof *copy);
        if (copy == NULL)
        {
            FAIL("out of memory");
        }
        *copy = *st;
        nsn_frontend_flush_s16(copy, out16);
        free(copy);
        nsn_frontend_flush_f32(st, out);
        write_or_die(f_out, out, sizeof(float), NSN_FRONTEND_TAIL);
        write_or_die(f_out16, out16, sizeof(int16_t), NSN_FRONTEND_TAIL);
    }
    fclose(f_out16);
    fclose(f_out);
    fclose(f_spectrum);
    fclose(f_logpow);
    fclose(f_features);
    fclose(masks);
    fclose(wav);
    free(st);
    printf("frames %u\n", frames);
    printf("analyze per frame: %lu %s\n", (unsigned long)(analyze_count / (frames ? frames : 1u)),
           nsn_port_count_unit());
    printf("synthesize per frame: %lu %s\n", (unsigned long)(synth_count / (frames ? frames : 1u)),
           nsn_port_count_unit());
    return 0;
}

/* Reads a whole file of floats; returns the count. */
static size_t read_floats(const char *path, float **values)
{
    FILE *f = open_or_die(path, "rb");
    size_t capacity = 1024;
    size_t count = 0;
    float *data = malloc(capacity * sizeof *data);
    for (;;)
    {
        size_t got;
        if (data == NULL)
        {
            FAIL("out of memory");
        }
        got = fread(data + count, sizeof *data, capacity - count, f);
        count += got;
        if (count < capacity)
        {
            break;
        }
        capacity *= 2;
        data = realloc(data, capacity * sizeof *data);
    }
    fclose(f);
    *values = data;
    return count;
}

static int run_rfft(int argc, char **argv)
{
    float *in;
    size_t count;
    size_t frame;
    FILE *f_rfft;
    FILE *f_irfft;
    if (argc != 3)
    {
        FAIL("usage: rfft IN.f32");
    }
    count = read_floats(argv[2], &in);
    if (count % NSN_RFFT_N != 0)
    {
        FAIL("%s: not a whole number of %d-float frames", argv[2], NSN_RFFT_N);
    }
    f_rfft = open_or_die("rfft.f32", "wb");
    f_irfft = open_or_die("irfft.f32", "wb");
    for (frame = 0; frame < count / NSN_RFFT_N; ++frame)
    {
        nsn_complex spectrum[NSN_RFFT_BINS];
        nsn_complex scratch[NSN_RFFT_HALF];
        float time[NSN_RFFT_N];
        nsn_rfft_forward(in + frame * NSN_RFFT_N, spectrum, scratch);
        write_or_die(f_rfft, spectrum, sizeof spectrum, 1);
        nsn_rfft_inverse_unscaled(spectrum, time, scratch);
        write_or_die(f_irfft, time, sizeof time, 1);
    }
    fclose(f_irfft);
    fclose(f_rfft);
    free(in);
    return 0;
}

static int run_log10(int argc, char **argv)
{
    float *in;
    size_t count;
    size_t i;
    FILE *f;
    if (argc != 3)
    {
        FAIL("usage: log10 IN.f32");
    }
    count = read_floats(argv[2], &in);
    for (i = 0; i < count; ++i)
    {
        in[i] = nsn_frontend_log10(in[i]);
    }
    f = open_or_die("log10.f32", "wb");
    write_or_die(f, in, sizeof *in, count);
    fclose(f);
    free(in);
    return 0;
}

static int run_quantize(int argc, char **argv)
{
    float *in;
    size_t count;
    size_t i;
    FILE *f;
    nsn_frontend_qparams q;
    if (argc != 5)
    {
        FAIL("usage: quantize IN.f32 SCALE_BITS ZP");
    }
    q.scale = parse_float_bits(argv[3]);
    q.zero_point = (int32_t)strtol(argv[4], NULL, 10);
    count = read_floats(argv[2], &in);
    f = open_or_die("quantize.s8", "wb");
    for (i = 0; i < count; ++i)
    {
        const int8_t v = nsn_frontend_quantize(in[i], &q);
        write_or_die(f, &v, 1, 1);
    }
    fclose(f);
    free(in);
    return 0;
}

#define CHECK(cond)                                                                                \
    do                                                                                             \
    {                                                                                              \
        if (!(cond))                                                                               \
        {                                                                                          \
            FAIL("api check failed at line %d: %s", __LINE__, #cond);                              \
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

static int run_api(void)
{
    static nsn_frontend_state st;
    const nsn_frontend_qparams good = {0.0625f, 10};
    nsn_frontend_qparams bad = {0.0f, 0};
    int16_t hop[NSN_FRONTEND_HOP];
    int8_t features[NSN_FRONTEND_BINS];
    int8_t mask[NSN_FRONTEND_BINS];
    float out[NSN_FRONTEND_HOP + NSN_FRONTEND_TAIL]; /* a hop, or a flushed tail */
    unsigned n;

    CHECK(nsn_frontend_init(&st, &bad, &good) == NSN_FRONTEND_ERR_ARGUMENT);
    bad.scale = 1.0f;
    bad.zero_point = 128;
    CHECK(nsn_frontend_init(&st, &good, &bad) == NSN_FRONTEND_ERR_ARGUMENT);
    bad.zero_point = 0;
    bad.scale = -1.0f;
    CHECK(nsn_frontend_init(&st, &good, &bad) == NSN_FRONTEND_ERR_ARGUMENT);
    CHECK(nsn_frontend_init(&st, &good, &good) == NSN_FRONTEND_OK);

    for (n = 0; n < NSN_FRONTEND_HOP; ++n)
    {
        hop[n] = (int16_t)((int)(n * 97u % 2001u) - 1000);
    }
    memset(mask, 127, sizeof mask);
    memset(features, 0x55, sizeof features);
    out[0] = 1.0f;
#if NSN_FRONTEND_DROP_FIRST
    /* hop 0 primes: no features, zeros out */
    CHECK(nsn_frontend_analyze_s16(&st, hop, features) == NSN_FRONTEND_PRIMING);
    CHECK(features[0] == 0x55);
    CHECK(nsn_frontend_synthesize_f32(&st, mask, out) == NSN_FRONTEND_PRIMING);
    CHECK(all_zero(out, NSN_FRONTEND_HOP));
#else
    /* nothing analysed yet: synthesis is out of sequence */
    CHECK(nsn_frontend_synthesize_f32(&st, mask, out) == NSN_FRONTEND_ERR_SEQUENCE);
#endif
    /* the next hop completes frame 0 */
    CHECK(nsn_frontend_analyze_s16(&st, hop, features) == NSN_FRONTEND_OK);
    CHECK(features[0] != 0x55);
    CHECK(nsn_frontend_synthesize_f32(&st, mask, out) == NSN_FRONTEND_OK);
    CHECK(!all_zero(out, NSN_FRONTEND_HOP));
    /* a second synthesis of the same frame is refused */
    CHECK(nsn_frontend_synthesize_f32(&st, mask, out) == NSN_FRONTEND_ERR_SEQUENCE);
    CHECK(all_zero(out, NSN_FRONTEND_HOP));
    /* flush hands out the tail once */
    nsn_frontend_flush_f32(&st, out);
    CHECK(!all_zero(out, NSN_FRONTEND_TAIL));
    nsn_frontend_flush_f32(&st, out);
    CHECK(all_zero(out, NSN_FRONTEND_TAIL));
    /* gain: clipped to [1e-4, 1] (the default front end's NSN_FRONTEND_MIN/MAX_GAIN) */
    CHECK(nsn_frontend_gain(-128, &(nsn_frontend_qparams){1.0f / 256.0f, -128}) ==
          NSN_FRONTEND_MIN_GAIN);
    CHECK(nsn_frontend_gain(127, &(nsn_frontend_qparams){1.0f / 128.0f, -128}) ==
          NSN_FRONTEND_MAX_GAIN);
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
    if (argc >= 2 && strcmp(argv[1], "rfft") == 0)
    {
        return run_rfft(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "log10") == 0)
    {
        return run_log10(argc, argv);
    }
    if (argc >= 2 && strcmp(argv[1], "quantize") == 0)
    {
        return run_quantize(argc, argv);
    }
    if (argc == 2 && strcmp(argv[1], "api") == 0)
    {
        return run_api();
    }
    FAIL("usage: frontend_harness stream|rfft|log10|quantize|api ... (board %s)",
         nsn_port_board_name());
    return 2;
}
