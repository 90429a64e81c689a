/* An LD_PRELOAD shim for the facetd-output-faults scenario: while the file
 * named by $REFUSE_QBUF exists, VIDIOC_QBUF of an output buffer fails with
 * EIO, as a driver refusing frames does. v4l2loopback has no error
 * injection of its own (vivid's refused QBUF is on its capture side);
 * every other call, and every accepted frame, goes to the real driver.
 */
#include <dlfcn.h>
#include <errno.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* exported: the project builds with hidden visibility */
__attribute__((visibility("default"))) int ioctl(int fd, unsigned long request, ...);

static int refusing(unsigned long request, void *arg)
{
	const char *flag = getenv("REFUSE_QBUF");

	return request == VIDIOC_QBUF && arg &&
	       ((struct v4l2_buffer *)arg)->type == V4L2_BUF_TYPE_VIDEO_OUTPUT && flag &&
	       access(flag, F_OK) == 0;
}

int ioctl(int fd, unsigned long request, ...)
{
	static int (*real)(int, unsigned long, ...);
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	if (refusing(request, arg)) {
		errno = EIO;
		return -1;
	}
	return real(fd, request, arg);
}
