/* SPDX-License-Identifier: Apache-2.0 */
/* The few Cortex-M system registers the board layer touches (ARMv7-M / ARMv8-M). */
#ifndef NSN_CORTEXM_H
#define NSN_CORTEXM_H

#include <stdint.h>

#define NSN_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System control block */
#define NSN_SCB_ICSR NSN_REG32(0xE000ED04u)  /* interrupt control and state */
#define NSN_SCB_VTOR NSN_REG32(0xE000ED08u)  /* vector table offset */
#define NSN_SCB_CCR NSN_REG32(0xE000ED14u)   /* configuration and control */
#define NSN_SCB_SHCSR NSN_REG32(0xE000ED24u) /* system handler control and state */
#define NSN_SCB_CFSR NSN_REG32(0xE000ED28u)  /* configurable fault status */
#define NSN_SCB_HFSR NSN_REG32(0xE000ED2Cu)  /* HardFault status */
#define NSN_SCB_MMFAR NSN_REG32(0xE000ED34u) /* MemManage fault address */
#define NSN_SCB_BFAR NSN_REG32(0xE000ED38u)  /* BusFault address */
#define NSN_SCB_CPACR NSN_REG32(0xE000ED88u) /* coprocessor access control */
#define NSN_SCB_DEMCR NSN_REG32(0xE000EDFCu) /* debug exception and monitor control */

#define NSN_ICSR_PENDSTSET (1u << 26)
#define NSN_CCR_DIV_0_TRP (1u << 4)
#define NSN_SHCSR_MEMFAULTENA (1u << 16)
#define NSN_SHCSR_BUSFAULTENA (1u << 17)
#define NSN_SHCSR_USGFAULTENA (1u << 18)
#define NSN_SHCSR_SECUREFAULTENA (1u << 19) /* ARMv8-M with the Security Extension */
#define NSN_DEMCR_TRCENA (1u << 24)

/* SysTick: 24-bit down counter */
#define NSN_SYST_CSR NSN_REG32(0xE000E010u)
#define NSN_SYST_RVR NSN_REG32(0xE000E014u)
#define NSN_SYST_CVR NSN_REG32(0xE000E018u)
#define NSN_SYST_CSR_ENABLE (1u << 0)
#define NSN_SYST_CSR_TICKINT (1u << 1)
#define NSN_SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define NSN_SYST_MAX 0x00FFFFFFu

/* Data watchpoint and trace unit: cycle counter */
#define NSN_DWT_CTRL NSN_REG32(0xE0001000u)
#define NSN_DWT_CYCCNT NSN_REG32(0xE0001004u)
#define NSN_DWT_LAR NSN_REG32(0xE0001FB0u) /* lock access (Cortex-M7) */
#define NSN_DWT_CTRL_CYCCNTENA (1u << 0)
#define NSN_DWT_LAR_KEY 0xC5ACCE55u

/* ARMv8-M Security Extension: SecureFault status and address */
#define NSN_SAU_SFSR NSN_REG32(0xE000EDE4u)
#define NSN_SAU_SFAR NSN_REG32(0xE000EDE8u)

#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define NSN_ARMV8M_MAIN 1
#else
#define NSN_ARMV8M_MAIN 0
#endif

static inline uint32_t nsn_read_ipsr(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    return ipsr;
}

#endif /* NSN_CORTEXM_H */
