/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for the nsconv kernels: reads records from stdin, runs one kernel per record and
 * writes the result to stdout, so that tests/test_kernels.py can compare it with TFLM.
 * `harness IN OUT` reads the records from file IN and writes the replies to file OUT instead:
 * that is how tests/test_kernels_arm.py runs it on the boards in QEMU (semihosting files).
 *
 * All integers are little-endian int32 unless noted. A record is
 *   int32 op, then the op's fields (see the cases below);
 * a reply is
 *   int32 status, int32 count, then count int8 outputs (int32 outputs for OP_REQUANTIZE_SCALAR).
 * Every buffer is allocated at its exact size so that AddressSanitizer sees any overrun.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsn_nnfunctions.h"
#include "nsn_nnfunctions_gru.h"

enum
{
    OP_FULLY_CONNECTED = 1,   /* nsn_fc_params, in, out, has_bias, batches, M[out], S[out],
                                 [bias[out]], int8 w[out*in], int8 x[batches*in] */
    OP_ADD = 2,               /* nsn_add_params, size1, size2, int8 x1[size1], int8 x2[size2] */
    OP_SUB = 3,               /* as OP_ADD */
    OP_MUL = 4,               /* nsn_mul_params, size1, size2, int8 x1[size1], int8 x2[size2] */
    OP_LUT = 5,               /* int8 table[256], size, int8 x[size] */
    OP_REQUANTIZE = 6,        /* nsn_requantize_params, size, int8 x[size] */
    OP_REQUANTIZE_SCALAR = 7, /* n, then n triples (acc, multiplier, shift) */
    OP_FC_BUFFER_SIZE = 8,    /* in, out: replies with one int32 */
    OP_FC_CTX = 9,            /* int32 ctx_mode, int32 weights_misalignment (0..3), then the
                                 fields of OP_FULLY_CONNECTED; ctx_mode: CTX_* below */
    OP_KERNELS_PATH = 10,     /* replies with the path name (int8 characters) */
    OP_FC_S4_CTX = 11,        /* as OP_FC_CTX for nsn_fully_connected_s4: the weights are
                                 out * NSN_FC_S4_ROW_BYTES(in) packed bytes */
    OP_FC_S4_BUFFER_SIZE = 12, /* in, out: replies with one int32 */
    OP_FC_BATCH = 13,          /* nsn_fully_connected_batch_s8, one call for every row: int32
                                  ctx_mode, misalignment, records mode (RECORDS_* below), packed
                                  weight bytes, num_blocks, the blocks as int32 triples
                                  (out_count, in_start, in_count), then the fields of
                                  OP_FULLY_CONNECTED with the packed weights, and for
                                  RECORDS_GIVEN 4 * out int32 records after the bias */
    OP_FC_BATCH_PREPARE = 14,  /* num_blocks, the triples, nsn_fc_params, in, out, has_bias,
                                  M[out], S[out], [bias[out]]: replies with the 4 * out int32 of
                                  nsn_fully_connected_batch_s8_prepare (none on an error) */
    OP_GRU_GATES = 15,         /* nsn_gru_gates_params: add_zr, mul_r, add_n, sub_d, mul_z, add_h
                                  (the fields of OP_ADD / OP_MUL), hidden, z_offset, has_dsp,
                                  [int32 dsp[NSN_GRU_DSP_CONSTANTS]], int8 sigmoid[256],
                                  int8 tanh[256], rows, int8 x_zr[rows*2H], h_zr[rows*2H],
                                  h_n[rows*H], x_n[rows*H], h[rows*H] (tests/gru_checks.py) */
    OP_FC_BATCH_MULTI = 16     /* nsn_fully_connected_batch_multi_s8: ctx_mode, num_ops (1..8),
                                  batches, then per op: records mode (RECORDS_NULL or _GIVEN),
                                  packed weight bytes, the fields of OP_FC_BATCH_PREPARE,
                                  [4 * out int32 records], int8 weights; then int8
                                  x[batches * op 0's in]. Replies with every op's outputs, op
                                  after op */
};

/* The records an OP_FC_BATCH call gets. */
enum
{
    RECORDS_NULL = 0,     /* NULL: the DSP path sets them up itself */
    RECORDS_PREPARED = 1, /* nsn_fully_connected_batch_s8_prepare's, here (its error: replied) */
    RECORDS_GIVEN = 2     /* read from the record (nsconv.compiler.packing.fc_records) */
};

/* The scratch a FULLY_CONNECTED call gets (OP_FC_CTX). */
enum
{
    CTX_EXACT = 0,     /* get_buffer_size() bytes, 4-byte aligned, no slack */
    CTX_NULL = 1,      /* ctx == NULL */
    CTX_SHORT = 2,     /* one byte less than asked for (a size of -1 when none is) */
    CTX_MISALIGNED = 3 /* the right size at an odd address */
};

static FILE *s_in;
static FILE *s_out;

static void die(const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
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

/* Exactly n bytes (one when n is 0, so that malloc(0) is never asked). */
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

static size_t checked_count(int32_t n)
{
    if (n < 0)
    {
        die("negative count");
    }
    return (size_t)n;
}

static void reply(int32_t status, int32_t count, const void *data, size_t bytes)
{
    fwrite(&status, sizeof status, 1, s_out);
    fwrite(&count, sizeof count, 1, s_out);
    if (bytes > 0)
    {
        fwrite(data, 1, bytes, s_out);
    }
}

/* FULLY_CONNECTED (s4: the packed kernel) with the scratch of ctx_mode, weights at an address
 * misaligned by `misalign` bytes (the optimized paths read weights by words). */
static void run_fully_connected(int32_t ctx_mode, int32_t misalign, int s4)
{
    nsn_fc_params params;
    nsn_fc_dims dims;
    nsn_per_channel_quant_params quant;
    nsn_context ctx;
    int32_t has_bias, batches, b, scratch_size;
    size_t in, out, weight_bytes;
    int32_t *multiplier, *shift, *bias = NULL, *scratch;
    int8_t *weights_block, *weights, *input, *output;
    nsn_status status = NSN_OK;

    params.input_offset = read_i32();
    params.output_offset = read_i32();
    params.activation_min = read_i32();
    params.activation_max = read_i32();
    dims.input_features = read_i32();
    dims.output_features = read_i32();
    has_bias = read_i32();
    batches = read_i32();
    in = checked_count(dims.input_features);
    out = checked_count(dims.output_features);
    weight_bytes = out * (s4 ? checked_count(NSN_FC_S4_ROW_BYTES(dims.input_features)) : in);
    if (misalign < 0 || misalign > 3)
    {
        die("bad weights misalignment");
    }
    multiplier = read_array(out * sizeof(int32_t));
    shift = read_array(out * sizeof(int32_t));
    if (has_bias)
    {
        bias = read_array(out * sizeof(int32_t));
    }
    /* malloc is 8-byte aligned; the weights end exactly at the end of the block */
    weights_block = alloc_exact(weight_bytes + (size_t)misalign);
    weights = weights_block + misalign;
    read_exact(weights, weight_bytes);
    input = read_array(checked_count(batches) * in);
    output = alloc_exact(checked_count(batches) * out);
    quant.multiplier = multiplier;
    quant.shift = shift;

    scratch_size = s4 ? nsn_fully_connected_s4_get_buffer_size(&dims)
                      : nsn_fully_connected_s8_get_buffer_size(&dims);
    if (scratch_size < 0)
    {
        die("negative buffer size");
    }
    /* int32 units keep the block aligned; CTX_MISALIGNED needs 4 more bytes */
    scratch = alloc_exact(((size_t)scratch_size + 3u) / 4u * 4u + 4u);
    ctx.buf = scratch_size > 0 ? (void *)scratch : NULL;
    ctx.size = scratch_size;
    if (ctx_mode == CTX_SHORT)
    {
        ctx.buf = scratch;
        ctx.size = scratch_size - 1;
    }
    else if (ctx_mode == CTX_MISALIGNED)
    {
        ctx.buf = (char *)scratch + 2;
    }
    else if (ctx_mode != CTX_EXACT && ctx_mode != CTX_NULL)
    {
        die("bad ctx mode");
    }

    for (b = 0; b < batches && status == NSN_OK; ++b)
    {
        /* each row in and out of its own exact-size buffer, so that any overrun is caught */
        int8_t *row = alloc_exact(in);
        int8_t *row_out = alloc_exact(out);
        memcpy(row, input + (size_t)b * in, in);
        status = (s4 ? nsn_fully_connected_s4 : nsn_fully_connected_s8)(
            ctx_mode == CTX_NULL ? NULL : &ctx, &params, &quant, &dims, row, weights, bias,
            row_out);
        memcpy(output + (size_t)b * out, row_out, out);
        free(row);
        free(row_out);
    }
    if (status == NSN_OK)
    {
        reply(status, batches * (int32_t)out, output, (size_t)batches * out);
    }
    else
    {
        reply(status, 0, NULL, 0);
    }
    free(multiplier);
    free(shift);
    free(bias);
    free(weights_block);
    free(input);
    free(output);
    free(scratch);
}

static void read_sizes(
    int32_t *size1, int32_t *size2, int8_t **input1, int8_t **input2, size_t *out_size)
{
    *size1 = read_i32();
    *size2 = read_i32();
    *input1 = read_array(checked_count(*size1));
    *input2 = read_array(checked_count(*size2));
    *out_size = checked_count(*size1 > *size2 ? *size1 : *size2);
}

static void run_binary(int32_t op)
{
    int32_t size1, size2;
    int8_t *input1, *input2, *output;
    size_t out_size;
    nsn_status status;

    if (op == OP_MUL)
    {
        nsn_mul_params p;
        p.input1_offset = read_i32();
        p.input2_offset = read_i32();
        p.output_offset = read_i32();
        p.output_multiplier = read_i32();
        p.output_shift = read_i32();
        p.activation_min = read_i32();
        p.activation_max = read_i32();
        read_sizes(&size1, &size2, &input1, &input2, &out_size);
        output = alloc_exact(out_size);
        status = nsn_elementwise_mul_s8(&p, input1, size1, input2, size2, output);
    }
    else
    {
        nsn_add_params p;
        p.input1_offset = read_i32();
        p.input1_multiplier = read_i32();
        p.input1_shift = read_i32();
        p.input2_offset = read_i32();
        p.input2_multiplier = read_i32();
        p.input2_shift = read_i32();
        p.left_shift = read_i32();
        p.output_offset = read_i32();
        p.output_multiplier = read_i32();
        p.output_shift = read_i32();
        p.activation_min = read_i32();
        p.activation_max = read_i32();
        read_sizes(&size1, &size2, &input1, &input2, &out_size);
        output = alloc_exact(out_size);
        status = op == OP_ADD ? nsn_elementwise_add_s8(&p, input1, size1, input2, size2, output)
                              : nsn_elementwise_sub_s8(&p, input1, size1, input2, size2, output);
    }
    reply(status, status == NSN_OK ? (int32_t)out_size : 0, output,
          status == NSN_OK ? out_size : 0);
    free(input1);
    free(input2);
    free(output);
}

static void read_add_params(nsn_add_params *p)
{
    p->input1_offset = read_i32();
    p->input1_multiplier = read_i32();
    p->input1_shift = read_i32();
    p->input2_offset = read_i32();
    p->input2_multiplier = read_i32();
    p->input2_shift = read_i32();
    p->left_shift = read_i32();
    p->output_offset = read_i32();
    p->output_multiplier = read_i32();
    p->output_shift = read_i32();
    p->activation_min = read_i32();
    p->activation_max = read_i32();
}

static void read_mul_params(nsn_mul_params *p)
{
    p->input1_offset = read_i32();
    p->input2_offset = read_i32();
    p->output_offset = read_i32();
    p->output_multiplier = read_i32();
    p->output_shift = read_i32();
    p->activation_min = read_i32();
    p->activation_max = read_i32();
}

static void run_gru_gates(void)
{
    nsn_gru_gates_params p;
    int32_t *dsp = NULL;
    int8_t *sigmoid, *tanh_table, *in[5], *out;
    int32_t rows, k;
    size_t units;
    nsn_status status;
    read_add_params(&p.add_zr);
    read_mul_params(&p.mul_r);
    read_add_params(&p.add_n);
    read_add_params(&p.sub_d);
    read_mul_params(&p.mul_z);
    read_add_params(&p.add_h);
    p.hidden = read_i32();
    p.z_offset = read_i32();
    if (read_i32() != 0)
    {
        dsp = read_array(NSN_GRU_DSP_CONSTANTS * sizeof(int32_t));
    }
    p.dsp = dsp;
    sigmoid = read_array(256);
    tanh_table = read_array(256);
    p.sigmoid = sigmoid;
    p.tanh = tanh_table;
    rows = read_i32();
    units = checked_count(rows) * checked_count(p.hidden);
    for (k = 0; k < 5; ++k)
    {
        in[k] = read_array(k < 2 ? 2 * units : units);
    }
    out = alloc_exact(units);
    status = nsn_gru_gates_s8(&p, rows, in[0], in[1], in[2], in[3], in[4], out);
    reply(status, status == NSN_OK ? (int32_t)units : 0, out, status == NSN_OK ? units : 0);
    for (k = 0; k < 5; ++k)
    {
        free(in[k]);
    }
    free(out);
    free(dsp);
    free(sigmoid);
    free(tanh_table);
}

static void run_lut(void)
{
    int8_t *table = read_array(256);
    int32_t size = read_i32();
    int8_t *input = read_array(checked_count(size));
    int8_t *output = alloc_exact(checked_count(size));
    nsn_status status = nsn_lut_s8(table, input, size, output);
    reply(status, status == NSN_OK ? size : 0, output, status == NSN_OK ? (size_t)size : 0);
    free(table);
    free(input);
    free(output);
}

static void run_requantize(void)
{
    nsn_requantize_params p;
    int32_t size;
    int8_t *input, *output;
    nsn_status status;
    p.input_offset = read_i32();
    p.output_offset = read_i32();
    p.multiplier = read_i32();
    p.shift = read_i32();
    size = read_i32();
    input = read_array(checked_count(size));
    output = alloc_exact(checked_count(size));
    status = nsn_requantize_s8(&p, input, size, output);
    reply(status, status == NSN_OK ? size : 0, output, status == NSN_OK ? (size_t)size : 0);
    free(input);
    free(output);
}

static void run_requantize_scalar(void)
{
    int32_t n = read_i32();
    int32_t *triples = read_array(checked_count(n) * 3 * sizeof(int32_t));
    int32_t *result = alloc_exact(checked_count(n) * sizeof(int32_t));
    int32_t i;
    for (i = 0; i < n; ++i)
    {
        result[i] = nsn_requantize(triples[3 * i], triples[3 * i + 1], triples[3 * i + 2]);
    }
    reply(NSN_OK, n, result, (size_t)n * sizeof(int32_t));
    free(triples);
    free(result);
}

static void run_fc_buffer_size(int s4)
{
    nsn_fc_dims dims;
    int32_t size;
    dims.input_features = read_i32();
    dims.output_features = read_i32();
    size = s4 ? nsn_fully_connected_s4_get_buffer_size(&dims)
              : nsn_fully_connected_s8_get_buffer_size(&dims);
    reply(NSN_OK, 1, &size, sizeof size);
}

/* The fields OP_FC_BATCH and OP_FC_BATCH_PREPARE share. */
typedef struct
{
    int32_t num_blocks;
    nsn_fc_block *blocks;
    nsn_fc_params params;
    nsn_fc_dims dims;
    nsn_per_channel_quant_params quant;
    int32_t has_bias;
    int32_t batches;
    int32_t *multiplier, *shift, *bias;
} fc_batch_args;

static void read_fc_batch_args(fc_batch_args *a, int with_batches)
{
    int32_t k;
    size_t out;
    a->num_blocks = read_i32();
    a->blocks = alloc_exact(checked_count(a->num_blocks) * sizeof(nsn_fc_block));
    for (k = 0; k < a->num_blocks; ++k)
    {
        a->blocks[k].out_count = (uint16_t)read_i32();
        a->blocks[k].in_start = (uint16_t)read_i32();
        a->blocks[k].in_count = (uint16_t)read_i32();
    }
    a->params.input_offset = read_i32();
    a->params.output_offset = read_i32();
    a->params.activation_min = read_i32();
    a->params.activation_max = read_i32();
    a->dims.input_features = read_i32();
    a->dims.output_features = read_i32();
    a->has_bias = read_i32();
    a->batches = with_batches ? read_i32() : 0;
    out = checked_count(a->dims.output_features);
    a->multiplier = read_array(out * sizeof(int32_t));
    a->shift = read_array(out * sizeof(int32_t));
    a->bias = a->has_bias ? read_array(out * sizeof(int32_t)) : NULL;
    a->quant.multiplier = a->multiplier;
    a->quant.shift = a->shift;
}

static void free_fc_batch_args(fc_batch_args *a)
{
    free(a->blocks);
    free(a->multiplier);
    free(a->shift);
    free(a->bias);
}

static void run_fc_batch_prepare(void)
{
    fc_batch_args a;
    nsn_fc_record *records;
    nsn_status status;
    read_fc_batch_args(&a, 0);
    records = alloc_exact(checked_count(a.dims.output_features) * sizeof(nsn_fc_record));
    status = nsn_fully_connected_batch_s8_prepare(&a.params, &a.quant, &a.dims, a.blocks,
                                                  a.num_blocks, a.bias, records);
    if (status == NSN_OK)
    {
        reply(status, 4 * a.dims.output_features, records,
              checked_count(a.dims.output_features) * sizeof(nsn_fc_record));
    }
    else
    {
        reply(status, 0, NULL, 0);
    }
    free(records);
    free_fc_batch_args(&a);
}

/* The scratch of ctx_mode for nsn_fully_connected_batch_s8 (see CTX_*); *block to free. */
static nsn_context *fc_batch_ctx(nsn_context *ctx, int32_t ctx_mode, const nsn_fc_dims *dims,
                                 int32_t **block)
{
    const int32_t size = nsn_fully_connected_batch_s8_get_buffer_size(dims);
    if (size < 0 || ctx_mode < CTX_EXACT || ctx_mode > CTX_MISALIGNED)
    {
        die("bad buffer size or ctx mode");
    }
    *block = alloc_exact(((size_t)size + 3u) / 4u * 4u + 4u);
    ctx->buf = size > 0 ? (void *)*block : NULL;
    ctx->size = size;
    if (ctx_mode == CTX_SHORT)
    {
        ctx->buf = *block;
        ctx->size = size - 1;
    }
    else if (ctx_mode == CTX_MISALIGNED)
    {
        ctx->buf = (char *)*block + 2;
    }
    return ctx_mode == CTX_NULL ? NULL : ctx;
}

/* OP_FC_BATCH: all rows in one call, every buffer at its exact size. */
static void run_fc_batch(void)
{
    const int32_t ctx_mode = read_i32();
    const int32_t misalign = read_i32();
    const int32_t records_mode = read_i32();
    const size_t weight_bytes = checked_count(read_i32());
    fc_batch_args a;
    nsn_context ctx;
    nsn_context *pctx;
    nsn_fc_record *records = NULL;
    int32_t *scratch;
    int8_t *weights_block, *input, *output;
    size_t out;
    nsn_status status = NSN_OK;
    read_fc_batch_args(&a, 1);
    out = checked_count(a.dims.output_features);
    if (misalign < 0 || misalign > 3)
    {
        die("bad weights misalignment");
    }
    if (records_mode == RECORDS_GIVEN)
    {
        records = read_array(out * sizeof(nsn_fc_record));
    }
    else if (records_mode == RECORDS_PREPARED)
    {
        records = alloc_exact(out * sizeof(nsn_fc_record));
        status = nsn_fully_connected_batch_s8_prepare(&a.params, &a.quant, &a.dims, a.blocks,
                                                      a.num_blocks, a.bias, records);
    }
    weights_block = alloc_exact(weight_bytes + (size_t)misalign);
    read_exact(weights_block + misalign, weight_bytes);
    input = read_array(checked_count(a.batches) * checked_count(a.dims.input_features));
    output = alloc_exact(checked_count(a.batches) * out);
    pctx = fc_batch_ctx(&ctx, ctx_mode, &a.dims, &scratch);
    if (status == NSN_OK)
    {
        status = nsn_fully_connected_batch_s8(pctx, &a.params, &a.quant, &a.dims, a.batches,
                                              a.blocks, a.num_blocks, records, input,
                                              weights_block + misalign, a.bias, output);
    }
    reply(status, status == NSN_OK ? a.batches * (int32_t)out : 0, output,
          status == NSN_OK ? (size_t)a.batches * out : 0);
    free_fc_batch_args(&a);
    free(records);
    free(weights_block);
    free(input);
    free(output);
    free(scratch);
}

typedef struct
{
    fc_batch_args a;
    nsn_fc_record *records;
    int8_t *weights;
    int8_t *output;
} fc_multi_op;

static void read_fc_multi_op(fc_multi_op *m, nsn_fc_batch_op *op)
{
    const int32_t records_mode = read_i32();
    const size_t weight_bytes = checked_count(read_i32());
    read_fc_batch_args(&m->a, 0);
    m->records = records_mode == RECORDS_GIVEN
                     ? read_array(checked_count(m->a.dims.output_features) * sizeof(nsn_fc_record))
                     : NULL;
    m->weights = read_array(weight_bytes);
    op->params = &m->a.params;
    op->quant = &m->a.quant;
    op->dims = &m->a.dims;
    op->blocks = m->a.blocks;
    op->num_blocks = m->a.num_blocks;
    op->records = m->records;
    op->weights = m->weights;
    op->bias = m->a.bias;
}

/* OP_FC_BATCH_MULTI: several ops on one input in one call, every buffer at its exact size. */
static void run_fc_batch_multi(void)
{
    const int32_t ctx_mode = read_i32();
    const int32_t num_ops = read_i32();
    const int32_t batches = read_i32();
    fc_multi_op m[8];
    nsn_fc_batch_op ops[8];
    int8_t *outputs[8];
    nsn_fc_dims most;
    nsn_context ctx;
    nsn_context *pctx;
    int32_t *scratch;
    int8_t *input, *all;
    int32_t k, total = 0;
    nsn_status status;
    if (num_ops < 1 || num_ops > 8)
    {
        die("bad op count");
    }
    most.output_features = 0;
    for (k = 0; k < num_ops; ++k)
    {
        read_fc_multi_op(&m[k], &ops[k]);
        m[k].output = alloc_exact(checked_count(batches) * checked_count(m[k].a.dims.output_features));
        outputs[k] = m[k].output;
        total += batches * m[k].a.dims.output_features;
        if (m[k].a.dims.output_features > most.output_features)
        {
            most = m[k].a.dims;
        }
    }
    input = read_array(checked_count(batches) * checked_count(m[0].a.dims.input_features));
    pctx = fc_batch_ctx(&ctx, ctx_mode, &most, &scratch);
    status = nsn_fully_connected_batch_multi_s8(pctx, ops, num_ops, batches, input, outputs);
    all = alloc_exact(checked_count(total));
    for (k = 0, total = 0; k < num_ops; ++k)
    {
        const int32_t n = batches * m[k].a.dims.output_features;
        memcpy(all + total, m[k].output, (size_t)n);
        total += n;
        free_fc_batch_args(&m[k].a);
        free(m[k].records);
        free(m[k].weights);
        free(m[k].output);
    }
    reply(status, status == NSN_OK ? total : 0, all, status == NSN_OK ? (size_t)total : 0);
    free(all);
    free(input);
    free(scratch);
}

static void run_kernels_path(void)
{
    const char *path = NSN_KERNELS_PATH;
    reply(NSN_OK, (int32_t)strlen(path), path, strlen(path));
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
        die("usage: harness [IN OUT]");
    }
    while (fread(&op, sizeof op, 1, s_in) == 1)
    {
        switch (op)
        {
        case OP_FULLY_CONNECTED:
            run_fully_connected(CTX_EXACT, 0, 0);
            break;
        case OP_FC_CTX:
        case OP_FC_S4_CTX:
        {
            const int32_t ctx_mode = read_i32();
            const int32_t misalign = read_i32();
            run_fully_connected(ctx_mode, misalign, op == OP_FC_S4_CTX);
            break;
        }
        case OP_FC_BATCH:
            run_fc_batch();
            break;
        case OP_FC_BATCH_PREPARE:
            run_fc_batch_prepare();
            break;
        case OP_FC_BATCH_MULTI:
            run_fc_batch_multi();
            break;
        case OP_KERNELS_PATH:
            run_kernels_path();
            break;
        case OP_ADD:
        case OP_SUB:
        case OP_MUL:
            run_binary(op);
            break;
        case OP_LUT:
            run_lut();
            break;
        case OP_REQUANTIZE:
            run_requantize();
            break;
        case OP_REQUANTIZE_SCALAR:
            run_requantize_scalar();
            break;
        case OP_FC_BUFFER_SIZE:
        case OP_FC_S4_BUFFER_SIZE:
            run_fc_buffer_size(op == OP_FC_S4_BUFFER_SIZE);
            break;
        case OP_GRU_GATES:
            run_gru_gates();
            break;
        default:
            die("unknown op");
        }
    }
    if (s_out != stdout && fclose(s_out) != 0)
    {
        die("cannot write the reply file");
    }
    return 0;
}
