/*
 * v4l2-probe: captures frames from a V4L2 device through libv4l2 (mmap
 * streaming) and checks them: the format is the one asked for, the frame
 * count is reached, every buffer is full (uncompressed) or holds a complete
 * JPEG (compressed), sequence numbers strictly increase with at most --max-drops
 * gaps, timestamps do not go back. Can save the frames for comparison.
 *
 * --any-sequence skips the sequence checks: v4l2loopback 0.12.7 leaves the
 * sequence number of frames written through mmap at 0.
 *
 * With --expect-gone it streams until the device vanishes (an unplug, e.g.
 * vivid's "disconnect" control) and passes only if it does; --reopen N then
 * waits for the device to come back and captures N more frames from it.
 *
 * Exit status: 0 all checks passed, 1 a check or a call failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "v4l2-util.h"

struct options {
	const char *device;
	uint32_t fourcc;
	uint32_t width, height;
	unsigned int frames;	/* to capture; in --expect-gone mode, at most */
	unsigned int fps;	/* 0: leave the driver's rate */
	unsigned int buffers;
	unsigned int max_drops;
	int timeout_ms;		/* per frame */
	const char *out_file;	/* all frames, concatenated */
	const char *out_dir;	/* one file per frame */
	const char *ready;	/* touched after the first frame */
	bool expect_gone;
	bool any_sequence;	/* do not check sequence numbers */
	unsigned int reopen_frames;
};

struct stats {
	unsigned int frames;
	unsigned int drops;
	uint32_t first_seq, last_seq;
	uint64_t last_ts_us;
	uint32_t min_bytes, max_bytes;
	unsigned int padded;	/* JPEG frames with bytes after their EOI */
	double start;
};

struct probe {
	const struct options *o;
	struct vdev dev;
	struct stats st;
	FILE *out;
	unsigned int saved;	/* frames written to out_dir, over all runs */
	const char *failed;	/* the call that stopped the stream */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: v4l2-probe -d DEVICE -f FOURCC -s WxH [-n FRAMES] [-r FPS]\n"
		"                  [-b BUFFERS] [-o FILE] [-O DIR] [--max-drops N]\n"
		"                  [--timeout SEC] [--ready FILE] [--expect-gone]\n"
		"                  [--reopen FRAMES] [--any-sequence]\n");
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
		{ "max-drops", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ready", required_argument, NULL, 'R' },
		{ "expect-gone", no_argument, NULL, 'G' },
		{ "reopen", required_argument, NULL, 'N' },
		{ "any-sequence", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int sec = 5;
	int c, r = 0;

	*o = (struct options){ .frames = 30, .buffers = 4 };
	while (r == 0 && (c = getopt_long(argc, argv, "d:f:s:n:r:b:o:O:h", longopts,
					  NULL)) != -1) {
		switch (c) {
		case 'd': o->device = optarg; break;
		case 'f': o->fourcc = vdev_fourcc(optarg); break;
		case 's': r = vdev_parse_size(optarg, &o->width, &o->height); break;
		case 'n': r = parse_uint(optarg, &o->frames); break;
		case 'r': r = parse_uint(optarg, &o->fps); break;
		case 'b': r = parse_uint(optarg, &o->buffers); break;
		case 'o': o->out_file = optarg; break;
		case 'O': o->out_dir = optarg; break;
		case 'D': r = parse_uint(optarg, &o->max_drops); break;
		case 't': r = parse_uint(optarg, &sec); break;
		case 'R': o->ready = optarg; break;
		case 'G': o->expect_gone = true; break;
		case 'N': r = parse_uint(optarg, &o->reopen_frames); break;
		case 'S': o->any_sequence = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	o->timeout_ms = (int)sec * 1000;
	if (r < 0 || optind != argc || !o->device || !o->fourcc || !o->width ||
	    o->frames == 0 || o->buffers == 0 || o->buffers > VDEV_MAX_BUFFERS)
		return -EINVAL;
	return 0;
}

static int start_capture(struct probe *s)
{
	const struct options *o = s->o;
	double fps;
	int r;

	r = vdev_open(&s->dev, o->device, V4L2_BUF_TYPE_VIDEO_CAPTURE);
	if (r < 0)
		return r;
	r = vdev_set_format(&s->dev, o->fourcc, o->width, o->height, 0);
	if (r == 0 && o->fps) {
		r = vdev_set_fps(&s->dev, o->fps, &fps);
		if (r == 0 && fps > 0 && (unsigned int)(fps + 0.5) != o->fps)
			printf("%s: asked for %u fps, the driver set %.2f\n",
			       o->device, o->fps, fps);
		if (r == -ENOTTY)
			r = 0;
	}
	if (r == 0)
		r = vdev_map_buffers(&s->dev, o->buffers);
	for (unsigned int i = 0; r == 0 && i < s->dev.n_buffers; i++) {
		r = vdev_queue(&s->dev, i, 0);
		if (r < 0)
			fprintf(stderr, "%s: VIDIOC_QBUF: %s\n", o->device, strerror(-r));
	}
	if (r == 0)
		r = vdev_stream(&s->dev, true);
	s->st = (struct stats){ .start = vdev_now() };
	return r;
}

/* Waits for and dequeues the next filled buffer. Polls first: libv4l2
 * prints every failed DQBUF, EAGAIN included. */
static int next_frame(struct probe *s, struct v4l2_buffer *buf)
{
	double deadline = vdev_now() + s->o->timeout_ms / 1000.0;
	int left, r;

	for (;;) {
		left = (int)((deadline - vdev_now()) * 1000);
		s->failed = "poll";
		if (left <= 0)
			return -ETIMEDOUT;
		r = vdev_wait(&s->dev, left);
		if (r < 0 && r != -EINTR)
			return r;
		if (r < 0)
			continue;
		s->failed = "VIDIOC_DQBUF";
		r = vdev_dequeue(&s->dev, buf);
		if (r != -EAGAIN)
			return r;
	}
}

/* From i, just past an SOS header, to the next marker that is not RSTn:
 * in entropy-coded data 0xff is followed by 0x00 (stuffing) or a marker. */
static size_t skip_entropy(const uint8_t *p, size_t n, size_t i)
{
	for (; i + 1 < n; i++)
		if (p[i] == 0xff && p[i + 1] != 0x00 &&
		    !(p[i + 1] >= 0xd0 && p[i + 1] <= 0xd7))
			break;
	return i;
}

/* The length of the JPEG at p up to and including its EOI marker, found by
 * walking its segments; 0 when it is no complete JPEG within n bytes. */
static size_t jpeg_length(const uint8_t *p, size_t n)
{
	size_t i = 2;

	if (n < 4 || p[0] != 0xff || p[1] != 0xd8)
		return 0;
	while (i + 1 < n) {
		uint8_t m = p[i + 1];

		if (p[i] != 0xff)
			return 0;
		if (m == 0xd9)
			return i + 2;
		if (m == 0xff || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
			i += m == 0xff ? 1 : 2;	/* fill byte, standalone marker */
			continue;
		}
		if (i + 3 >= n)
			return 0;
		i += 2 + ((size_t)p[i + 2] << 8 | p[i + 3]);
		if (m == 0xda)
			i = skip_entropy(p, n, i);
	}
	return 0;
}

/* Checks the frame in b; *len gets its payload size. A JPEG may come with
 * bytes after its end: v4l2loopback 0.12.7 resets bytesused to sizeimage
 * when a reader calls REQBUFS, so the first frame a reader gets is padded.
 * Those are counted and cut off, as capture code has to. */
static int check_payload(struct probe *s, const struct v4l2_buffer *b,
			 const uint8_t *data, size_t *len)
{
	const struct v4l2_pix_format *pix = &s->dev.fmt.fmt.pix;

	*len = b->bytesused;
	if (vdev_is_compressed(pix->pixelformat)) {
		if (b->bytesused <= b->length)
			*len = jpeg_length(data, b->bytesused);
		if (*len == 0) {
			fprintf(stderr, "%s: frame %u: no complete JPEG in %u bytes\n",
				s->o->device, s->st.frames, b->bytesused);
			return -EBADMSG;
		}
		if (*len < b->bytesused)
			s->st.padded++;
	} else if (b->bytesused != pix->sizeimage) {
		fprintf(stderr, "%s: frame %u: %u bytes, the format needs %u\n",
			s->o->device, s->st.frames, b->bytesused, pix->sizeimage);
		return -EBADMSG;
	}
	return 0;
}

static int check_order(struct probe *s, const struct v4l2_buffer *b)
{
	struct stats *st = &s->st;
	uint64_t ts = (uint64_t)b->timestamp.tv_sec * 1000000u +
		      (uint64_t)b->timestamp.tv_usec;

	if (st->frames > 0 && b->sequence <= st->last_seq && !s->o->any_sequence) {
		fprintf(stderr, "%s: frame %u: sequence %u after %u\n",
			s->o->device, st->frames, b->sequence, st->last_seq);
		return -EBADMSG;
	}
	if (st->frames > 0 && ts < st->last_ts_us) {
		fprintf(stderr, "%s: frame %u: timestamp went back by %llu us\n",
			s->o->device, st->frames,
			(unsigned long long)(st->last_ts_us - ts));
		return -EBADMSG;
	}
	if (st->frames == 0)
		st->first_seq = b->sequence;
	else if (!s->o->any_sequence)
		st->drops += b->sequence - st->last_seq - 1;
	st->last_seq = b->sequence;
	st->last_ts_us = ts;
	return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t len)
{
	FILE *f = fopen(path, "wbe");
	int r = 0;

	if (!f)
		return -errno;
	if (fwrite(data, 1, len, f) != len)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r < 0 ? r : 0;
}

static int save_frame(struct probe *s, const uint8_t *data, size_t len)
{
	char path[4096];
	int r = 0;

	if (s->out && fwrite(data, 1, len, s->out) != len) {
		r = -errno;
		fprintf(stderr, "%s: %s\n", s->o->out_file, strerror(-r));
	}
	if (r == 0 && s->o->out_dir) {
		snprintf(path, sizeof(path), "%s/%04u", s->o->out_dir, s->saved++);
		r = write_file(path, data, len);
		if (r < 0)
			fprintf(stderr, "%s: %s\n", path, strerror(-r));
	}
	return r;
}

static int take_frame(struct probe *s, const struct v4l2_buffer *b)
{
	const uint8_t *data;
	struct stats *st = &s->st;
	size_t len;
	int r;

	if (b->index >= s->dev.n_buffers) {
		fprintf(stderr, "%s: VIDIOC_DQBUF: buffer index %u of %u\n",
			s->o->device, b->index, s->dev.n_buffers);
		return -EBADMSG;
	}
	if (b->flags & V4L2_BUF_FLAG_ERROR) {
		fprintf(stderr, "%s: frame %u: buffer flagged ERROR\n",
			s->o->device, st->frames);
		return -EIO;
	}
	data = s->dev.buffers[b->index].start;
	r = check_payload(s, b, data, &len);
	if (r == 0)
		r = check_order(s, b);
	if (r == 0)
		r = save_frame(s, data, len);
	if (r < 0)
		return r;
	if (st->frames == 0 || len < st->min_bytes)
		st->min_bytes = (uint32_t)len;
	if (len > st->max_bytes)
		st->max_bytes = (uint32_t)len;
	st->frames++;
	if (st->frames == 1 && s->o->ready && vdev_touch(s->o->ready) < 0)
		fprintf(stderr, "%s: cannot create %s\n", s->o->device, s->o->ready);
	return 0;
}

/* Captures n frames, or fewer when the stream fails: returns that error. */
static int capture(struct probe *s, unsigned int n)
{
	struct v4l2_buffer b;
	int r;

	while (s->st.frames < n) {
		r = next_frame(s, &b);
		if (r < 0)
			return r;
		r = take_frame(s, &b);
		if (r < 0)
			return r;
		s->failed = "VIDIOC_QBUF";
		r = vdev_queue(&s->dev, b.index, 0);
		if (r < 0)
			return r;
	}
	s->failed = NULL;
	return 0;
}

static void print_stats(const struct probe *s, const char *what)
{
	const struct v4l2_pix_format *pix = &s->dev.fmt.fmt.pix;
	const struct stats *st = &s->st;
	double t = vdev_now() - st->start;
	char fcc[5];

	printf("%s: %s %s %ux%u: %u frames in %.2f s (%.1f fps), sequence %u..%u, "
	       "%u dropped, %u..%u bytes\n", s->o->device, what,
	       vdev_fourcc_str(pix->pixelformat, fcc), pix->width, pix->height,
	       st->frames, t, t > 0 ? st->frames / t : 0.0, st->first_seq,
	       st->last_seq, st->drops, st->min_bytes, st->max_bytes);
	if (st->padded)
		printf("%s: %u JPEG frames had bytes after their end (bytesused past "
		       "EOI), cut off\n", s->o->device, st->padded);
}

static int check_stats(const struct probe *s, unsigned int want)
{
	if (s->st.frames < want) {
		fprintf(stderr, "%s: %u frames of %u\n", s->o->device, s->st.frames,
			want);
		return -EBADMSG;
	}
	if (s->st.drops > s->o->max_drops) {
		fprintf(stderr, "%s: %u frames dropped, at most %u allowed\n",
			s->o->device, s->st.drops, s->o->max_drops);
		return -EBADMSG;
	}
	return 0;
}

static int run_capture(struct probe *s, unsigned int n, const char *what)
{
	int r = start_capture(s);

	if (r == 0) {
		r = capture(s, n);
		if (r < 0 && r != -EBADMSG)
			fprintf(stderr, "%s: %s: %s (after %u frames)\n",
				s->o->device, s->failed, strerror(-r), s->st.frames);
	}
	if (r == 0)
		print_stats(s, what);
	if (r == 0)
		r = check_stats(s, n);
	vdev_close(&s->dev);
	return r;
}

/* Errors by which a streaming device says it is gone. */
static bool is_gone_error(int r)
{
	return r == -ENODEV || r == -EIO || r == -EPIPE || r == -ENXIO;
}

static int run_until_gone(struct probe *s)
{
	int r = start_capture(s);

	if (r == 0) {
		r = capture(s, s->o->frames);
		print_stats(s, "before the unplug");
	}
	if (r == 0) {
		fprintf(stderr, "%s: still streaming after %u frames\n",
			s->o->device, s->st.frames);
		r = -EPROTO;
	} else if (is_gone_error(r) && s->st.frames > 0) {
		printf("%s: device gone after %u frames: %s: %s\n", s->o->device,
		       s->st.frames, s->failed, strerror(-r));
		r = 0;
	} else {
		fprintf(stderr, "%s: stream ended after %u frames with %s: %s, "
			"not an unplug\n", s->o->device, s->st.frames,
			s->failed ? s->failed : "a check", strerror(-r));
		r = r < 0 ? r : -EPROTO;
	}
	vdev_close(&s->dev);
	return r;
}

/* Waits until path opens again (vivid re-registers its nodes once the last
 * handle is closed). */
static int wait_reappear(const char *path, int timeout_ms)
{
	double t0 = vdev_now(), deadline = t0 + timeout_ms / 1000.0;
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int fd;

	for (;;) {
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			printf("%s: back after %.2f s\n", path, vdev_now() - t0);
			return 0;
		}
		if (errno != ENODEV && errno != ENOENT && errno != ENXIO) {
			fprintf(stderr, "%s: open: %s\n", path, strerror(errno));
			return -errno;
		}
		if (vdev_now() > deadline) {
			fprintf(stderr, "%s: not back after %d ms\n", path, timeout_ms);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
}

static int open_outputs(struct probe *s)
{
	if (s->o->out_dir && mkdir(s->o->out_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", s->o->out_dir, strerror(errno));
		return -errno;
	}
	if (s->o->out_file) {
		s->out = fopen(s->o->out_file, "wbe");
		if (!s->out) {
			fprintf(stderr, "%s: %s\n", s->o->out_file, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

static int close_outputs(struct probe *s)
{
	int r = 0;

	if (s->out && fclose(s->out) != 0) {
		fprintf(stderr, "%s: %s\n", s->o->out_file, strerror(errno));
		r = -errno;
	}
	s->out = NULL;
	return r;
}

int main(int argc, char **argv)
{
	struct options o;
	struct probe s = { .o = &o, .dev = { .fd = -1 } };
	int r;

	if (parse_options(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = open_outputs(&s);
	if (r == 0 && !o.expect_gone)
		r = run_capture(&s, o.frames, "captured");
	if (r == 0 && o.expect_gone)
		r = run_until_gone(&s);
	if (r == 0 && o.reopen_frames) {
		r = wait_reappear(o.device, o.timeout_ms);
		if (r == 0)
			r = run_capture(&s, o.reopen_frames, "after reopening");
	}
	if (close_outputs(&s) < 0)
		r = -EIO;
	printf("%s: %s\n", o.device, r == 0 ? "OK" : "FAILED");
	return r == 0 ? 0 : 1;
}
