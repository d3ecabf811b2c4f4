/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nsn_app_util.h: two helpers of the firmware's streaming code, header only (static), shared
 * by nsn_stream.c and nsn_app_main.c (nsNet2) and gtcrn_app/nsn_gtcrn_app.c (GTCRN):
 *
 *   NSN_STACK_BEGIN() / NSN_STACK_END(top)   the network's stack peak: with -DNSN_STACK_PROBE
 *       on Cortex-M, paint the free stack below the stack pointer, run the step, then find
 *       the lowest word it changed (outside the counted region, so the counts are
 *       unaffected); elsewhere 0.
 *   nsn_u64_text(value, buf)                 decimal text of a 64-bit count (newlib's printf
 *       may lack %llu).
 */
#ifndef NSN_APP_UTIL_H
#define NSN_APP_UTIL_H

#include <stdint.h>

#if defined(NSN_STACK_PROBE) && defined(__arm__)
#define NSN_STACK_PAINT 0xA5C3E187u
#define NSN_STACK_PROBE_DEPTH 32768u
extern uint32_t __stack_limit; /* nsn_sections.ld */

static inline uintptr_t stack_pointer(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

static __attribute__((unused)) uintptr_t stack_floor(uintptr_t top)
{
    const uintptr_t limit = (uintptr_t)&__stack_limit;
    return (top - limit > NSN_STACK_PROBE_DEPTH ? top - NSN_STACK_PROBE_DEPTH : limit) &
           ~(uintptr_t)3u;
}

/* Paints [floor, own stack pointer); a leaf, so nothing of it lies below its own sp. */
static __attribute__((noinline, unused)) void stack_paint(void)
{
    const uintptr_t top = stack_pointer() & ~(uintptr_t)3u;
    volatile uint32_t *p = (volatile uint32_t *)stack_floor(top);
    while ((uintptr_t)p < top)
    {
        *p++ = NSN_STACK_PAINT;
    }
}

/* Bytes from `top` (the caller's stack pointer) down to the lowest changed word. */
static __attribute__((noinline, unused)) uint32_t stack_peak(uintptr_t top)
{
    const volatile uint32_t *p = (const volatile uint32_t *)stack_floor(top);
    while ((uintptr_t)p < top && *p == NSN_STACK_PAINT)
    {
        ++p;
    }
    return (uint32_t)(top - (uintptr_t)p);
}
#define NSN_STACK_BEGIN() (stack_paint(), stack_pointer())
#define NSN_STACK_END(top) stack_peak(top)
#else
#define NSN_STACK_BEGIN() ((uintptr_t)0)
#define NSN_STACK_END(top) ((void)(top), 0u)
#endif

/* Decimal text of a 64-bit count in buf (21 chars); returns its start. */
static inline const char *nsn_u64_text(uint64_t value, char buf[21])
{
    char *p = buf + 20;
    *p = '\0';
    do
    {
        *--p = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0);
    return p;
}

#endif /* NSN_APP_UTIL_H */
