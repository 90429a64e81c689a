/* One MJPEG frame of a camera into RGBA (TurboJPEG). */
#include "capture-priv.h"

#include <errno.h>
#include <turbojpeg.h>

int capture_mjpeg_decode(void *tj, const uint8_t *src, size_t len, int width,
			 int height, uint8_t *rgba, int stride)
{
	int w = 0, h = 0, subsamp, colorspace; /* (left as they are by a header cut short) */

	if (tjDecompressHeader3(tj, src, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0)
		return -EBADMSG;
	/* TurboJPEG would scale another size down to fit, or fill only part
	 * of the frame: either way not this stream's frame */
	if (w != width || h != height)
		return -EBADMSG;
	/* Cameras send frames cut short: what could be decoded is kept. */
	if (tjDecompress2(tj, src, (unsigned long)len, rgba, width, stride, height,
			  TJPF_RGBA, 0) != 0 && tjGetErrorCode(tj) == TJERR_FATAL)
		return -EBADMSG;
	return 0;
}
