/* Image files and overlays. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <png.h>

#include "harness.h"
#include "render.h"

static void test_png_roundtrip_rgba(void)
{
	char path[512], err[256];
	struct image a, b;

	T_EQ_INT(image_alloc(&a, 33, 17), 0);
	for (int i = 0; i < 33 * 17 * 4; i++)
		a.rgba[i] = (uint8_t)(i * 7);
	snprintf(path, sizeof(path), "%s/rgba.png", t_tmpdir());
	T_EQ_INT(image_save_png(path, a.rgba, 33 * 4, 33, 17, 4), 0);
	T_EQ_INT(image_load(path, &b, err, sizeof(err)), 0);
	T_EQ_INT(b.width, 33);
	T_EQ_INT(b.height, 17);
	T_EQ_INT(memcmp(a.rgba, b.rgba, 33 * 17 * 4), 0);
	snprintf(path, sizeof(path), "%s/rgba.png.tmp", t_tmpdir());
	T_ASSERT(access(path, F_OK) != 0); /* written to .tmp, then renamed */
	image_free(&a);
	image_free(&b);
}

static void test_labels_roundtrip(void)
{
	char path[512], err[256];
	uint8_t labels[20 * 10], *back;
	int w, h;

	for (int i = 0; i < 200; i++)
		labels[i] = (uint8_t)(i % 19);
	snprintf(path, sizeof(path), "%s/labels.png", t_tmpdir());
	T_EQ_INT(image_save_png(path, labels, 20, 20, 10, 1), 0);
	T_EQ_INT(image_load_labels(path, &back, &w, &h, err, sizeof(err)), 0);
	T_EQ_INT(w, 20);
	T_EQ_INT(h, 10);
	T_EQ_INT(memcmp(labels, back, 200), 0);
	free(back);
}

/* Writes an 8-bit grey PNG of these samples, Adam7-interlaced. */
static void write_interlaced_grey(const char *path, const uint8_t *px, int w, int h)
{
	FILE *f = fopen(path, "wb");
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	int passes;

	T_ASSERT(f && png && info);
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	passes = png_set_interlace_handling(png);
	for (int p = 0; p < passes; p++)
		for (int y = 0; y < h; y++)
			png_write_row(png, px + (size_t)y * w);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	fclose(f);
}

/* An interlaced label map reads as written (all seven passes, not the
 * first pass's rows spread over the image). */
static void test_labels_interlaced(void)
{
	char path[512], err[256];
	uint8_t labels[13 * 11], *back;
	int w, h;

	for (int i = 0; i < 13 * 11; i++)
		labels[i] = (uint8_t)(i * 7 % 19);
	snprintf(path, sizeof(path), "%s/interlaced.png", t_tmpdir());
	write_interlaced_grey(path, labels, 13, 11);
	T_EQ_INT(image_load_labels(path, &back, &w, &h, err, sizeof(err)), 0);
	T_EQ_INT(w, 13);
	T_EQ_INT(h, 11);
	T_EQ_INT(memcmp(labels, back, sizeof(labels)), 0);
	free(back);
}

/* A palette mask of the data set: its values are indices, not colours. */
static void test_palette_mask(void)
{
	char err[256];
	uint8_t *m;
	int w, h, hist[256] = { 0 };

	T_EQ_INT(image_load_labels(t_path("fixtures/face0-mask.png"), &m, &w, &h, err, sizeof(err)), 0);
	T_EQ_INT(w, 128);
	for (int i = 0; i < w * h; i++)
		hist[m[i]]++;
	for (int v = 19; v < 256; v++)
		T_EQ_INT(hist[v], 0);
	T_CMP_INT(hist[1], >, 1000); /* skin */
	T_CMP_INT(hist[13], >, 500); /* hair */
	free(m);
}

static void test_jpeg(void)
{
	char err[256];
	struct image img;
	long sum = 0;

	T_EQ_INT(image_load(t_path("fixtures/face0.jpg"), &img, err, sizeof(err)), 0);
	T_EQ_INT(img.width, 128);
	T_EQ_INT(img.height, 128);
	for (int i = 0; i < 128 * 128; i++) {
		T_EQ_INT(img.rgba[4 * i + 3], 255);
		sum += img.rgba[4 * i];
	}
	T_CMP_INT(sum / (128 * 128), >, 30); /* a photo, not black */
	image_free(&img);
}

static void test_corrupt_files(void)
{
	char path[512], err[256];
	struct image img;
	FILE *f;
	static const uint8_t jpeg_head[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F' };

	snprintf(path, sizeof(path), "%s/bad.jpg", t_tmpdir());
	f = fopen(path, "wb");
	fwrite(jpeg_head, 1, sizeof(jpeg_head), f);
	fclose(f);
	T_EQ_INT(image_load(path, &img, err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, path);
	T_STR_CONTAINS(err, "bad JPEG header");
	T_ASSERT(img.rgba == NULL);

	snprintf(path, sizeof(path), "%s/text.png", t_tmpdir());
	f = fopen(path, "wb");
	fputs("hello", f);
	fclose(f);
	T_EQ_INT(image_load(path, &img, err, sizeof(err)), -EINVAL);
	T_STR_CONTAINS(err, "neither JPEG nor PNG");

	snprintf(path, sizeof(path), "%s/none.png", t_tmpdir());
	T_EQ_INT(image_load(path, &img, err, sizeof(err)), -ENOENT);
	T_STR_CONTAINS(err, "cannot read");
}

static void test_overlay_blends_labelled_pixels_only(void)
{
	uint8_t rgba[3 * 4], labels[3] = { 0, 1, 13 };

	memset(rgba, 100, sizeof(rgba));
	render_overlay(rgba, 12, labels, 3, 3, 1, 0.5f);
	T_EQ_INT(rgba[0], 100); /* background untouched */
	T_EQ_INT(rgba[4], (100 * 128 + 204 * 128) >> 8); /* skin red */
	T_EQ_INT(rgba[5], (100 * 128) >> 8);
	T_EQ_INT(rgba[10], (100 * 128 + 204 * 128) >> 8); /* hair blue */
	render_overlay(rgba, 12, labels, 3, 3, 1, 1.0f);
	T_EQ_INT(rgba[4], 204);
}

/* A write that fails half-way (here the file size limit: EFBIG, as
 * ENOSPC on a full disk) gives that errno, not a bare I/O error, and
 * leaves neither the file nor its .tmp behind. */
static void test_png_write_fails(void)
{
	struct rlimit old, small;
	char path[512], tmp[600];
	uint8_t *noise = malloc(128 * 128 * 4);
	void (*old_handler)(int);
	uint32_t x = 2463534242u;
	int r;

	T_ASSERT(noise);
	for (int i = 0; i < 128 * 128 * 4; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift: incompressible */
		noise[i] = (uint8_t)x;
	}
	snprintf(path, sizeof(path), "%s/full.png", t_tmpdir());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	T_EQ_INT(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 20000; /* the PNG of noise is about 64 KB */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	T_EQ_INT(setrlimit(RLIMIT_FSIZE, &small), 0);
	r = image_save_png(path, noise, 128 * 4, 128, 128, 4);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, old_handler);
	T_EQ_INT(r, -EFBIG);
	T_ASSERT(access(path, F_OK) != 0);
	T_ASSERT(access(tmp, F_OK) != 0);
	T_EQ_INT(image_save_png(path, noise, 128 * 4, 128, 128, 4), 0);
	free(noise);
}

T_MAIN(T_CASE(test_png_roundtrip_rgba),
       T_CASE(test_labels_roundtrip),
       T_CASE(test_labels_interlaced),
       T_CASE(test_palette_mask),
       T_CASE(test_jpeg),
       T_CASE(test_corrupt_files),
       T_CASE(test_overlay_blends_labelled_pixels_only),
       T_CASE(test_png_write_fails))
