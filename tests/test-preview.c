/* The preview window under SDL's offscreen driver. A test of its own: SDL's
 * video drivers keep allocations past their unloading, which the leak
 * checker of the sanitizer build would report against us. */
#include <stdio.h>
#include <stdlib.h>

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

T_MAIN(T_CASE(test_preview_offscreen))
