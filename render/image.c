/* Image files: JPEG through TurboJPEG, PNG through libpng. */
#include "render.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#define IMAGE_MAX_SIDE 16384

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t len, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return r;
}

int image_alloc(struct image *img, int width, int height)
{
	img->rgba = NULL;
	img->width = img->height = 0;
	if (width <= 0 || height <= 0 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
		return -EINVAL;
	img->rgba = calloc((size_t)width * height, 4);
	if (!img->rgba)
		return -ENOMEM;
	img->width = width;
	img->height = height;
	return 0;
}

void image_free(struct image *img)
{
	if (!img)
		return;
	free(img->rgba);
	img->rgba = NULL;
	img->width = img->height = 0;
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int r = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n == cap) {
			uint8_t *nb;
			cap = cap ? cap * 2 : 1 << 16;
			if (cap > (256u << 20) || !(nb = realloc(buf, cap))) {
				r = -EFBIG;
				break;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			r = ferror(f) ? -EIO : 0;
			break;
		}
	}
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	*data = buf;
	*size = n;
	return 0;
}

static int decode_jpeg(const char *path, const uint8_t *data, size_t size,
		       struct image *img, char *err, size_t errlen)
{
	tjhandle tj = tjInitDecompress();
	int w = 0, h = 0, sub, cs, r; /* left as they are by a stream without a frame */

	if (!tj)
		return fail(err, errlen, -ENOMEM, "%s: cannot start the JPEG decoder", path);
	if (tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &sub, &cs) != 0) {
		r = fail(err, errlen, -EINVAL, "%s: bad JPEG header: %s", path, tjGetErrorStr2(tj));
		goto out;
	}
	/* TurboJPEG takes a stream that ends before its frame header for
	 * tables only, and says nothing */
	if (w <= 0 || h <= 0) {
		r = fail(err, errlen, -EINVAL, "%s: bad JPEG header: no frame in %zu bytes", path,
			 size);
		goto out;
	}
	r = image_alloc(img, w, h);
	if (r < 0) {
		r = fail(err, errlen, r, "%s: %dx%d: unsupported size", path, w, h);
		goto out;
	}
	if (tjDecompress2(tj, data, (unsigned long)size, img->rgba, w, w * 4, h,
			  TJPF_RGBA, 0) != 0 && tjGetErrorCode(tj) == TJERR_FATAL) {
		r = fail(err, errlen, -EINVAL, "%s: corrupt JPEG: %s", path, tjGetErrorStr2(tj));
		image_free(img);
	}
out:
	tjDestroy(tj);
	return r;
}

static int decode_png(const char *path, const uint8_t *data, size_t size,
		      struct image *img, char *err, size_t errlen)
{
	png_image pi;
	int r;

	memset(&pi, 0, sizeof(pi));
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&pi, data, size))
		return fail(err, errlen, -EINVAL, "%s: bad PNG: %s", path, pi.message);
	pi.format = PNG_FORMAT_RGBA;
	r = image_alloc(img, (int)pi.width, (int)pi.height);
	if (r < 0) {
		png_image_free(&pi);
		return fail(err, errlen, r, "%s: %ux%u: unsupported size", path, pi.width, pi.height);
	}
	if (!png_image_finish_read(&pi, NULL, img->rgba, img->width * 4, NULL)) {
		image_free(img);
		return fail(err, errlen, -EINVAL, "%s: corrupt PNG: %s", path, pi.message);
	}
	return 0;
}

int image_load(const char *path, struct image *img, char *err, size_t errlen)
{
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	uint8_t *data;
	size_t size;
	int r;

	img->rgba = NULL;
	img->width = img->height = 0;
	r = read_file(path, &data, &size);
	if (r < 0)
		return fail(err, errlen, r, "%s: cannot read: %s", path, strerror(-r));
	if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
		r = decode_jpeg(path, data, size, img, err, errlen);
	else if (size >= 8 && memcmp(data, png_sig, 8) == 0)
		r = decode_png(path, data, size, img, err, errlen);
	else
		r = fail(err, errlen, -EINVAL, "%s: neither JPEG nor PNG", path);
	free(data);
	return r;
}

struct png_writer {
	FILE *f;
	volatile int err; /* errno of a failed write (ENOSPC, EFBIG, ...) */
	jmp_buf jmp;
};

static void png_error_fn(png_structp png, png_const_charp msg)
{
	struct png_writer *w = png_get_error_ptr(png);

	(void)msg;
	longjmp(w->jmp, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* libpng's own writer reports a failed fwrite as a bare "Write Error":
 * this one keeps its errno. */
static void png_write_fn(png_structp png, png_bytep data, png_size_t n)
{
	struct png_writer *w = png_get_io_ptr(png);

	if (fwrite(data, 1, n, w->f) != n) {
		w->err = errno ? errno : EIO;
		png_error(png, "write failed");
	}
}

static void png_flush_fn(png_structp png)
{
	(void)png; /* image_save_png flushes at the end */
}

/* Writes rows with libpng's full API (grey or RGBA, 8 bit). */
static int write_png_rows(FILE *f, const uint8_t *pixels, int stride, int width,
			  int height, int channels)
{
	struct png_writer w = { .f = f };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w,
						  png_error_fn, png_warn_fn);
	png_infop info = png ? png_create_info_struct(png) : NULL;

	if (!png || !info) {
		png_destroy_write_struct(&png, &info);
		return -ENOMEM;
	}
	if (setjmp(w.jmp)) {
		png_destroy_write_struct(&png, &info);
		return w.err ? -w.err : -EIO;
	}
	png_set_write_fn(png, &w, png_write_fn, png_flush_fn);
	png_set_compression_level(png, 3);
	png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
		     channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGBA,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < height; y++)
		png_write_row(png, pixels + (size_t)y * stride);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int image_save_png(const char *path, const uint8_t *pixels, int stride,
		   int width, int height, int channels)
{
	char tmp[4096];
	FILE *f;
	int r;

	if ((channels != 1 && channels != 4) || width <= 0 || height <= 0)
		return -EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "wbe");
	if (!f)
		return -errno;
	r = write_png_rows(f, pixels, stride, width, height, channels);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = r ? r : -errno;
	if (fclose(f) != 0)
		r = r ? r : -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

struct png_reader {
	const uint8_t *data;
	size_t size, pos;
	jmp_buf jmp;
};

static void png_read_error_fn(png_structp png, png_const_charp msg)
{
	struct png_reader *rd = png_get_error_ptr(png);

	(void)msg;
	longjmp(rd->jmp, 1);
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
	struct png_reader *rd = png_get_io_ptr(png);

	if (n > rd->size - rd->pos)
		png_error(png, "truncated");
	memcpy(out, rd->data + rd->pos, n);
	rd->pos += n;
}

/* Reads the raw 8-bit samples of a palette or grey PNG. */
static int decode_png_samples(struct png_reader *rd, uint8_t **labels, int *w, int *h)
{
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, rd,
						 png_read_error_fn, png_warn_fn);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	uint8_t *volatile buf = NULL;
	int r = 0;

	if (!png || !info) {
		png_destroy_read_struct(&png, &info, NULL);
		return -ENOMEM;
	}
	if (setjmp(rd->jmp)) {
		free(buf);
		png_destroy_read_struct(&png, &info, NULL);
		return -EINVAL;
	}
	png_set_read_fn(png, rd, png_read_mem);
	png_read_info(png, info);
	png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
	int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
	if ((type != PNG_COLOR_TYPE_PALETTE && type != PNG_COLOR_TYPE_GRAY) || depth > 8 ||
	    pw == 0 || ph == 0 || pw > IMAGE_MAX_SIDE || ph > IMAGE_MAX_SIDE) {
		r = -EINVAL;
	} else {
		int passes = png_set_interlace_handling(png); /* Adam7: 7 passes over the rows */
		png_set_packing(png);
		png_read_update_info(png, info);
		buf = malloc((size_t)pw * ph);
		if (!buf) {
			r = -ENOMEM;
		} else {
			for (int p = 0; p < passes; p++)
				for (png_uint_32 y = 0; y < ph; y++)
					png_read_row(png, buf + (size_t)y * pw, NULL);
			png_read_end(png, NULL);
		}
	}
	png_destroy_read_struct(&png, &info, NULL);
	if (r == 0) {
		*labels = buf;
		*w = (int)pw;
		*h = (int)ph;
	}
	return r;
}

int image_load_labels(const char *path, uint8_t **labels, int *width, int *height,
		      char *err, size_t errlen)
{
	struct png_reader rd;
	uint8_t *data;
	size_t size;
	int r;

	*labels = NULL;
	r = read_file(path, &data, &size);
	if (r < 0)
		return fail(err, errlen, r, "%s: cannot read: %s", path, strerror(-r));
	rd = (struct png_reader){ .data = data, .size = size };
	r = decode_png_samples(&rd, labels, width, height);
	free(data);
	if (r == -EINVAL)
		return fail(err, errlen, r, "%s: not an 8-bit palette or grey PNG", path);
	if (r < 0)
		return fail(err, errlen, r, "%s: %s", path, strerror(-r));
	return 0;
}
