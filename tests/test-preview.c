/* The preview window under SDL's offscreen driver. A test of its own: SDL's
 * video drivers keep allocations past their unloading, which the leak
 * checker of the sanitizer build would report against us. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "pipeline-util.h"
#include "model.h"
#include "pipeline.h"
#include "render.h"

/* The preview under SDL's offscreen driver: the screenshot shows the frame
 * with the legend's swatches and the overlay text box. */
static void test_preview_offscreen(void)
{
#if HAVE_SDL2
	struct model *m = pu_load_default();
	char shot[512], err[256];
	struct pipeline_config cfg = { .source = "synthetic", .capture = { .width = 320, .height = 240 },
				       .res = 128, .refine = 4, .alpha = 0.5f, .max_frames = 5,
				       .preview = 1, .screenshot = shot };
	struct pipeline_stats st;
	struct image img;
	int hair_swatch = 0;

	setenv("SDL_VIDEODRIVER", "offscreen", 1);
	snprintf(shot, sizeof(shot), "%s/preview.png", t_tmpdir());
	struct pipeline *p = pu_start(&cfg, m);
	pu_run_to_end(p, &st);
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

/* GL on a software rasteriser gives way to SDL's software renderer, and
 * the log says why; a renderer asked for by name is kept. */
static void test_preview_renderer(void)
{
#if HAVE_SDL2
	struct preview *pv;
	char err[256];
	const char *r;

	setenv("SDL_VIDEODRIVER", "offscreen", 1);
	unsetenv("SDL_RENDER_DRIVER");
	T_EQ_INT(preview_open(64, 48, &pv, err, sizeof(err)), 0);
	r = preview_renderer(pv);
	T_CMP_INT((int)strlen(r), >, 0);
	if (strstr(r, "GL would run on"))
		T_STR_CONTAINS(r, "software (GL would run on ");
	preview_close(pv);

	setenv("SDL_RENDER_DRIVER", "software", 1);
	T_EQ_INT(preview_open(64, 48, &pv, err, sizeof(err)), 0);
	T_ASSERT(strcmp(preview_renderer(pv), "software") == 0);
	preview_close(pv);
	unsetenv("SDL_RENDER_DRIVER");
#else
	t_skip("built without SDL2");
#endif
}

T_MAIN(T_CASE(test_preview_offscreen), T_CASE(test_preview_renderer))
