/* SPDX-License-Identifier: Apache-2.0 */
#include "nsn_wav.h"

#include <string.h>

#include "nsn_frontend_config.h"

/* The front end's sample rate (generated nsn_frontend_config.h; 16 kHz by default). */
#define NSN_WAV_RATE ((uint32_t)NSN_FRONTEND_SAMPLE_RATE)

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xFFu);
    p[1] = (unsigned char)((v >> 8) & 0xFFu);
    p[2] = (unsigned char)((v >> 16) & 0xFFu);
    p[3] = (unsigned char)((v >> 24) & 0xFFu);
}

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xFFu);
    p[1] = (unsigned char)(v >> 8);
}

/* Skips n bytes by reading (semihosting seeks work too, but reading is portable to any
 * stream, e.g. a pipe on the host). */
static int skip(FILE *f, uint32_t n)
{
    unsigned char junk[64];
    while (n > 0)
    {
        const size_t want = n < sizeof junk ? (size_t)n : sizeof junk;
        if (fread(junk, 1, want, f) != want)
        {
            return -1;
        }
        n -= (uint32_t)want;
    }
    return 0;
}

long nsn_wav_read_header(FILE *f, const char **error)
{
    unsigned char header[12];
    int format_ok = 0;
    const char *dummy;
    if (error == NULL)
    {
        error = &dummy;
    }
    if (fread(header, 1, sizeof header, f) != sizeof header || memcmp(header, "RIFF", 4) != 0 ||
        memcmp(header + 8, "WAVE", 4) != 0)
    {
        *error = "not a RIFF/WAVE file";
        return -1;
    }
    for (;;)
    {
        unsigned char chunk[8];
        uint32_t size;
        if (fread(chunk, 1, sizeof chunk, f) != sizeof chunk)
        {
            *error = "no data chunk";
            return -1;
        }
        size = get_le32(chunk + 4);
        if (memcmp(chunk, "fmt ", 4) == 0)
        {
            unsigned char fmt[16];
            if (size < sizeof fmt || fread(fmt, 1, sizeof fmt, f) != sizeof fmt)
            {
                *error = "short fmt chunk";
                return -1;
            }
            /* PCM (1) or WAVE_FORMAT_EXTENSIBLE (0xFFFE, as some writers emit for PCM) */
            format_ok = (get_le16(fmt) == 1 || get_le16(fmt) == 0xFFFEu) &&
                        get_le16(fmt + 2) == 1 && get_le32(fmt + 4) == NSN_WAV_RATE &&
                        get_le16(fmt + 14) == 16;
            if (!format_ok)
            {
                *error = "not mono 16-bit PCM at the front end's sample rate";
                return -1;
            }
            if (skip(f, size - (uint32_t)sizeof fmt + (size & 1u)) != 0)
            {
                *error = "truncated fmt chunk";
                return -1;
            }
        }
        else if (memcmp(chunk, "data", 4) == 0)
        {
            if (!format_ok)
            {
                *error = "data chunk before the fmt chunk";
                return -1;
            }
            return (long)(size / 2u);
        }
        else if (skip(f, size + (size & 1u)) != 0)
        {
            *error = "truncated chunk";
            return -1;
        }
    }
}

uint32_t nsn_wav_read(FILE *f, uint32_t *left, int16_t *out, uint32_t n)
{
    unsigned char raw[2 * 160];
    uint32_t done = 0;
    uint32_t i;
    while (done < n && *left > 0)
    {
        uint32_t want = n - done;
        size_t got;
        if (want > *left)
        {
            want = *left;
        }
        if (want > sizeof raw / 2)
        {
            want = (uint32_t)(sizeof raw / 2);
        }
        got = fread(raw, 2, want, f);
        for (i = 0; i < (uint32_t)got; ++i)
        {
            out[done + i] = (int16_t)get_le16(raw + 2 * i);
        }
        done += (uint32_t)got;
        *left -= (uint32_t)got;
        if (got != want)
        {
            *left = 0; /* short file: treat the rest as missing */
        }
    }
    for (i = done; i < n; ++i)
    {
        out[i] = 0;
    }
    return done;
}

int nsn_wav_write_header(FILE *f, uint32_t samples)
{
    unsigned char h[44];
    const uint32_t data_bytes = samples * 2u;
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, 36u + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16u);                /* fmt chunk size */
    put_le16(h + 20, 1u);                 /* PCM */
    put_le16(h + 22, 1u);                 /* mono */
    put_le32(h + 24, NSN_WAV_RATE);       /* sample rate */
    put_le32(h + 28, NSN_WAV_RATE * 2u);  /* byte rate */
    put_le16(h + 32, 2u);                 /* block align */
    put_le16(h + 34, 16u);                /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_bytes);
    return fwrite(h, 1, sizeof h, f) == sizeof h ? 0 : -1;
}

int nsn_wav_write(FILE *f, const int16_t *samples, uint32_t n)
{
    unsigned char raw[2 * 160];
    uint32_t done = 0;
    while (done < n)
    {
        uint32_t chunk = n - done;
        uint32_t i;
        if (chunk > sizeof raw / 2)
        {
            chunk = (uint32_t)(sizeof raw / 2);
        }
        for (i = 0; i < chunk; ++i)
        {
            put_le16(raw + 2 * i, (uint16_t)samples[done + i]);
        }
        if (fwrite(raw, 2, chunk, f) != chunk)
        {
            return -1;
        }
        done += chunk;
    }
    return 0;
}
