/* YUV4MPEG2 files and pipes ("y4m:PATH", "y4m:-" for stdin).
 *
 * Header: "YUV4MPEG2 W640 H480 F25:1 Ip A1:1 C420jpeg\n"; then per frame
 * "FRAME[ params]\n" and the planes. Chroma 420 (any siting), 422, 444 and
 * mono are converted with libyuv. A broken frame header is reported and
 * skipped by resynchronising on the next "FRAME" tag.
 *
 * A wanted size other than the file's scales the frames to it (libyuv); the
 * rate is always the file's own (a wanted rate is not applied).
 */
#include "capture-priv.h"

#include <errno.h>
#include <libyuv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Y4M_MAX_HEADER 1024
#define Y4M_MAX_SIDE 8192

enum y4m_chroma { Y4M_420, Y4M_422, Y4M_444, Y4M_MONO };

struct y4m {
	FILE *f;
	int own;               /* fclose at the end (not stdin) */
	int header_read;       /* a FRAME header was consumed by a resync */
	enum y4m_chroma chroma;
	size_t frame_bytes;
	uint8_t *buf;
	int w, h;              /* the file's frame size (info: the size delivered) */
	uint8_t *scaled;       /* the planes scaled to info's size; NULL: not scaled */
	char path[4096];
};

static int parse_chroma(const char *v, enum y4m_chroma *out)
{
	if (strncmp(v, "420", 3) == 0)
		*out = Y4M_420;
	else if (strcmp(v, "422") == 0)
		*out = Y4M_422;
	else if (strcmp(v, "444") == 0)
		*out = Y4M_444;
	else if (strcmp(v, "mono") == 0)
		*out = Y4M_MONO;
	else
		return -EINVAL;
	return 0;
}

/* Reads one '\n'-terminated line of at most len - 1 bytes. */
static int read_line(FILE *f, char *buf, size_t len)
{
	size_t n = 0;
	int ch;

	while ((ch = fgetc(f)) != EOF && ch != '\n') {
		if (n + 1 >= len)
			return -E2BIG;
		buf[n++] = (char)ch;
	}
	buf[n] = 0;
	if (ch == EOF)
		return n ? -EIO : -ENODATA;
	return 0;
}

static int parse_header(struct capture *c, struct y4m *y, char *line, char *err, size_t errlen)
{
	char *save = NULL, *tok;
	int w = 0, h = 0, fn = 25, fd = 1;

	if (strncmp(line, "YUV4MPEG2", 9) != 0 || (line[9] != ' ' && line[9] != 0)) {
		snprintf(err, errlen, "%s: not a YUV4MPEG2 stream", y->path);
		return -EINVAL;
	}
	y->chroma = Y4M_420;
	for (tok = strtok_r(line + 9, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		int ok = 1;
		switch (tok[0]) {
		case 'W': ok = sscanf(tok + 1, "%d", &w) == 1; break;
		case 'H': ok = sscanf(tok + 1, "%d", &h) == 1; break;
		case 'F': ok = sscanf(tok + 1, "%d:%d", &fn, &fd) == 2 && fn > 0 && fd > 0; break;
		case 'C': ok = parse_chroma(tok + 1, &y->chroma) == 0; break;
		case 'I': ok = tok[1] == 'p' || tok[1] == '?'; break;
		default: break; /* A (aspect), X (extensions): not needed */
		}
		if (!ok) {
			snprintf(err, errlen, "%s: unsupported header field '%s'", y->path, tok);
			return -EINVAL;
		}
	}
	if (w <= 0 || h <= 0 || w > Y4M_MAX_SIDE || h > Y4M_MAX_SIDE) {
		snprintf(err, errlen, "%s: bad frame size %dx%d", y->path, w, h);
		return -EINVAL;
	}
	c->info.width = w;
	c->info.height = h;
	c->info.fps_num = fn;
	c->info.fps_den = fd;
	return 0;
}

static size_t frame_size(enum y4m_chroma ch, int w, int h)
{
	size_t luma = (size_t)w * h, cw = (size_t)(w + 1) / 2, chh = (size_t)(h + 1) / 2;

	switch (ch) {
	case Y4M_420: return luma + 2 * cw * chh;
	case Y4M_422: return luma + 2 * cw * (size_t)h;
	case Y4M_444: return 3 * luma;
	default: return luma;
	}
}

/* The w x h planes at py (y->buf, or y->scaled) to RGBA. */
static void convert(const struct y4m *y, const uint8_t *py, int w, int h, uint8_t *dst,
		    int stride)
{
	const uint8_t *pu, *pv;
	int cw = (w + 1) / 2;

	switch (y->chroma) {
	case Y4M_420:
		pu = py + (size_t)w * h;
		pv = pu + (size_t)cw * ((h + 1) / 2);
		I420ToABGR(py, w, pu, cw, pv, cw, dst, stride, w, h);
		break;
	case Y4M_422:
		pu = py + (size_t)w * h;
		pv = pu + (size_t)cw * h;
		I422ToABGR(py, w, pu, cw, pv, cw, dst, stride, w, h);
		break;
	case Y4M_444:
		pu = py + (size_t)w * h;
		pv = pu + (size_t)w * h;
		I444ToABGR(py, w, pu, w, pv, w, dst, stride, w, h);
		break;
	case Y4M_MONO:
		I400ToARGB(py, w, dst, stride, w, h); /* grey: byte order is moot */
		break;
	}
}

/* Skips to just past the next "FRAME" tag; -ENODATA at the end. */
static int resync(FILE *f)
{
	static const char tag[] = "FRAME";
	int matched = 0, ch;

	while ((ch = fgetc(f)) != EOF) {
		matched = ch == tag[matched] ? matched + 1 : (ch == 'F' ? 1 : 0);
		if (matched == 5)
			return 0;
	}
	return -ENODATA;
}

/* Reads a frame header; on a broken one, skips to the next "FRAME" tag so
 * that the following call reads that frame. */
static int read_frame_header(struct capture *c, struct y4m *y, char *err, size_t errlen)
{
	char line[Y4M_MAX_HEADER];
	int r;

	if (y->header_read) {
		y->header_read = 0;
		return 0;
	}
	r = read_line(y->f, line, sizeof(line));
	if (r == -ENODATA)
		return r;
	if (r == 0 && strncmp(line, "FRAME", 5) == 0 && (line[5] == ' ' || line[5] == 0))
		return 0;
	snprintf(err, errlen, "%s: after frame %llu: bad frame header, skipped to the next frame",
		 y->path, (unsigned long long)c->frames);
	if (resync(y->f) < 0 || read_line(y->f, line, sizeof(line)) < 0)
		return -ENODATA;
	y->header_read = 1;
	return -EBADMSG;
}

/* Scales the planes of the frame read (y->buf) into y->scaled, w x h. */
static void scale_planes(const struct y4m *y, int w, int h)
{
	int sw = y->w, sh = y->h, scw = (sw + 1) / 2, dcw = (w + 1) / 2;
	int sch = (sh + 1) / 2, dch = (h + 1) / 2;
	const uint8_t *src = y->buf, *su = src + (size_t)sw * sh;
	uint8_t *dst = y->scaled, *du = dst + (size_t)w * h;

	switch (y->chroma) {
	case Y4M_420:
		I420Scale(src, sw, su, scw, su + (size_t)scw * sch, scw, sw, sh, dst, w, du, dcw,
			  du + (size_t)dcw * dch, dcw, w, h, kFilterBox);
		break;
	case Y4M_422:
		I422Scale(src, sw, su, scw, su + (size_t)scw * sh, scw, sw, sh, dst, w, du, dcw,
			  du + (size_t)dcw * h, dcw, w, h, kFilterBox);
		break;
	case Y4M_444:
		I444Scale(src, sw, su, sw, su + (size_t)sw * sh, sw, sw, sh, dst, w, du, w,
			  du + (size_t)w * h, w, w, h, kFilterBox);
		break;
	case Y4M_MONO:
		ScalePlane(src, sw, sw, sh, dst, w, w, h, kFilterBox);
		break;
	}
}

/* Converts the frame read into f, scaled to the size delivered. */
static void deliver(const struct capture *c, const struct y4m *y, struct capture_frame *f)
{
	int w = c->info.width, h = c->info.height;

	if (y->scaled)
		scale_planes(y, w, h);
	convert(y, y->scaled ? y->scaled : y->buf, w, h, f->rgba, f->stride);
}

static int y4m_read(struct capture *c, struct capture_frame *f, char *err, size_t errlen)
{
	struct y4m *y = c->priv;
	int r = read_frame_header(c, y, err, errlen);

	if (r < 0)
		return r;
	if (fread(y->buf, 1, y->frame_bytes, y->f) != y->frame_bytes) {
		snprintf(err, errlen, "%s: frame %llu: truncated at the end of the stream",
			 y->path, (unsigned long long)c->frames);
		return -ENODATA;
	}
	r = capture_pace(c);
	if (r < 0)
		return r;
	if (f->rgba)
		deliver(c, y, f);
	f->sequence = c->frames;
	f->timestamp_ns = capture_now_ns();
	return 0;
}

static void y4m_destroy(struct capture *c)
{
	struct y4m *y = c->priv;

	if (!y)
		return;
	if (y->own && y->f)
		fclose(y->f);
	free(y->buf);
	free(y->scaled);
	free(y);
}

/* A wanted size (--size) other than the file's: frames are scaled to it. */
static int set_size(struct capture *c, struct y4m *y, char *err, size_t errlen)
{
	int w = c->want.width, h = c->want.height;

	y->w = c->info.width;
	y->h = c->info.height;
	if (w <= 0 || h <= 0 || (w == y->w && h == y->h))
		return 0;
	if (w > Y4M_MAX_SIDE || h > Y4M_MAX_SIDE) {
		snprintf(err, errlen, "%s: cannot scale to %dx%d", y->path, w, h);
		return -EINVAL;
	}
	y->scaled = malloc(frame_size(y->chroma, w, h));
	if (!y->scaled) {
		snprintf(err, errlen, "%s: out of memory", y->path);
		return -ENOMEM;
	}
	c->info.width = w;
	c->info.height = h;
	return 0;
}

static const struct capture_impl y4m_impl = {
	.read = y4m_read,
	.destroy = y4m_destroy,
};

int capture_y4m_open(struct capture *c, const char *path, char *err, size_t errlen)
{
	static const char *chroma_names[] = { "I420", "I422", "I444", "GREY" };
	char line[Y4M_MAX_HEADER];
	struct y4m *y = calloc(1, sizeof(*y));
	int r;

	if (!y)
		return -ENOMEM;
	c->priv = y;
	c->impl = &y4m_impl;
	snprintf(y->path, sizeof(y->path), "%s", strcmp(path, "-") ? path : "stdin");
	y->own = strcmp(path, "-") != 0;
	y->f = y->own ? fopen(path, "rbe") : stdin;
	if (!y->f) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	r = read_line(y->f, line, sizeof(line));
	if (r < 0) {
		snprintf(err, errlen, "%s: no YUV4MPEG2 header", y->path);
		r = -EINVAL;
		goto fail;
	}
	r = parse_header(c, y, line, err, errlen);
	if (r < 0)
		goto fail;
	y->frame_bytes = frame_size(y->chroma, c->info.width, c->info.height);
	y->buf = malloc(y->frame_bytes);
	if (!y->buf) {
		r = -ENOMEM;
		goto fail;
	}
	r = set_size(c, y, err, errlen);
	if (r < 0)
		goto fail;
	c->info.file = 1;
	snprintf(c->info.name, sizeof(c->info.name), "y4m:%.59s", y->path);
	snprintf(c->info.format, sizeof(c->info.format), "%s", chroma_names[y->chroma]);
	return 0;
fail:
	y4m_destroy(c);
	c->priv = NULL;
	return r;
}
