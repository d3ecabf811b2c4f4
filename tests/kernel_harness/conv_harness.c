/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for the convolution kernels (nsn_nnfunctions_conv.h): reads records from stdin
 * (or file IN: `conv_harness IN OUT`, the semihosting form on the boards), runs one kernel per
 * record, writes one reply per record. tests/conv_checks.py builds the records.
 *
 * Little-endian int32 fields. Record: int32 op, then its fields (below). Reply: int32 status,
 * int32 count, int32 element size, count elements (nothing unless status is NSN_OK). Every
 * buffer has its exact size, so that AddressSanitizer sees any overrun.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_nnfunctions_conv.h"

enum
{
    OP_CONV = 1,        /* ctx_mode, nsn_conv_params, nsn_conv_dims, has_bias, M[oc], S[oc],
                           [int32 bias[oc]], filter bytes, int8 filter, int8 input[ih*iw*ic] */
    OP_DEPTHWISE = 2,   /* as OP_CONV; filter [kh][kw][oc] */
    OP_MEAN = 3,        /* nsn_mean_params, outer, count, inner, int8 input */
    OP_CONV_BUFFER = 4, /* nsn_conv_dims: replies with the scratch size (int32) */
    OP_PATH = 5         /* replies with the kernel path name (bytes) */
};

enum
{
    CTX_EXACT = 0,     /* get_buffer_size() bytes, 4-byte aligned, no slack */
    CTX_NULL = 1,      /* ctx == NULL */
    CTX_SHORT = 2,     /* one byte less than asked for (a size of -1 when none is) */
    CTX_MISALIGNED = 3 /* the right size at an address 2 bytes off */
};

static FILE *s_in;
static FILE *s_out;

static void die(const char *what)
{
    fprintf(stderr, "conv_harness: %s\n", what);
    exit(2);
}

static void read_exact(void *dst, size_t n)
{
    if (n > 0 && fread(dst, 1, n, s_in) != n)
    {
        die("truncated record");
    }
}

static int32_t read_i32(void)
{
    int32_t v;
    read_exact(&v, sizeof v);
    return v;
}

static size_t count_of(int32_t n)
{
    if (n < 0)
    {
        die("negative count");
    }
    return (size_t)n;
}

static void *alloc_exact(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
    {
        die("out of memory");
    }
    return p;
}

static void *read_array(size_t n)
{
    void *p = alloc_exact(n);
    read_exact(p, n);
    return p;
}

static void reply(int32_t status, size_t count, int32_t size, const void *data)
{
    const int32_t ok = status == NSN_OK;
    const int32_t n = ok ? (int32_t)count : 0;
    fwrite(&status, sizeof status, 1, s_out);
    fwrite(&n, sizeof n, 1, s_out);
    fwrite(&size, sizeof size, 1, s_out);
    if (ok && count > 0)
    {
        fwrite(data, (size_t)size, count, s_out);
    }
}

static void read_conv_header(nsn_conv_params *p, nsn_conv_dims *d)
{
    p->input_offset = read_i32();
    p->output_offset = read_i32();
    p->stride_h = read_i32();
    p->stride_w = read_i32();
    p->pad_h = read_i32();
    p->pad_w = read_i32();
    p->dilation_h = read_i32();
    p->dilation_w = read_i32();
    p->activation_min = read_i32();
    p->activation_max = read_i32();
    d->input_h = read_i32();
    d->input_w = read_i32();
    d->input_c = read_i32();
    d->filter_h = read_i32();
    d->filter_w = read_i32();
    d->output_h = read_i32();
    d->output_w = read_i32();
    d->output_c = read_i32();
    d->groups = read_i32();
}

/* The scratch for ctx_mode (CTX_*), in `block` (freed by the caller). */
static const nsn_context *make_ctx(int32_t mode, int32_t need, nsn_context *ctx, int32_t **block)
{
    if (need < 0)
    {
        die("negative buffer size");
    }
    *block = alloc_exact(((size_t)need + 3u) / 4u * 4u + 4u);
    ctx->buf = need > 0 ? (void *)*block : NULL;
    ctx->size = need;
    switch (mode)
    {
    case CTX_EXACT:
        return ctx;
    case CTX_NULL:
        return NULL;
    case CTX_SHORT:
        ctx->buf = *block;
        ctx->size = need - 1;
        return ctx;
    case CTX_MISALIGNED:
        ctx->buf = (char *)*block + 2;
        return ctx;
    default:
        die("bad ctx mode");
        return NULL;
    }
}

static void run_conv(int32_t op)
{
    nsn_conv_params p;
    nsn_conv_dims d;
    nsn_per_channel_quant_params quant;
    nsn_context ctx;
    const nsn_context *use;
    int32_t *multiplier, *shift, *bias = NULL, *scratch;
    int8_t *filter, *input, *output;
    size_t oc, filter_size, out_size;
    nsn_status status;
    const int32_t mode = read_i32();
    int32_t has_bias;
    read_conv_header(&p, &d);
    has_bias = read_i32();
    oc = count_of(d.output_c);
    multiplier = read_array(oc * sizeof(int32_t));
    shift = read_array(oc * sizeof(int32_t));
    if (has_bias)
    {
        bias = read_array(oc * sizeof(int32_t));
    }
    filter_size = count_of(read_i32());
    filter = read_array(filter_size);
    input = read_array(count_of(d.input_h) * count_of(d.input_w) * count_of(d.input_c));
    out_size = count_of(d.output_h) * count_of(d.output_w) * oc;
    output = alloc_exact(out_size);
    quant.multiplier = multiplier;
    quant.shift = shift;
    use = make_ctx(mode, op == OP_CONV ? nsn_conv_s8_get_buffer_size(&d) : 0, &ctx, &scratch);
    status = op == OP_CONV ? nsn_conv_s8(use, &p, &quant, &d, input, filter, bias, output)
                           : nsn_depthwise_conv_s8(use, &p, &quant, &d, input, filter, bias, output);
    reply(status, out_size, 1, output);
    free(multiplier);
    free(shift);
    free(bias);
    free(filter);
    free(input);
    free(output);
    free(scratch);
}

static void run_mean(void)
{
    nsn_mean_params p;
    int32_t outer, count, inner;
    int8_t *input, *output;
    nsn_status status;
    p.input_offset = read_i32();
    p.output_offset = read_i32();
    p.multiplier = read_i32();
    p.shift = read_i32();
    outer = read_i32();
    count = read_i32();
    inner = read_i32();
    input = read_array(count_of(outer) * count_of(count) * count_of(inner));
    output = alloc_exact(count_of(outer) * count_of(inner));
    status = nsn_mean_s8(&p, outer, count, inner, input, output);
    reply(status, count_of(outer) * count_of(inner), 1, output);
    free(input);
    free(output);
}

int main(int argc, char **argv)
{
    int32_t op;
    s_in = stdin;
    s_out = stdout;
    if (argc == 3)
    {
        s_in = fopen(argv[1], "rb");
        s_out = fopen(argv[2], "wb");
        if (s_in == NULL || s_out == NULL)
        {
            die("cannot open the record or reply file");
        }
    }
    else if (argc != 1)
    {
        die("usage: conv_harness [IN OUT]");
    }
    while (fread(&op, sizeof op, 1, s_in) == 1)
    {
        if (op == OP_CONV || op == OP_DEPTHWISE)
        {
            run_conv(op);
        }
        else if (op == OP_MEAN)
        {
            run_mean();
        }
        else if (op == OP_CONV_BUFFER)
        {
            nsn_conv_params p;
            nsn_conv_dims d;
            int32_t size;
            read_conv_header(&p, &d);
            size = nsn_conv_s8_get_buffer_size(&d);
            reply(NSN_OK, 1, 4, &size);
        }
        else if (op == OP_PATH)
        {
            reply(NSN_OK, strlen(NSN_KERNELS_PATH), 1, NSN_KERNELS_PATH);
        }
        else
        {
            die("unknown op");
        }
    }
    if (s_out != stdout && fclose(s_out) != 0)
    {
        die("cannot write the reply file");
    }
    return 0;
}
