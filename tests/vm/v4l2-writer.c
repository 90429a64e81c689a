/*
 * v4l2-writer: feeds frames into a V4L2 output device (v4l2loopback) through
 * libv4l2, mmap streaming, paced at a frame rate, looping over its input.
 *
 * The input is either a raw file of frames back to back (uncompressed
 * formats: each frame is bytesperline x height bytes, 1.5 times that for
 * the 4:2:0 formats; drivers may round sizeimage up, v4l2loopback to whole
 * pages) or a folder with one file per frame, taken in name order (any
 * format; MJPEG frames vary in size).
 *
 * --corrupt N sends every Nth frame (the Nth, the 2Nth, ...) corrupt, by
 * turns garbage of the frame's size (no JPEG marker in it) and the frame cut
 * to its first 64 bytes (a JPEG header cut short), each named on stdout: a
 * camera that delivers broken frames among good ones.
 *
 * --any-size (compressed formats): when the driver keeps another size (a
 * v4l2loopback device keeps its format while a reader holds it open), the
 * frames are sent into that format anyway: a camera whose frames change
 * their size under the reader.
 *
 * Stopped (SIGSTOP) and continued, it goes on at its frame rate from then
 * on rather than writing the frames it missed in a burst: a camera that
 * stalls for a while.
 *
 * Exit status: 0 when the frames were written or a signal (SIGTERM, SIGINT)
 * stopped it, 1 on failure, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "v4l2-util.h"

struct options {
	const char *device;
	const char *input;
	uint32_t fourcc;
	uint32_t width, height;
	unsigned int fps;
	unsigned int count;	/* frames to write; 0: until a signal */
	unsigned int buffers;
	unsigned int corrupt;	/* every Nth frame sent corrupt; 0: none */
	bool any_size;		/* frames sent into the size the driver keeps */
	const char *ready;	/* touched once streaming */
};

struct frames {
	uint8_t **data;		/* (n) frames */
	size_t *len;		/* (n) their sizes */
	unsigned int n;
	uint8_t *blob;		/* a raw input file, which data[] points into */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4l2-writer -d DEVICE -f FOURCC -s WxH -i FILE|DIR [-r FPS]\n"
		"                   [-n FRAMES] [-b BUFFERS] [--corrupt N] [--any-size]\n"
		"                   [--ready FILE]\n");
}

static int parse_uint(const char *s, unsigned int *v)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno || end == s || *end || x > 1000000)
		return -EINVAL;
	*v = (unsigned int)x;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "ready", required_argument, NULL, 'R' },
		{ "corrupt", required_argument, NULL, 'C' },
		{ "any-size", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r = 0;

	*o = (struct options){ .fps = 25, .buffers = 4 };
	while (r == 0 &&
	       (c = getopt_long(argc, argv, "d:f:s:i:r:n:b:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->device = optarg; break;
		case 'f': o->fourcc = vdev_fourcc(optarg); break;
		case 's': r = vdev_parse_size(optarg, &o->width, &o->height); break;
		case 'i': o->input = optarg; break;
		case 'r': r = parse_uint(optarg, &o->fps); break;
		case 'n': r = parse_uint(optarg, &o->count); break;
		case 'b': r = parse_uint(optarg, &o->buffers); break;
		case 'R': o->ready = optarg; break;
		case 'C': r = parse_uint(optarg, &o->corrupt); break;
		case 'A': o->any_size = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (r < 0 || optind != argc || !o->device || !o->input || !o->fourcc ||
	    !o->width || o->fps == 0 || o->buffers == 0 ||
	    o->buffers > VDEV_MAX_BUFFERS)
		return -EINVAL;
	return 0;
}

/* Reads a whole file into a malloc()ed buffer. */
static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *buf = NULL;
	struct stat st;
	int r = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0)
		r = -errno;
	else if (st.st_size <= 0)
		r = -ENODATA;
	if (r == 0 && !(buf = malloc((size_t)st.st_size)))
		r = -ENOMEM;
	if (r == 0 && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		r = -EIO;
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int alloc_frames(struct frames *fr, unsigned int n)
{
	fr->data = calloc(n, sizeof(*fr->data));
	fr->len = calloc(n, sizeof(*fr->len));
	fr->n = n;
	return fr->data && fr->len ? 0 : -ENOMEM;
}

static void free_frames(struct frames *fr)
{
	if (!fr->blob && fr->data)
		for (unsigned int i = 0; i < fr->n; i++)
			free(fr->data[i]);
	free(fr->blob);
	free(fr->data);
	free(fr->len);
	*fr = (struct frames){ 0 };
}

static int load_raw(struct frames *fr, const char *path, size_t frame_size)
{
	size_t len;
	int r = read_file(path, &fr->blob, &len);

	if (r < 0)
		return r;
	if (len % frame_size) {
		fprintf(stderr, "%s: %zu bytes, not a whole number of %zu-byte frames\n",
			path, len, frame_size);
		return -EINVAL;
	}
	r = alloc_frames(fr, (unsigned int)(len / frame_size));
	for (unsigned int i = 0; r == 0 && i < fr->n; i++) {
		fr->data[i] = fr->blob + (size_t)i * frame_size;
		fr->len[i] = frame_size;
	}
	return r;
}

static int not_hidden(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static int load_dir(struct frames *fr, const char *path)
{
	struct dirent **names;
	char file[4096];
	int n = scandir(path, &names, not_hidden, alphasort), r;

	if (n < 0)
		return -errno;
	r = n > 0 ? alloc_frames(fr, (unsigned int)n) : -ENODATA;
	for (int i = 0; r == 0 && i < n; i++) {
		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		r = read_file(file, &fr->data[i], &fr->len[i]);
		if (r < 0)
			fprintf(stderr, "%s: %s\n", file, strerror(-r));
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int load_frames(struct frames *fr, const char *path, size_t frame_size)
{
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = load_dir(fr, path);
	else
		r = load_raw(fr, path, frame_size);
	if (r < 0)
		fprintf(stderr, "%s: cannot load frames: %s\n", path, strerror(-r));
	return r;
}

/* The bytes of one frame in a raw input file. */
static size_t raw_frame_size(const struct v4l2_pix_format *pix)
{
	size_t plane = (size_t)pix->bytesperline * pix->height;

	switch (pix->pixelformat) {
	case V4L2_PIX_FMT_NV12:
	case V4L2_PIX_FMT_NV21:
	case V4L2_PIX_FMT_YUV420:
	case V4L2_PIX_FMT_YVU420:
		return plane * 3 / 2;
	default:
		return plane ? plane : pix->sizeimage;
	}
}

static int setup_device(struct vdev *d, const struct options *o)
{
	double fps;
	int r;

	r = vdev_open(d, o->device, V4L2_BUF_TYPE_VIDEO_OUTPUT);
	if (r == 0)
		r = vdev_set_format(d, o->fourcc, o->width, o->height, 0);
	if (r == -EINVAL && o->any_size && vdev_is_compressed(o->fourcc)) {
		d->fmt = (struct v4l2_format){ .type = d->type };
		r = VDEV_IOCTL(d, VIDIOC_G_FMT, &d->fmt);
		if (r == 0 && d->fmt.fmt.pix.pixelformat != o->fourcc)
			r = -EINVAL;
		if (r == 0)
			printf("%s: sending %ux%u frames into its %ux%u\n", o->device, o->width,
			       o->height, d->fmt.fmt.pix.width, d->fmt.fmt.pix.height);
	}
	if (r == 0) {
		r = vdev_set_fps(d, o->fps, &fps);
		if (r == -ENOTTY)
			r = 0;
	}
	if (r == 0)
		r = vdev_map_buffers(d, o->buffers);
	return r;
}

/* Waits for and dequeues an output buffer. */
static int dequeue_output(struct vdev *d, unsigned int *index)
{
	struct v4l2_buffer b;
	int r;

	for (;;) {
		r = vdev_wait(d, 5000);	/* first: libv4l2 prints failed DQBUFs */
		if (stop)
			return -EINTR;
		if (r < 0 && r != -EINTR)
			break;
		if (r < 0)
			continue;
		r = vdev_dequeue(d, &b);
		if (r == 0) {
			*index = b.index;
			return b.index < d->n_buffers ? 0 : -EBADMSG;
		}
		if (r != -EAGAIN)
			break;
	}
	fprintf(stderr, "%s: VIDIOC_DQBUF: %s\n", d->path, strerror(-r));
	return r;
}

/* The buffer to fill for frame i (last: the one that frame i - 1 went to).
 * The first n_buffers are free, then each comes back through DQBUF. But
 * v4l2loopback 0.12.7 always hands back the buffer just queued, so a reader
 * still copying that frame would see the next one written over it: then the
 * buffers are taken in turn (it accepts QBUF of any of them), which gives a
 * reader n_buffers - 1 frame periods to copy a frame. */
static int free_buffer(struct vdev *d, unsigned int i, unsigned int last,
		       unsigned int *index)
{
	static bool told;
	int r;

	if (i < d->n_buffers) {
		*index = i;
		return 0;
	}
	r = dequeue_output(d, index);
	if (r < 0 || *index != last || d->n_buffers < 2)
		return r;
	if (!told)
		printf("%s: VIDIOC_DQBUF gives back the buffer just queued: taking "
		       "the %u buffers in turn\n", d->path, d->n_buffers);
	told = true;
	*index = i % d->n_buffers;
	return 0;
}

static int put_frame(struct vdev *d, unsigned int index, const uint8_t *data,
		     size_t len)
{
	int r;

	if (len > d->buffers[index].length) {
		fprintf(stderr, "%s: a %zu-byte frame does not fit a %zu-byte buffer\n",
			d->path, len, d->buffers[index].length);
		return -E2BIG;
	}
	memcpy(d->buffers[index].start, data, len);
	r = vdev_queue(d, index, (uint32_t)len);
	if (r < 0)
		fprintf(stderr, "%s: VIDIOC_QBUF: %s\n", d->path, strerror(-r));
	return r;
}

#define CUT_LEN 64

/* Frame i (counted from 0) as sent: the input's, or a corrupt one (see
 * --corrupt) built in scratch, which holds the largest input frame. */
static const uint8_t *frame_to_send(const struct options *o, const struct frames *fr,
				    unsigned int i, uint8_t *scratch, size_t *len)
{
	const uint8_t *data = fr->data[i % fr->n];
	unsigned int nth;

	*len = fr->len[i % fr->n];
	if (!o->corrupt || (i + 1) % o->corrupt)
		return data;
	nth = (i + 1) / o->corrupt;
	if (nth % 2 == 0 && *len > CUT_LEN) {
		printf("%s: frame %u: sent cut to its first %d bytes (of %zu)\n", o->device,
		       i + 1, CUT_LEN, *len);
		*len = CUT_LEN;
		return data;
	}
	/* a byte pattern with no 0xff in it: no JPEG marker, no SOI */
	for (size_t k = 0; k < *len; k++)
		scratch[k] = (uint8_t)(0x20 + (k * 7 + i) % 0x5f);
	printf("%s: frame %u: sent as %zu bytes of garbage\n", o->device, i + 1, *len);
	return scratch;
}

static void sleep_until(double t)
{
	struct timespec ts = {
		.tv_sec = (time_t)t,
		.tv_nsec = (long)((t - (double)(time_t)t) * 1e9),
	};

	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int write_frames(struct vdev *d, const struct options *o,
			const struct frames *fr, unsigned int *written)
{
	double start = vdev_now(), period = 1.0 / o->fps;
	unsigned int i, index = 0;
	size_t largest = 0, len;
	uint8_t *scratch;
	const uint8_t *data;
	int r;

	for (i = 0; i < fr->n; i++)
		largest = fr->len[i] > largest ? fr->len[i] : largest;
	if (!(scratch = malloc(largest)))
		return -ENOMEM;
	r = vdev_stream(d, true);
	for (i = 0; r == 0 && !stop && (o->count == 0 || i < o->count); i++) {
		r = free_buffer(d, i, index, &index);
		if (r == 0) {
			data = frame_to_send(o, fr, i, scratch, &len);
			r = put_frame(d, index, data, len);
		}
		if (r == 0 && i == 0 && o->ready && vdev_touch(o->ready) < 0)
			fprintf(stderr, "%s: cannot create %s\n", d->path, o->ready);
		/* late by more than a frame (stopped, descheduled): the pace
		 * starts again from now */
		if (vdev_now() > start + (i + 2) * period)
			start = vdev_now() - (i + 1) * period;
		if (r == 0)
			sleep_until(start + (i + 1) * period);
	}
	free(scratch);
	*written = i;
	return stop && r == -EINTR ? 0 : r;
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

int main(int argc, char **argv)
{
	struct options o;
	struct vdev d = { .fd = -1 };
	struct frames fr = { 0 };
	unsigned int written = 0;
	double t0;
	char fcc[5];
	int r;

	if (parse_options(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	catch_signals();
	r = setup_device(&d, &o);
	if (r == 0)
		r = load_frames(&fr, o.input, raw_frame_size(&d.fmt.fmt.pix));
	t0 = vdev_now();
	if (r == 0)
		r = write_frames(&d, &o, &fr, &written);
	if (r == 0)
		printf("%s: wrote %u frames (%s %ux%u, %u in the input) in %.2f s\n",
		       o.device, written, vdev_fourcc_str(o.fourcc, fcc), o.width,
		       o.height, fr.n, vdev_now() - t0);
	vdev_close(&d);
	free_frames(&fr);
	return r == 0 ? 0 : 1;
}
