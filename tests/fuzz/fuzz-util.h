/* What the fuzz targets share: inputs as files, for the parsers that open
 * a path, and a check that makes libFuzzer report a broken promise. */
#ifndef FACETD_FUZZ_UTIL_H
#define FACETD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Writes data into the process's in-memory input file (created on the
 * first call, rewritten by each) and returns a path that opens it.
 * Aborts when that fails: no target can run without it. */
const char *fuzz_file(const uint8_t *data, size_t size);

_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* A property the code under test promises: abort (a finding) when false. */
#define FUZZ_CHECK(c)                                                         \
	do {                                                                  \
		if (!(c))                                                     \
			fuzz_fail(__FILE__, __LINE__, #c);                    \
	} while (0)

/* libFuzzer's entry point, defined by each target. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
