/* The camera's MJPEG decoding (capture_mjpeg_decode) on arbitrary
 * buffers: into a frame of the stream's size (the seeds' 32x24), and into
 * one of the size the buffer's own header gives, when it has one.
 * It decodes (0) or says -EBADMSG, never writes outside the frame, and
 * refuses a JPEG of another size than the frame's. */
#include <errno.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "capture-priv.h"
#include "fuzz-util.h"

#define STREAM_W 32
#define STREAM_H 24
#define MAX_PIXELS (1 << 20) /* larger headers: not decoded (time) */

/* same: the buffer's header says w x h. */
static void decode_at(tjhandle tj, const uint8_t *data, size_t size, int w, int h, int same)
{
	uint8_t *rgba = malloc((size_t)w * h * 4);
	int r;

	FUZZ_CHECK(rgba);
	r = capture_mjpeg_decode(tj, data, size, w, h, rgba, w * 4);
	FUZZ_CHECK(r == 0 || r == -EBADMSG);
	FUZZ_CHECK(same || r == -EBADMSG);
	free(rgba);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tjhandle tj;
	int w = 0, h = 0, subsamp, colorspace, header; /* a stream without a frame leaves them */

	if (!tj)
		tj = tjInitDecompress();
	FUZZ_CHECK(tj);
	header = tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &subsamp,
				     &colorspace) == 0;
	decode_at(tj, data, size, STREAM_W, STREAM_H, header && w == STREAM_W && h == STREAM_H);
	if (header && w > 0 && h > 0 && (long)w * h <= MAX_PIXELS &&
	    (w != STREAM_W || h != STREAM_H))
		decode_at(tj, data, size, w, h, 1);
	return 0;
}
