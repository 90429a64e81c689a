/* The YUV4MPEG2 source (capture_open("y4m:PATH"), then capture_read) on
 * arbitrary files, read to their end as fast as they go: at the file's own
 * frame size, and again scaled to a wanted size (--size).
 *
 * A refused file or frame comes with a message naming the source; a
 * broken frame header (-EBADMSG) is skipped and reading goes on; the end
 * is -ENODATA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "fuzz-util.h"

/* Frames larger than this are opened, not read (the input could not hold
 * one anyway) */
#define MAX_FRAME_BYTES (64u << 20)

static void read_all(struct capture *c, const char *name)
{
	const struct capture_info *info = capture_get_info(c);
	size_t bytes = (size_t)info->width * info->height * 4;
	struct capture_frame f = { .stride = info->width * 4 };
	char err[512];
	int r;

	if (bytes > MAX_FRAME_BYTES)
		return;
	f.rgba = malloc(bytes);
	FUZZ_CHECK(f.rgba);
	do {
		err[0] = 0;
		r = capture_read(c, &f, err, sizeof(err));
		FUZZ_CHECK(r == 0 || r == -ENODATA || strstr(err, name));
	} while (r == 0 || r == -EBADMSG);
	FUZZ_CHECK(r == -ENODATA);
	free(f.rgba);
}

static void open_and_read(const char *path, int want_w, int want_h)
{
	struct capture_params want = { .width = want_w, .height = want_h, .realtime = 0 };
	const struct capture_info *info;
	struct capture *c;
	char spec[96], err[512] = "";
	int r;

	snprintf(spec, sizeof(spec), "y4m:%s", path);
	r = capture_open(spec, &want, &c, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(c == NULL && strstr(err, path));
		return;
	}
	info = capture_get_info(c);
	FUZZ_CHECK(info->width > 0 && info->height > 0 && info->fps_num > 0 && info->fps_den > 0);
	FUZZ_CHECK(!want_w || (info->width == want_w && info->height == want_h));
	read_all(c, path);
	capture_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);

	open_and_read(path, 0, 0);
	open_and_read(path, 24, 18);
	return 0;
}
