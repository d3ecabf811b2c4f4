/* SPDX-License-Identifier: Apache-2.0 */
#include "nsn_semihost.h"

#include <stdint.h>

/* Operation numbers and reason codes from "Semihosting for AArch32 and AArch64", v2.0. */
#define SYS_WRITE0 0x04
#define SYS_GET_CMDLINE 0x15
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN 0x20023

static uintptr_t semihost_call(uintptr_t op, uintptr_t arg)
{
    register uintptr_t r0 __asm__("r0") = op;
    register uintptr_t r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void nsn_semihost_write0(const char *text)
{
    (void)semihost_call(SYS_WRITE0, (uintptr_t)text);
}

int nsn_semihost_get_cmdline(char *buf, unsigned size)
{
    uint32_t block[2] = {(uint32_t)(uintptr_t)buf, size};
    if (size == 0)
    {
        return -1;
    }
    buf[0] = '\0';
    return semihost_call(SYS_GET_CMDLINE, (uintptr_t)block) == 0 ? 0 : -1;
}

void nsn_semihost_exit(int status)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    (void)semihost_call(SYS_EXIT_EXTENDED, (uintptr_t)block);
    /* Only reached if SYS_EXIT_EXTENDED is unsupported: plain SYS_EXIT takes the reason
     * itself (not a pointer) on 32-bit targets and can only say success or failure. */
    (void)semihost_call(SYS_EXIT, status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                              : ADP_STOPPED_RUN_TIME_ERROR_UNKNOWN);
    for (;;)
    {
    }
}
