/* The preview window under SDL's offscreen driver. A test of its own: SDL's
 * video drivers keep allocations past their unloading, which the leak
 * checker of the sanitizer build would report against us. */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "harness.h"
#include "model.h"
#include "pipeline.h"
#include "render.h"

static struct model *load_default(void)
{
	char err[512];
	struct model *m;

	if (model_load(t_path("../model/weights/default.fpw"), &m, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "%s", err);
	model_set_threads(1);
	return m;
}

static struct pipeline *start(const struct pipeline_config *cfg, const struct model *m)
{
	char err[512] = "";
	struct pipeline *p;

	if (pipeline_start(cfg, m, &p, err, sizeof(err)) < 0)
		t_fail(__FILE__, __LINE__, "pipeline_start: %s", err);
	return p;
}

static void run_to_end(struct pipeline *p, struct pipeline_stats *st)
{
	for (int i = 0; i < 1200 && !pipeline_wait(p, 100); i++)
		;
	pipeline_get_stats(p, st);
	T_ASSERT(st->finished);
}

/* The preview under SDL's offscreen driver: the screenshot shows the frame
 * with the legend's swatches and the overlay text box. */
static void test_preview_offscreen(void)
{
#if HAVE_SDL2
	struct model *m = load_default();
	char shot[512], err[256];
	struct pipeline_config cfg = { .source = "synthetic", .capture = { .width = 320, .height = 240 },
				       .res = 128, .refine = 4, .alpha = 0.5f, .max_frames = 5,
				       .preview = 1, .screenshot = shot };
	struct pipeline_stats st;
	struct image img;
	int hair_swatch = 0;

	setenv("SDL_VIDEODRIVER", "offscreen", 1);
	snprintf(shot, sizeof(shot), "%s/preview.png", t_tmpdir());
	struct pipeline *p = start(&cfg, m);
	run_to_end(p, &st);
	pipeline_destroy(p);
	T_EQ_INT(st.written, 5);
	T_EQ_INT(image_load(shot, &img, err, sizeof(err)), 0);
	T_EQ_INT(img.width, 320);
	for (int i = 0; i < img.width * img.height; i++) {
		const uint8_t *px = img.rgba + 4 * i;
		hair_swatch += px[0] == 0 && px[1] == 0 && px[2] == 204; /* the legend's hair */
	}
	T_CMP_INT(hair_swatch, >=, 100);
	image_free(&img);
	model_free(m);
#else
	t_skip("built without SDL2");
#endif
}

T_MAIN(T_CASE(test_preview_offscreen))
