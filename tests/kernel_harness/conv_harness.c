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

#include "nsn_nnfunctions_s16.h"

enum
{
    OP_CONV = 1,        /* ctx_mode, nsn_conv_params, nsn_conv_dims, has_bias, M[oc], S[oc],
                           [int32 bias[oc]], filter bytes, int8 filter, int8 input[ih*iw*ic] */
    OP_DEPTHWISE = 2,   /* as OP_CONV; filter [kh][kw][oc] */
    OP_MEAN = 3,        /* nsn_mean_params, outer, count, inner, int8 input */
    OP_CONV_BUFFER = 4, /* nsn_conv_dims: replies with the scratch size (int32) */
    OP_PATH = 5,        /* replies with the kernel path name (bytes) */
    OP_CONV16 = 6,      /* as OP_CONV; int64 bias, int16 input and output */
    OP_DEPTHWISE16 = 7, /* as OP_DEPTHWISE; int64 bias, int16 input and output */
    OP_FC16 = 8,        /* nsn_fc_params, in, out, has_bias, batches, M[out], S[out],
                           [int64 bias[out]], int8 w[out*in], int16 x[batches*in] */
    OP_ADD16 = 9,       /* nsn_add_params, size1, size2, int16 x1, int16 x2 */
    OP_SUB16 = 10,      /* as OP_ADD16 */
    OP_MUL16 = 11,      /* nsn_mul_params, size1, size2, int16 x1, int16 x2 */
    OP_UNARY = 12,      /* kind (UNARY_*), 6 int32 parameters (the kind's struct, then 0s),
                           size, input[size] (int8 or int16 by kind) */
    OP_CONV_ACT = 13,   /* as OP_CONV, then the activation table (256 int8, input order
                           -128..127: nsn_conv_params.activation) */
    OP_DEPTHWISE_ACT = 14 /* as OP_DEPTHWISE, then the activation table */
};

enum
{
    UNARY_LOGISTIC16 = 0, /* nsn_unary_s16_params */
    UNARY_TANH16 = 1,
    UNARY_RSQRT16 = 2,  /* nsn_rsqrt_params */
    UNARY_LEAKY8 = 3,   /* nsn_leaky_relu_params */
    UNARY_LEAKY16 = 4,
    UNARY_REQ_8_16 = 5, /* nsn_requantize_params */
    UNARY_REQ_16_8 = 6,
    UNARY_REQ_16_16 = 7,
    UNARY_MEAN16 = 8    /* nsn_mean_params, outer, inner (count = size / (outer * inner)) */
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
    p->activation = NULL;
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

static void run_conv16(int32_t op);

static void run_conv(int32_t op)
{
    nsn_conv_params p;
    nsn_conv_dims d;
    nsn_per_channel_quant_params quant;
    nsn_context ctx;
    const nsn_context *use;
    int32_t *multiplier, *shift, *bias = NULL, *scratch;
    int8_t *filter, *input, *output, *table = NULL;
    size_t oc, filter_size, out_size;
    nsn_status status;
    const int32_t mode = read_i32();
    const int conv = op == OP_CONV || op == OP_CONV_ACT;
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
    if (op == OP_CONV_ACT || op == OP_DEPTHWISE_ACT)
    {
        table = read_array(256);
        p.activation = table;
    }
    out_size = count_of(d.output_h) * count_of(d.output_w) * oc;
    output = alloc_exact(out_size);
    quant.multiplier = multiplier;
    quant.shift = shift;
    use = make_ctx(mode,
                   conv ? nsn_conv_s8_get_buffer_size(&d) : nsn_depthwise_conv_s8_get_buffer_size(&d),
                   &ctx, &scratch);
    status = conv ? nsn_conv_s8(use, &p, &quant, &d, input, filter, bias, output)
                  : nsn_depthwise_conv_s8(use, &p, &quant, &d, input, filter, bias, output);
    reply(status, out_size, 1, output);
    free(table);
    free(multiplier);
    free(shift);
    free(bias);
    free(filter);
    free(input);
    free(output);
    free(scratch);
}

static void run_conv16(int32_t op)
{
    nsn_conv_params p;
    nsn_conv_dims d;
    nsn_per_channel_quant_params quant;
    nsn_context ctx;
    const nsn_context *use;
    int32_t *multiplier, *shift, *scratch;
    int64_t *bias = NULL;
    int8_t *filter;
    int16_t *input, *output;
    size_t oc, out_size;
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
        bias = read_array(oc * sizeof(int64_t));
    }
    filter = read_array(count_of(read_i32()));
    input = read_array(count_of(d.input_h) * count_of(d.input_w) * count_of(d.input_c) * 2u);
    out_size = count_of(d.output_h) * count_of(d.output_w) * oc;
    output = alloc_exact(out_size * 2u);
    quant.multiplier = multiplier;
    quant.shift = shift;
    use = make_ctx(mode, op == OP_CONV16 ? nsn_conv_s16_get_buffer_size(&d) : 0, &ctx, &scratch);
    status = op == OP_CONV16
                 ? nsn_conv_s16(use, &p, &quant, &d, input, filter, bias, output)
                 : nsn_depthwise_conv_s16(use, &p, &quant, &d, input, filter, bias, output);
    reply(status, out_size, 2, output);
    free(multiplier);
    free(shift);
    free(bias);
    free(filter);
    free(input);
    free(output);
    free(scratch);
}

static void run_fc16(void)
{
    nsn_fc_params p;
    nsn_fc_dims dims;
    nsn_per_channel_quant_params quant;
    int32_t has_bias, batches, b, *multiplier, *shift;
    int64_t *bias = NULL;
    int8_t *weights;
    int16_t *input, *output;
    size_t in, out;
    nsn_status status = NSN_OK;
    p.input_offset = read_i32();
    p.output_offset = read_i32();
    p.activation_min = read_i32();
    p.activation_max = read_i32();
    dims.input_features = read_i32();
    dims.output_features = read_i32();
    has_bias = read_i32();
    batches = read_i32();
    in = count_of(dims.input_features);
    out = count_of(dims.output_features);
    multiplier = read_array(out * sizeof(int32_t));
    shift = read_array(out * sizeof(int32_t));
    if (has_bias)
    {
        bias = read_array(out * sizeof(int64_t));
    }
    weights = read_array(in * out);
    input = read_array(count_of(batches) * in * 2u);
    output = alloc_exact(count_of(batches) * out * 2u);
    quant.multiplier = multiplier;
    quant.shift = shift;
    for (b = 0; b < batches && status == NSN_OK; ++b)
    {
        status = nsn_fully_connected_s16(NULL, &p, &quant, &dims, input + (size_t)b * in, weights,
                                         bias, output + (size_t)b * out);
    }
    reply(status, count_of(batches) * out, 2, output);
    free(multiplier);
    free(shift);
    free(bias);
    free(weights);
    free(input);
    free(output);
}

static void run_binary16(int32_t op)
{
    int32_t v[12], size1, size2, i;
    int16_t *x1, *x2, *out;
    size_t n;
    nsn_status status;
    const int32_t fields = op == OP_MUL16 ? 7 : 12;
    for (i = 0; i < fields; ++i)
    {
        v[i] = read_i32();
    }
    size1 = read_i32();
    size2 = read_i32();
    x1 = read_array(count_of(size1) * 2u);
    x2 = read_array(count_of(size2) * 2u);
    n = count_of(size1 > size2 ? size1 : size2);
    out = alloc_exact(n * 2u);
    if (op == OP_MUL16)
    {
        const nsn_mul_params p = {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
        status = nsn_elementwise_mul_s16(&p, x1, size1, x2, size2, out);
    }
    else
    {
        const nsn_add_params p = {v[0], v[1], v[2], v[3], v[4], v[5],
                                  v[6], v[7], v[8], v[9], v[10], v[11]};
        status = op == OP_ADD16 ? nsn_elementwise_add_s16(&p, x1, size1, x2, size2, out)
                                : nsn_elementwise_sub_s16(&p, x1, size1, x2, size2, out);
    }
    reply(status, n, 2, out);
    free(x1);
    free(x2);
    free(out);
}

/* OP_UNARY: the kernel of `kind` on v (its parameters); returns the status. */
static nsn_status unary_call(int32_t kind, const int32_t *v, int32_t size, const void *in,
                             void *out)
{
    const nsn_unary_s16_params u = {v[0], v[1]};
    const nsn_rsqrt_params r = {v[0], v[1], v[2], v[3]};
    const nsn_leaky_relu_params l = {v[0], v[1], v[2], v[3], v[4], v[5]};
    const nsn_requantize_params q = {v[0], v[1], v[2], v[3]};
    const nsn_mean_params m = {v[0], v[1], v[2], v[3]};
    switch (kind)
    {
    case UNARY_LOGISTIC16:
        return nsn_logistic_s16(&u, in, size, out);
    case UNARY_TANH16:
        return nsn_tanh_s16(&u, in, size, out);
    case UNARY_RSQRT16:
        return nsn_rsqrt_s16(&r, in, size, out);
    case UNARY_LEAKY8:
        return nsn_leaky_relu_s8(&l, in, size, out);
    case UNARY_LEAKY16:
        return nsn_leaky_relu_s16(&l, in, size, out);
    case UNARY_REQ_8_16:
        return nsn_requantize_s8_s16(&q, in, size, out);
    case UNARY_REQ_16_8:
        return nsn_requantize_s16_s8(&q, in, size, out);
    case UNARY_REQ_16_16:
        return nsn_requantize_s16(&q, in, size, out);
    case UNARY_MEAN16:
        if (v[4] < 1 || v[5] < 1 || size % (v[4] * v[5]) != 0)
        {
            return NSN_ARG_ERROR;
        }
        return nsn_mean_s16(&m, v[4], size / (v[4] * v[5]), v[5], in, out);
    default:
        die("bad unary kind");
        return NSN_ARG_ERROR;
    }
}

static void run_unary(void)
{
    const int32_t kind = read_i32();
    int32_t v[6], i, size;
    size_t in_bytes, out_n, out_bytes;
    void *in, *out;
    nsn_status status;
    for (i = 0; i < 6; ++i)
    {
        v[i] = read_i32();
    }
    size = read_i32();
    in_bytes = kind == UNARY_LEAKY8 || kind == UNARY_REQ_8_16 ? 1u : 2u;
    out_bytes = kind == UNARY_LEAKY8 || kind == UNARY_REQ_16_8 ? 1u : 2u;
    out_n = count_of(size);
    if (kind == UNARY_MEAN16)
    {
        out_n = v[4] > 0 && v[5] > 0 ? count_of(v[4]) * count_of(v[5]) : 0u;
    }
    in = read_array(count_of(size) * in_bytes);
    out = alloc_exact(out_n * out_bytes);
    status = unary_call(kind, v, size, in, out);
    reply(status, out_n, (int32_t)out_bytes, out);
    free(in);
    free(out);
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
        if (op == OP_CONV || op == OP_DEPTHWISE || op == OP_CONV_ACT || op == OP_DEPTHWISE_ACT)
        {
            run_conv(op);
        }
        else if (op == OP_MEAN)
        {
            run_mean();
        }
        else if (op == OP_CONV16 || op == OP_DEPTHWISE16)
        {
            run_conv16(op);
        }
        else if (op == OP_FC16)
        {
            run_fc16();
        }
        else if (op == OP_ADD16 || op == OP_SUB16 || op == OP_MUL16)
        {
            run_binary16(op);
        }
        else if (op == OP_UNARY)
        {
            run_unary();
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
