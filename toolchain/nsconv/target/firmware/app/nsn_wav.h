/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal wav file I/O over C stdio (semihosting on the boards, the file system on the
 * host): mono 16-bit PCM at the front end's rate (NSN_FRONTEND_SAMPLE_RATE, 16 kHz by
 * default) only, which is what nsn_stream consumes and produces.
 */
#ifndef NSN_WAV_H
#define NSN_WAV_H

#include <stdint.h>
#include <stdio.h>

/*
 * Reads the RIFF header of f and leaves f at the first PCM sample. Returns the number of
 * samples, or -1 with a reason in *error if the file is not mono 16-bit PCM wav at the
 * front end's rate.
 */
long nsn_wav_read_header(FILE *f, const char **error);

/* Reads up to n samples (little-endian int16) into out, zero padding past the end of the
 * data; *left counts the samples still unread. Returns the samples actually read. */
uint32_t nsn_wav_read(FILE *f, uint32_t *left, int16_t *out, uint32_t n);

/* Writes the header of a mono 16-bit PCM wav at the front end's rate holding `samples`
 * samples; 0 on success. */
int nsn_wav_write_header(FILE *f, uint32_t samples);

/* Writes n samples (little-endian int16); 0 on success. */
int nsn_wav_write(FILE *f, const int16_t *samples, uint32_t n);

#endif /* NSN_WAV_H */
