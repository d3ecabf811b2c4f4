/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal Arm semihosting calls (BKPT 0xAB on M-profile) for code that must not depend on
 * the C library: the fault handler and the start-up code. Everything else (printf, fopen,
 * exit) goes through newlib's librdimon, which uses the same mechanism.
 */
#ifndef NSN_SEMIHOST_H
#define NSN_SEMIHOST_H

/* Writes a NUL-terminated string to the debugger console (SYS_WRITE0). */
void nsn_semihost_write0(const char *text);

/* Reads the program's command line (SYS_GET_CMDLINE) into buf, NUL-terminated; returns 0 on
 * success. QEMU passes the -kernel file name followed by the -append text. */
int nsn_semihost_get_cmdline(char *buf, unsigned size);

/*
 * Ends the program with this exit status (SYS_EXIT_EXTENDED, ADP_Stopped_ApplicationExit);
 * QEMU exits with the same status. Falls back to SYS_EXIT (status 0 or 1) if the debugger
 * does not know the extended call. Does not return.
 */
void nsn_semihost_exit(int status) __attribute__((noreturn));

#endif /* NSN_SEMIHOST_H */
