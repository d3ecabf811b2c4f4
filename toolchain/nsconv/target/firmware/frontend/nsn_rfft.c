/* SPDX-License-Identifier: Apache-2.0 */
/*
 * N-point real FFT (N = NSN_RFFT_N): an N/2-point decimation-in-time complex FFT whose
 * radix-2, 3, 4 and 5 stages are listed by the generated NSN_RFFT_STAGES (for N = 320:
 * radix 4, 4, 2, 5), plus the usual even/odd split between a real 2M-point and a complex
 * M-point transform. Only the stages a size uses are compiled. Every constant comes from
 * nsn_frontend_tables.c (hex-float literals), and the arithmetic is float32 +, -, * only, so
 * results do not depend on the C library.
 */
#include "nsn_rfft.h"

#include <stddef.h>

static nsn_complex cadd(nsn_complex a, nsn_complex b)
{
    nsn_complex r = {a.re + b.re, a.im + b.im};
    return r;
}

static nsn_complex csub(nsn_complex a, nsn_complex b)
{
    nsn_complex r = {a.re - b.re, a.im - b.im};
    return r;
}

static nsn_complex cmul(nsn_complex a, nsn_complex b)
{
    nsn_complex r = {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
    return r;
}

/* a * conj(b) */
static nsn_complex cmulconj(nsn_complex a, nsn_complex b)
{
    nsn_complex r = {a.re * b.re + a.im * b.im, a.im * b.re - a.re * b.im};
    return r;
}

static nsn_complex cscale(nsn_complex a, float s)
{
    nsn_complex r = {a.re * s, a.im * s};
    return r;
}

/* t - i*u and t + i*u */
static nsn_complex sub_times_i(nsn_complex t, nsn_complex u)
{
    nsn_complex r = {t.re + u.im, t.im - u.re};
    return r;
}

static nsn_complex add_times_i(nsn_complex t, nsn_complex u)
{
    nsn_complex r = {t.re - u.im, t.im + u.re};
    return r;
}

#if NSN_RFFT_RADIX2
static void butterfly2(nsn_complex a[2])
{
    const nsn_complex y0 = cadd(a[0], a[1]);
    const nsn_complex y1 = csub(a[0], a[1]);
    a[0] = y0;
    a[1] = y1;
}
#endif

#if NSN_RFFT_RADIX3
/*
 * Forward 3-point DFT. With W3 = -1/2 - i s, s = sin(120 deg) = -W_N^(N/3).im:
 *   y0 = a0 + (a1 + a2),  y1,2 = a0 - (a1 + a2) / 2 -/+ i s (a1 - a2)
 */
static void butterfly3(nsn_complex a[3])
{
    const float s = -nsn_rfft_twiddle[NSN_RFFT_N / 3].im;
    const nsn_complex b = cadd(a[1], a[2]);
    const nsn_complex d = cscale(csub(a[1], a[2]), s);
    const nsn_complex t = csub(a[0], cscale(b, 0.5f));
    a[0] = cadd(a[0], b);
    a[1] = sub_times_i(t, d);
    a[2] = add_times_i(t, d);
}
#endif

#if NSN_RFFT_RADIX4
/* Forward 4-point DFT: W4 = -i. */
static inline __attribute__((always_inline)) void butterfly4(nsn_complex a[4])
{
    const nsn_complex s02 = cadd(a[0], a[2]);
    const nsn_complex d02 = csub(a[0], a[2]);
    const nsn_complex s13 = cadd(a[1], a[3]);
    const nsn_complex d13 = csub(a[1], a[3]);
    a[0] = cadd(s02, s13);
    a[1] = sub_times_i(d02, d13);
    a[2] = csub(s02, s13);
    a[3] = add_times_i(d02, d13);
}
#endif

/*
 * Forward 5-point DFT. With W5^k = cos(2 pi k/5) - i sin(2 pi k/5):
 *   y1,4 = a0 + c1 (a1+a4) + c2 (a2+a3) -/+ i [s1 (a1-a4) + s2 (a2-a3)]
 *   y2,3 = a0 + c2 (a1+a4) + c1 (a2+a3) -/+ i [s2 (a1-a4) - s1 (a2-a3)]
 * c1, s1 = cos, sin(72 deg) = W_N^(N/5); c2, s2 = cos, sin(144 deg) = W_N^(2N/5).
 */
#if NSN_RFFT_RADIX5
static void butterfly5(nsn_complex a[5])
{
    const float c1 = nsn_rfft_twiddle[NSN_RFFT_N / 5].re;
    const float s1 = -nsn_rfft_twiddle[NSN_RFFT_N / 5].im;
    const float c2 = nsn_rfft_twiddle[2 * NSN_RFFT_N / 5].re;
    const float s2 = -nsn_rfft_twiddle[2 * NSN_RFFT_N / 5].im;
    const nsn_complex b1 = cadd(a[1], a[4]);
    const nsn_complex b2 = cadd(a[2], a[3]);
    const nsn_complex d1 = csub(a[1], a[4]);
    const nsn_complex d2 = csub(a[2], a[3]);
    const nsn_complex t1 = cadd(a[0], cadd(cscale(b1, c1), cscale(b2, c2)));
    const nsn_complex t2 = cadd(a[0], cadd(cscale(b1, c2), cscale(b2, c1)));
    const nsn_complex u1 = cadd(cscale(d1, s1), cscale(d2, s2));
    const nsn_complex u2 = csub(cscale(d1, s2), cscale(d2, s1));
    a[0] = cadd(a[0], cadd(b1, b2));
    a[1] = sub_times_i(t1, u1);
    a[2] = sub_times_i(t2, u2);
    a[3] = add_times_i(t2, u2);
    a[4] = add_times_i(t1, u1);
}
#endif

/*
 * One decimation-in-time stage: combines `radix` adjacent sub-transforms of length sub_len
 * into transforms of length len = radix * sub_len. For output group j of each block, input q
 * is first multiplied by W_len^(q j) = W_N^(q j N/len); q j < len keeps the index below
 * N. The loop over j is outside so that each twiddle is loaded once per stage.
 */
#if NSN_RFFT_RADIX2
static void stage_radix2(nsn_complex buf[NSN_RFFT_HALF], unsigned sub_len)
{
    const unsigned len = 2 * sub_len;
    const unsigned step = NSN_RFFT_N / len;
    unsigned j;
    unsigned base;
    for (j = 0; j < sub_len; ++j)
    {
        const nsn_complex w1 = nsn_rfft_twiddle[j * step];
        for (base = j; base < NSN_RFFT_HALF; base += len)
        {
            nsn_complex a[2];
            a[0] = buf[base];
            a[1] = buf[base + sub_len];
            if (j != 0)
            {
                a[1] = cmul(a[1], w1);
            }
            butterfly2(a);
            buf[base] = a[0];
            buf[base + sub_len] = a[1];
        }
    }
}
#endif

#if NSN_RFFT_RADIX3
static void stage_radix3(nsn_complex buf[NSN_RFFT_HALF], unsigned sub_len)
{
    const unsigned len = 3 * sub_len;
    const unsigned step = NSN_RFFT_N / len;
    unsigned j;
    unsigned base;
    for (j = 0; j < sub_len; ++j)
    {
        const nsn_complex w1 = nsn_rfft_twiddle[j * step];
        const nsn_complex w2 = nsn_rfft_twiddle[2 * j * step];
        for (base = j; base < NSN_RFFT_HALF; base += len)
        {
            nsn_complex a[3];
            a[0] = buf[base];
            a[1] = buf[base + sub_len];
            a[2] = buf[base + 2 * sub_len];
            if (j != 0)
            {
                a[1] = cmul(a[1], w1);
                a[2] = cmul(a[2], w2);
            }
            butterfly3(a);
            buf[base] = a[0];
            buf[base + sub_len] = a[1];
            buf[base + 2 * sub_len] = a[2];
        }
    }
}
#endif

#if NSN_RFFT_RADIX4
/*
 * On a core with a single-precision FPU, in an optimized build, the radix-4 butterfly is
 * written out in assembly only to move each complex value with one 64-bit VLDR/VSTR (GCC
 * loads the two floats one by one). The arithmetic is the C's below, operation for
 * operation and operand for operand (cmul, then butterfly4), so the bits are the same; the
 * tests compare every core with the host build.
 */
#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__) && defined(__OPTIMIZE__)
#define RADIX4_ASM 1
/* a.re, a.im *= (wr + i wi) in place, t0..t3 scratch: cmul's products and sums in order */
#define ASM_CMUL(re, im, wr, wi)                                                                \
    "vmul.f32 s8, " re ", %[" wr "]\n\t"                                                       \
    "vmul.f32 s9, " im ", %[" wi "]\n\t"                                                       \
    "vmul.f32 s10, " re ", %[" wi "]\n\t"                                                      \
    "vmul.f32 s11, " im ", %[" wr "]\n\t"                                                      \
    "vsub.f32 " re ", s8, s9\n\t"                                                               \
    "vadd.f32 " im ", s10, s11\n\t"
/* butterfly4 on a0 = s0,s1 .. a3 = s6,s7, results in place (s8..s15 scratch) */
#define ASM_BUTTERFLY4                                                                          \
    "vadd.f32 s8, s0, s4\n\t"   /* s02 */                                                      \
    "vadd.f32 s9, s1, s5\n\t"                                                                  \
    "vsub.f32 s10, s0, s4\n\t"  /* d02 */                                                      \
    "vsub.f32 s11, s1, s5\n\t"                                                                 \
    "vadd.f32 s12, s2, s6\n\t"  /* s13 */                                                      \
    "vadd.f32 s13, s3, s7\n\t"                                                                 \
    "vsub.f32 s14, s2, s6\n\t"  /* d13 */                                                      \
    "vsub.f32 s15, s3, s7\n\t"                                                                 \
    "vadd.f32 s0, s8, s12\n\t"  /* s02 + s13 */                                                \
    "vadd.f32 s1, s9, s13\n\t"                                                                 \
    "vadd.f32 s2, s10, s15\n\t" /* d02 - i d13 */                                              \
    "vsub.f32 s3, s11, s14\n\t"                                                                \
    "vsub.f32 s4, s8, s12\n\t"  /* s02 - s13 */                                                \
    "vsub.f32 s5, s9, s13\n\t"                                                                 \
    "vsub.f32 s6, s10, s15\n\t" /* d02 + i d13 */                                              \
    "vadd.f32 s7, s11, s14\n\t"
#define ASM_LOAD4 "vldr d0, [%[p0]]\n\tvldr d1, [%[p0], #%c[o]]\n\t"                        \
                  "vldr d2, [%[p2]]\n\tvldr d3, [%[p2], #%c[o]]\n\t"
#define ASM_STORE4 "vstr d0, [%[p0]]\n\tvstr d1, [%[p0], #%c[o]]\n\t"                       \
                   "vstr d2, [%[p2]]\n\tvstr d3, [%[p2], #%c[o]]"
#define ASM_CLOBBERS "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",     \
                     "s10", "s11", "s12", "s13", "s14", "s15"
#endif

/* The radix-4 butterfly on p[0], p[s], p[2 s], p[3 s], the last three first multiplied by
 * w1, w2, w3 (twiddled) or not (the j = 0 group). */
static inline __attribute__((always_inline)) void radix4_at(nsn_complex *p, unsigned s,
                                                           const nsn_complex *w, int twiddled)
{
    nsn_complex a[4];
#ifdef RADIX4_ASM
    if (__builtin_constant_p(s) && 8 * s <= 1020)
    {
        if (twiddled)
        {
            __asm(ASM_LOAD4 ASM_CMUL("s2", "s3", "w1r", "w1i") ASM_CMUL("s4", "s5", "w2r", "w2i")
                      ASM_CMUL("s6", "s7", "w3r", "w3i") ASM_BUTTERFLY4 ASM_STORE4
                  :
                  : [p0] "r"(p), [p2] "r"(p + 2 * s), [o] "i"(8 * s), [w1r] "t"(w[0].re),
                    [w1i] "t"(w[0].im), [w2r] "t"(w[1].re), [w2i] "t"(w[1].im),
                    [w3r] "t"(w[2].re), [w3i] "t"(w[2].im)
                  : ASM_CLOBBERS);
        }
        else
        {
            __asm(ASM_LOAD4 ASM_BUTTERFLY4 ASM_STORE4
                  :
                  : [p0] "r"(p), [p2] "r"(p + 2 * s), [o] "i"(8 * s)
                  : ASM_CLOBBERS);
        }
        return;
    }
#endif
    a[0] = p[0];
    a[1] = p[s];
    a[2] = p[2 * s];
    a[3] = p[3 * s];
    if (twiddled)
    {
        a[1] = cmul(a[1], w[0]);
        a[2] = cmul(a[2], w[1]);
        a[3] = cmul(a[3], w[2]);
    }
    butterfly4(a);
    p[0] = a[0];
    p[s] = a[1];
    p[2 * s] = a[2];
    p[3 * s] = a[3];
}

/* Inlined into the plan, so that sub_len is a constant: fixed offsets, no division. The
 * j = 0 group (no twiddle) is its own loop. */
static inline __attribute__((always_inline)) void stage_radix4(nsn_complex buf[NSN_RFFT_HALF],
                                                              unsigned sub_len)
{
    const unsigned len = 4 * sub_len;
    const unsigned step = NSN_RFFT_N / len;
    nsn_complex *const end = buf + NSN_RFFT_HALF;
    nsn_complex *p;
    unsigned j;
    for (p = buf; p < end; p += len)
    {
        radix4_at(p, sub_len, NULL, 0);
    }
    for (j = 1; j < sub_len; ++j)
    {
        nsn_complex w[3];
        w[0] = nsn_rfft_twiddle[j * step];
        w[1] = nsn_rfft_twiddle[2 * j * step];
        w[2] = nsn_rfft_twiddle[3 * j * step];
        if (len == NSN_RFFT_HALF) /* one block (the last stage): no inner loop */
        {
            radix4_at(buf + j, sub_len, w, 1);
            continue;
        }
        for (p = buf + j; p < end; p += len)
        {
            radix4_at(p, sub_len, w, 1);
        }
    }
}
#endif

#if NSN_RFFT_RADIX5
static void stage_radix5(nsn_complex buf[NSN_RFFT_HALF], unsigned sub_len)
{
    const unsigned len = 5 * sub_len;
    const unsigned step = NSN_RFFT_N / len;
    unsigned j;
    unsigned base;
    for (j = 0; j < sub_len; ++j)
    {
        const nsn_complex w1 = nsn_rfft_twiddle[j * step];
        const nsn_complex w2 = nsn_rfft_twiddle[2 * j * step];
        const nsn_complex w3 = nsn_rfft_twiddle[3 * j * step];
        const nsn_complex w4 = nsn_rfft_twiddle[4 * j * step];
        for (base = j; base < NSN_RFFT_HALF; base += len)
        {
            nsn_complex a[5];
            a[0] = buf[base];
            a[1] = buf[base + sub_len];
            a[2] = buf[base + 2 * sub_len];
            a[3] = buf[base + 3 * sub_len];
            a[4] = buf[base + 4 * sub_len];
            if (j != 0)
            {
                a[1] = cmul(a[1], w1);
                a[2] = cmul(a[2], w2);
                a[3] = cmul(a[3], w3);
                a[4] = cmul(a[4], w4);
            }
            butterfly5(a);
            buf[base] = a[0];
            buf[base + sub_len] = a[1];
            buf[base + 2 * sub_len] = a[2];
            buf[base + 3 * sub_len] = a[3];
            buf[base + 4 * sub_len] = a[4];
        }
    }
}
#endif

void nsn_cfft_stages(nsn_complex buf[NSN_RFFT_HALF])
{
    /* The generated plan (first to last); gen_tables.py derives the load order from it. */
    NSN_RFFT_STAGES(buf);
}

/*
 * Split: with Z = FFT_{N/2}(z), M = N/2, the transforms of the even and odd samples are
 *   E[k] = (Z[k] + conj Z[M-k]) / 2,  O[k] = (Z[k] - conj Z[M-k]) / (2i),
 * and X[k] = E[k] + W_N^k O[k] for k = 0..M (Z[M] = Z[0]).
 */
static void forward_split(const nsn_complex z[NSN_RFFT_HALF], nsn_complex out[NSN_RFFT_BINS])
{
    unsigned k;
    out[0].re = z[0].re + z[0].im;
    out[0].im = 0.0f;
    out[NSN_RFFT_HALF].re = z[0].re - z[0].im;
    out[NSN_RFFT_HALF].im = 0.0f;
    for (k = 1; k < NSN_RFFT_HALF; ++k)
    {
        const nsn_complex a = z[k];
        const nsn_complex b = {z[NSN_RFFT_HALF - k].re, -z[NSN_RFFT_HALF - k].im};
        const nsn_complex even = cscale(cadd(a, b), 0.5f);
        const nsn_complex half_diff = cscale(csub(a, b), 0.5f);
        const nsn_complex odd = {half_diff.im, -half_diff.re}; /* divide by i */
        out[k] = cadd(even, cmul(odd, nsn_rfft_twiddle[k]));
    }
}

void nsn_rfft_forward(const float in[NSN_RFFT_N], nsn_complex out[NSN_RFFT_BINS],
                      nsn_complex scratch[NSN_RFFT_HALF])
{
    nsn_complex *z = scratch;
    unsigned p;

    /* z[n] = x[2n] + i x[2n+1], loaded in decimation-in-time order */
    for (p = 0; p < NSN_RFFT_HALF; ++p)
    {
        const unsigned n = nsn_rfft_input_order[p];
        z[p].re = in[2 * n];
        z[p].im = in[2 * n + 1];
    }
    nsn_cfft_stages(z);
    forward_split(z, out);
}

void nsn_rfft_forward_windowed(const float in[NSN_RFFT_N], const float window[NSN_RFFT_N],
                               nsn_complex out[NSN_RFFT_BINS], nsn_complex scratch[NSN_RFFT_HALF])
{
    nsn_complex *z = scratch;
    unsigned p;

    /* as nsn_rfft_forward, each sample multiplied by its window value as it is loaded */
    for (p = 0; p < NSN_RFFT_HALF; ++p)
    {
        const unsigned n2 = 2u * nsn_rfft_input_order[p];
        const float *x = in + n2;
        const float *v = window + n2;
        z[p].re = x[0] * v[0];
        z[p].im = x[1] * v[1];
    }
    nsn_cfft_stages(z);
    forward_split(z, out);
}

/* 2 E[k] + i 2 O[k] as nsn_rfft_inverse_packed loads it, conjugated (see there) */
static nsn_complex inverse_unsplit(nsn_complex a, nsn_complex b, unsigned k)
{
    const nsn_complex even2 = cadd(a, b);
    const nsn_complex odd2 = cmulconj(csub(a, b), nsn_rfft_twiddle[k]);
    /* conj(even2 + i odd2) */
    const nsn_complex r = {even2.re - odd2.im, -(even2.im + odd2.re)};
    return r;
}

void nsn_rfft_inverse_packed(const nsn_complex in[NSN_RFFT_BINS],
                             nsn_complex scratch[NSN_RFFT_HALF])
{
    nsn_complex *w = scratch;
    unsigned p;

    /*
     * Undo the split: 2 E[k] = X[k] + conj X[M-k], 2 O[k] = (X[k] - conj X[M-k]) W_N^-k,
     * and Z = 2E + i 2O is twice the M-point spectrum of z[n] = x[2n] + i x[2n+1]. The
     * inverse FFT is computed as conj(FFT(conj Z)), so conj Z is loaded, already in
     * decimation-in-time order (its first entry is k = 0, where numpy ignores the imaginary
     * parts of the DC and Nyquist bins).
     */
    {
        const nsn_complex dc = {in[0].re, 0.0f};
        const nsn_complex nyquist = {in[NSN_RFFT_HALF].re, 0.0f};
        w[0] = inverse_unsplit(dc, nyquist, 0);
    }
    for (p = 1; p < NSN_RFFT_HALF; ++p)
    {
        const unsigned k = nsn_rfft_input_order[p];
        const nsn_complex b = {in[NSN_RFFT_HALF - k].re, -in[NSN_RFFT_HALF - k].im};
        w[p] = inverse_unsplit(in[k], b, k);
    }
    nsn_cfft_stages(w);
}

void nsn_rfft_inverse_unscaled(const nsn_complex in[NSN_RFFT_BINS], float out[NSN_RFFT_N],
                               nsn_complex scratch[NSN_RFFT_HALF])
{
    const nsn_complex *w = scratch;
    unsigned n;
    nsn_rfft_inverse_packed(in, scratch);
    /* conj(w) = N z: even samples in .re, odd ones in .im (the 1/N is the caller's) */
    for (n = 0; n < NSN_RFFT_HALF; ++n)
    {
        out[2 * n] = w[n].re;
        out[2 * n + 1] = -w[n].im;
    }
}

int nsn_rfft_fp_contract_off(void)
{
    /*
     * (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24 rounds (tie to even) to 1 + 2^-11 in float, so
     * a * a + c is exactly 0 when the product is rounded, and 2^-24 when fused. volatile
     * keeps the compiler from folding it at build time.
     */
    volatile float a = 0x1.001p+0f;
    volatile float c = -0x1.002p+0f;
    const float x = a;
    const float y = c;
    return x * x + y == 0.0f;
}
