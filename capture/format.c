/* Camera pixel formats: their names and which one a camera is asked for. */
#include "capture-priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const names[] = {
	[CAPTURE_FORMAT_AUTO] = "auto",
	[CAPTURE_FORMAT_YUYV] = "yuyv",
	[CAPTURE_FORMAT_MJPEG] = "mjpeg",
	[CAPTURE_FORMAT_NV12] = "nv12",
};

#define N_NAMES (sizeof(names) / sizeof(names[0]))

int capture_format_parse(const char *name, enum capture_format *out)
{
	for (size_t i = 0; name && i < N_NAMES; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (enum capture_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *capture_format_name(enum capture_format f)
{
	return (size_t)f < N_NAMES ? names[f] : "auto";
}

/* Higher is better; 0: not read. */
static int rank(enum capture_format f, int big)
{
	switch (f) {
	case CAPTURE_FORMAT_MJPEG: return big ? 3 : 1;
	case CAPTURE_FORMAT_YUYV: return big ? 2 : 3;
	case CAPTURE_FORMAT_NV12: return 2;
	default: return 0;
	}
}

enum capture_format capture_format_choose(const enum capture_format *listed, size_t n,
					  int width, int height, enum capture_format want)
{
	enum capture_format best = CAPTURE_FORMAT_AUTO;
	int big = (long)width * height > 640L * 480, best_rank = 0;

	for (size_t i = 0; i < n; i++)
		if (want != CAPTURE_FORMAT_AUTO && listed[i] == want)
			return want;
	for (size_t i = 0; i < n; i++)
		if (rank(listed[i], big) > best_rank) {
			best_rank = rank(listed[i], big);
			best = listed[i];
		}
	return best;
}

void capture_format_list(const enum capture_format *listed, size_t n, char *buf, size_t len)
{
	unsigned seen = 0;
	size_t used = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && used < len; i++) {
		if (listed[i] == CAPTURE_FORMAT_AUTO || (size_t)listed[i] >= N_NAMES ||
		    (seen & 1u << listed[i]))
			continue;
		seen |= 1u << listed[i];
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
					 names[listed[i]]);
	}
}
