/* Frame sources: the synthetic pattern, YUV4MPEG2 files (every chroma
 * layout, broken headers and frames), pacing and interruption. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture-priv.h"
#include "harness.h"

static struct capture *open_ok(const char *spec, const struct capture_params *p)
{
	char err[512] = "";
	struct capture *c = NULL;
	int r = capture_open(spec, p, &c, err, sizeof(err));

	if (r < 0)
		t_fail(__FILE__, __LINE__, "capture_open(%s): %s", spec, err);
	return c;
}

static void expect_open_error(const char *spec, const char *want)
{
	char err[512] = "";
	struct capture *c = (struct capture *)1;

	T_CMP_INT(capture_open(spec, NULL, &c, err, sizeof(err)), <, 0);
	T_ASSERT(c == NULL);
	T_STR_CONTAINS(err, want);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_synthetic(void)
{
	struct capture_params p = { .width = 320, .height = 240 };
	struct capture *c = open_ok("synthetic", &p);
	const struct capture_info *in = capture_get_info(c);
	uint8_t *buf = malloc(320 * 240 * 4);
	struct capture_frame f = { .rgba = buf, .stride = 320 * 4 };
	char err[256];

	T_EQ_INT(in->width, 320);
	T_EQ_INT(in->fps_num, 30);
	for (int i = 0; i < 3; i++) {
		T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
		T_EQ_INT(f.sequence, (uint64_t)i);
		T_CMP_INT(f.timestamp_ns, >, 0);
	}
	/* the face-coloured ellipse is on the frame */
	int skin = 0;
	for (int i = 0; i < 320 * 240; i++)
		skin += buf[4 * i] == 224 && buf[4 * i + 1] == 172;
	T_CMP_INT(skin, >, 320 * 240 / 20);
	f.stride = 100; /* too small for the frame */
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -EINVAL);
	free(buf);
	capture_close(c);
	capture_close(NULL);
}

static void test_realtime_pacing(void)
{
	struct capture_params p = { .width = 64, .height = 48, .fps_num = 50, .fps_den = 1, .realtime = 1 };
	struct capture *c = open_ok("synthetic", &p);
	uint8_t buf[64 * 48 * 4];
	struct capture_frame f = { .rgba = buf, .stride = 64 * 4 };
	char err[256];
	double t0 = now_ms();

	for (int i = 0; i < 6; i++)
		T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
	/* 6 frames at 50 fps span 5 periods: at least 100 ms */
	T_CMP_DBL(now_ms() - t0, >=, 95.0);
	capture_close(c);
}

static void *interrupt_later(void *arg)
{
	usleep(50 * 1000);
	capture_interrupt(arg);
	return NULL;
}

static void test_interrupt_wakes_reader(void)
{
	struct capture_params p = { .width = 64, .height = 48, .fps_num = 1, .fps_den = 10, .realtime = 1 };
	struct capture *c = open_ok("synthetic", &p);
	uint8_t buf[64 * 48 * 4];
	struct capture_frame f = { .rgba = buf, .stride = 64 * 4 };
	char err[256];
	pthread_t th;
	double t0;

	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0); /* the first is due at once */
	t0 = now_ms();
	pthread_create(&th, NULL, interrupt_later, c);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -EINTR); /* the next: in 10 s */
	pthread_join(th, NULL);
	T_CMP_DBL(now_ms() - t0, <, 5000.0);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -EINTR); /* stays interrupted */
	capture_resume(c);
	capture_close(c);
}

/* Writes a y4m file: header, then frames of constant Y, U, V planes;
 * "junk" inserts a broken frame header before frame 1. */
static const char *write_y4m(const char *name, const char *header, int w, int h,
			     size_t chroma_bytes, int frames, int junk, int truncate)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
	f = fopen(path, "wb");
	T_ASSERT(f);
	fprintf(f, "%s\n", header);
	for (int i = 0; i < frames; i++) {
		if (junk && i == 1)
			fputs("FRAMX garbage\n", f);
		fputs("FRAME\n", f);
		for (int j = 0; j < w * h; j++)
			fputc(16 + 40 * i, f);
		for (size_t j = 0; j < chroma_bytes; j++)
			fputc(128, f);
	}
	if (truncate)
		fputs("FRAME\nxyz", f);
	fclose(f);
	return path;
}

static void read_grey_frames(const char *spec, int w, int h, int frames)
{
	struct capture *c = open_ok(spec, NULL);
	uint8_t *buf = malloc((size_t)w * h * 4);
	struct capture_frame f = { .rgba = buf, .stride = w * 4 };
	char err[256];

	T_EQ_INT(capture_get_info(c)->width, w);
	T_EQ_INT(capture_get_info(c)->height, h);
	for (int i = 0; i < frames; i++) {
		T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
		/* grey: R = G = B, brighter each frame (Y = 16 + 40 i, limited range) */
		T_NEAR(buf[0], buf[1], 2);
		T_NEAR(buf[1], buf[2], 2);
		T_NEAR(buf[4 * (w * h - 1)], 40 * i * 255.0 / 219.0, 3);
		T_EQ_INT(buf[3], 255);
	}
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -ENODATA);
	free(buf);
	capture_close(c);
}

static void test_y4m_layouts(void)
{
	char spec[600];

	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("a.y4m", "YUV4MPEG2 W32 H16 F25:1 Ip A1:1 C420jpeg", 32, 16, 2 * 16 * 8, 3, 0, 0));
	read_grey_frames(spec, 32, 16, 3);
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("b.y4m", "YUV4MPEG2 W31 H15 F30000:1001 C420", 31, 15, 2 * 16 * 8, 2, 0, 0));
	read_grey_frames(spec, 31, 15, 2);
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("c.y4m", "YUV4MPEG2 W32 H16 C422", 32, 16, 2 * 16 * 16, 2, 0, 0));
	read_grey_frames(spec, 32, 16, 2);
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("d.y4m", "YUV4MPEG2 W32 H16 C444", 32, 16, 2 * 32 * 16, 2, 0, 0));
	read_grey_frames(spec, 32, 16, 2);
}

static void test_y4m_broken_frame_is_skipped(void)
{
	char spec[600], err[512] = "";
	struct capture *c;
	uint8_t buf[32 * 16 * 4];
	struct capture_frame f = { .rgba = buf, .stride = 32 * 4 };

	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("j.y4m", "YUV4MPEG2 W32 H16 C420jpeg", 32, 16, 2 * 16 * 8, 3, 1, 1));
	c = open_ok(spec, NULL);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -EBADMSG);
	T_STR_CONTAINS(err, "j.y4m: after frame 1: bad frame header");
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0); /* frame 1 itself */
	T_EQ_INT(f.sequence, 1);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -ENODATA); /* the truncated tail */
	T_STR_CONTAINS(err, "truncated");
	capture_close(c);
}

static void test_y4m_bad_headers(void)
{
	char spec[600];

	expect_open_error("y4m:/nonexistent.y4m", "/nonexistent.y4m: cannot open");
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("e.y4m", "YUV4MPEG3 W32 H16", 0, 0, 0, 0, 0, 0));
	expect_open_error(spec, "not a YUV4MPEG2 stream");
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("f.y4m", "YUV4MPEG2 W0 H16", 0, 0, 0, 0, 0, 0));
	expect_open_error(spec, "bad frame size 0x16");
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("g.y4m", "YUV4MPEG2 W32 H16 C410", 0, 0, 0, 0, 0, 0));
	expect_open_error(spec, "unsupported header field 'C410'");
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("h.y4m", "YUV4MPEG2 W32 H16 It", 0, 0, 0, 0, 0, 0));
	expect_open_error(spec, "unsupported header field 'It'");
	expect_open_error("v4l3:/dev/video0", "unknown source");
}

/* A frame read without a buffer (the pipeline has no free slot for it) is
 * taken from the source unconverted: the next read delivers the one after. */
static void test_read_without_converting(void)
{
	char spec[600], err[256];
	uint8_t buf[32 * 16 * 4];
	struct capture_frame f = { .rgba = buf, .stride = 32 * 4 }, skip = { .rgba = NULL };
	struct capture_params p = { .width = 32, .height = 16 };
	struct capture *c;

	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("skip.y4m", "YUV4MPEG2 W32 H16 C420jpeg", 32, 16, 2 * 16 * 8, 3, 0, 0));
	c = open_ok(spec, NULL);
	T_EQ_INT(capture_read(c, &skip, err, sizeof(err)), 0);
	T_EQ_INT(skip.sequence, 0);
	T_CMP_INT(skip.timestamp_ns, >, 0);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
	T_EQ_INT(f.sequence, 1);
	T_NEAR(buf[0], 40 * 255.0 / 219.0, 3); /* frame 1 itself: Y = 56 */
	T_EQ_INT(capture_read(c, &skip, err, sizeof(err)), 0);
	T_EQ_INT(skip.sequence, 2);
	T_EQ_INT(capture_read(c, &skip, err, sizeof(err)), -ENODATA);
	capture_close(c);

	c = open_ok("synthetic", &p);
	T_EQ_INT(capture_read(c, &skip, err, sizeof(err)), 0);
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
	T_EQ_INT(f.sequence, 1);
	T_EQ_INT(buf[3], 255); /* drawn */
	capture_close(c);
}

/* A 32x16 file, black left half, white right half, 2 frames. */
static const char *write_halves_y4m(const char *name, const char *header)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
	f = fopen(path, "wb");
	T_ASSERT(f);
	fprintf(f, "%s\n", header);
	for (int i = 0; i < 2; i++) {
		fputs("FRAME\n", f);
		for (int j = 0; j < 32 * 16; j++)
			fputc(j % 32 < 16 ? 16 : 235, f);
		for (int j = 0; j < 2 * 16 * 8; j++)
			fputc(128, f);
	}
	fclose(f);
	return path;
}

/* A wanted size (--size) scales a file's frames to it; a wanted rate is
 * not applied: the file plays at its own. */
static void test_y4m_scaled_to_wanted_size(void)
{
	struct capture_params want = { .width = 64, .height = 48, .fps_num = 5, .fps_den = 1 };
	char spec[600], err[512] = "";
	uint8_t *buf = malloc(64 * 48 * 4);
	struct capture_frame f = { .rgba = buf, .stride = 64 * 4 };
	struct capture *c;

	snprintf(spec, sizeof(spec), "y4m:%s", write_halves_y4m("halves.y4m", "YUV4MPEG2 W32 H16 F25:1 C420jpeg"));
	c = open_ok(spec, &want);
	T_EQ_INT(capture_get_info(c)->width, 64);
	T_EQ_INT(capture_get_info(c)->height, 48);
	T_EQ_INT(capture_get_info(c)->fps_num, 25);
	T_EQ_INT(capture_get_info(c)->file, 1);
	for (int i = 0; i < 2; i++) {
		T_EQ_INT(capture_read(c, &f, err, sizeof(err)), 0);
		for (int y = 0; y < 48; y += 47) {
			const uint8_t *row = buf + (size_t)y * 64 * 4;
			T_CMP_INT(row[4 * 8], <, 10);         /* black on the left quarter */
			T_CMP_INT(row[4 * 56 + 1], >, 245);   /* white on the right quarter */
			T_EQ_INT(row[4 * 63 + 3], 255);
		}
	}
	T_EQ_INT(capture_read(c, &f, err, sizeof(err)), -ENODATA);
	capture_close(c);
	want.width = 9000;
	T_CMP_INT(capture_open(spec, &want, &c, err, sizeof(err)), <, 0);
	T_STR_CONTAINS(err, "cannot scale to 9000x48");
	c = open_ok("synthetic", NULL);
	T_EQ_INT(capture_get_info(c)->file, 0);
	capture_close(c);
	free(buf);
}

/* The real webcam clip, converted by ffmpeg: every frame arrives. */
static void test_y4m_real_clip(void)
{
	char cmd[2048], spec[600], err[256];
	const char *clip = t_path("../../shared/data/media/cap13_edit2.mp4");
	struct capture *c;
	uint8_t *buf;
	int n = 0;

	if (access(clip, R_OK) != 0)
		t_skip("%s not found (the shared data is not beside this clone)", clip);
	if (system("ffmpeg -version >/dev/null 2>&1") != 0)
		t_skip("ffmpeg not installed");
	snprintf(spec, sizeof(spec), "y4m:%s/clip.y4m", t_tmpdir());
	snprintf(cmd, sizeof(cmd), "ffmpeg -loglevel error -y -i '%s' -frames:v 12 -pix_fmt yuv420p '%s'",
		 clip, spec + 4);
	T_EQ_INT(system(cmd), 0);
	c = open_ok(spec, NULL);
	T_EQ_INT(capture_get_info(c)->width, 400);
	T_EQ_INT(capture_get_info(c)->fps_num / capture_get_info(c)->fps_den, 25);
	buf = malloc(400 * 300 * 4);
	struct capture_frame f = { .rgba = buf, .stride = 400 * 4 };
	while (capture_read(c, &f, err, sizeof(err)) == 0)
		T_EQ_INT(f.sequence, (uint64_t)n++);
	T_EQ_INT(n, 12);
	free(buf);
	capture_close(c);
}

/* Which format a camera is asked for, from what it lists: the one wanted
 * when it is there, else the rank (YUYV up to 640x480, MJPEG above). */
static void test_format_choice(void)
{
	const enum capture_format A = CAPTURE_FORMAT_AUTO, Y = CAPTURE_FORMAT_YUYV,
				  M = CAPTURE_FORMAT_MJPEG, N = CAPTURE_FORMAT_NV12;
	const enum capture_format webcam[] = { Y, M }, vivid[] = { Y, A, A, N, A },
				  nv12[] = { A, N }, none[] = { A, A }, twice[] = { N, A, Y, N };
	enum capture_format f = Y;
	char list[32];

	/* the rank */
	T_EQ_INT(capture_format_choose(webcam, 2, 640, 480, A), Y);
	T_EQ_INT(capture_format_choose(webcam, 2, 1280, 720, A), M);
	T_EQ_INT(capture_format_choose(vivid, 5, 640, 480, A), Y);
	T_EQ_INT(capture_format_choose(vivid, 5, 1280, 720, A), Y); /* equal to NV12: listed first */
	T_EQ_INT(capture_format_choose(nv12, 2, 640, 480, A), N);
	T_EQ_INT(capture_format_choose(none, 2, 640, 480, A), A);
	T_EQ_INT(capture_format_choose(NULL, 0, 640, 480, A), A);
	/* the format wanted, at any size, when listed */
	T_EQ_INT(capture_format_choose(webcam, 2, 640, 480, M), M);
	T_EQ_INT(capture_format_choose(webcam, 2, 1920, 1080, Y), Y);
	T_EQ_INT(capture_format_choose(vivid, 5, 640, 480, N), N);
	T_EQ_INT(capture_format_choose(vivid, 5, 1280, 720, N), N);
	/* else the rank: vivid has no MJPEG */
	T_EQ_INT(capture_format_choose(vivid, 5, 640, 480, M), Y);
	T_EQ_INT(capture_format_choose(vivid, 5, 1280, 720, M), Y);
	T_EQ_INT(capture_format_choose(nv12, 2, 640, 480, Y), N);
	T_EQ_INT(capture_format_choose(none, 2, 640, 480, Y), A);

	capture_format_list(vivid, 5, list, sizeof(list));
	T_ASSERT(strcmp(list, "yuyv, nv12") == 0);
	capture_format_list(twice, 4, list, sizeof(list));
	T_ASSERT(strcmp(list, "nv12, yuyv") == 0);
	capture_format_list(none, 2, list, sizeof(list));
	T_ASSERT(strcmp(list, "") == 0);
	capture_format_list(webcam, 2, list, 6); /* cut short, terminated */
	T_ASSERT(strcmp(list, "yuyv,") == 0);

	for (int i = CAPTURE_FORMAT_AUTO; i <= CAPTURE_FORMAT_NV12; i++) {
		T_EQ_INT(capture_format_parse(capture_format_name((enum capture_format)i), &f), 0);
		T_EQ_INT(f, i);
	}
	T_ASSERT(strcmp(capture_format_name(N), "nv12") == 0);
	T_EQ_INT(capture_format_parse("NV12", &f), -EINVAL);
	T_EQ_INT(capture_format_parse(NULL, &f), -EINVAL);
	T_EQ_INT(f, N); /* untouched */
}

/* Files and the test pattern have no pixel format to choose: one wanted is
 * ignored, and they are not cameras. */
static void test_format_ignored_by_files(void)
{
	struct capture_params p = { .width = 64, .height = 48, .format = CAPTURE_FORMAT_MJPEG };
	struct capture *c = open_ok("synthetic", &p);
	char spec[600];

	T_EQ_INT(capture_get_info(c)->camera, 0);
	T_EQ_INT(capture_get_info(c)->format_fallback, 0);
	T_ASSERT(strcmp(capture_get_info(c)->format, "RGBA") == 0);
	capture_close(c);
	snprintf(spec, sizeof(spec), "y4m:%s", write_y4m("fmt.y4m", "YUV4MPEG2 W32 H16 C420jpeg",
							 32, 16, 2 * 16 * 8, 1, 0, 0));
	c = open_ok(spec, &p);
	T_EQ_INT(capture_get_info(c)->camera, 0);
	T_EQ_INT(capture_get_info(c)->format_fallback, 0);
	T_ASSERT(strcmp(capture_get_info(c)->format, "I420") == 0);
	capture_close(c);
}

T_MAIN(T_CASE(test_synthetic),
       T_CASE(test_realtime_pacing),
       T_CASE(test_interrupt_wakes_reader),
       T_CASE(test_y4m_layouts),
       T_CASE(test_y4m_broken_frame_is_skipped),
       T_CASE(test_y4m_bad_headers),
       T_CASE(test_read_without_converting),
       T_CASE(test_y4m_scaled_to_wanted_size),
       T_CASE(test_y4m_real_clip),
       T_CASE(test_format_choice),
       T_CASE(test_format_ignored_by_files))
