/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fault handler: prints the exception, the faulting PC/LR and the fault status registers over
 * semihosting, then exits with NSN_PORT_FAULT_EXIT_STATUS, so that a crash under QEMU is a
 * failing exit status rather than a hang. Uses no C library function (the heap or stdio may
 * be what is broken).
 */
#include <stdint.h>

#include "nsn_cortexm.h"
#include "nsn_port.h"
#include "nsn_semihost.h"

void nsn_fault_entry(void) __attribute__((naked));
void nsn_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

/* Passes the stacked exception frame (MSP or PSP, from EXC_RETURN bit 2) and EXC_RETURN. */
void nsn_fault_entry(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "mov r1, lr\n"
                     "b nsn_fault_report\n");
}

static const char *exception_name(uint32_t number)
{
    switch (number)
    {
    case 2:
        return "NMI";
    case 3:
        return "HardFault";
    case 4:
        return "MemManage";
    case 5:
        return "BusFault";
    case 6:
        return "UsageFault";
    case 7:
        return "SecureFault";
    case 11:
        return "SVCall";
    case 12:
        return "DebugMonitor";
    case 14:
        return "PendSV";
    default:
        return number >= 16 ? "IRQ" : "exception";
    }
}

static char *append(char *out, const char *text)
{
    while (*text != '\0')
    {
        *out++ = *text++;
    }
    return out;
}

static char *append_hex(char *out, const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    int shift;
    out = append(out, label);
    out = append(out, "0x");
    for (shift = 28; shift >= 0; shift -= 4)
    {
        *out++ = digits[(value >> shift) & 0xFu];
    }
    return out;
}

void nsn_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    char text[256];
    char *p = text;
    const uint32_t number = nsn_read_ipsr() & 0x1FFu;

    p = append(p, "\n*** ");
    p = append(p, exception_name(number));
    p = append_hex(p, " (exception ", number);
    /* frame: r0 r1 r2 r3 r12 lr pc xpsr */
    p = append_hex(p, "): PC=", frame[6]);
    p = append_hex(p, " LR=", frame[5]);
    p = append_hex(p, " EXC_RETURN=", exc_return);
    p = append_hex(p, "\n    CFSR=", NSN_SCB_CFSR);
    p = append_hex(p, " HFSR=", NSN_SCB_HFSR);
    p = append_hex(p, " MMFAR=", NSN_SCB_MMFAR);
    p = append_hex(p, " BFAR=", NSN_SCB_BFAR);
#if NSN_ARMV8M_MAIN
    p = append_hex(p, " SFSR=", NSN_SAU_SFSR);
#endif
    p = append(p, "\n");
    *p = '\0';
    nsn_semihost_write0(text);
    nsn_semihost_exit(NSN_PORT_FAULT_EXIT_STATUS);
}
