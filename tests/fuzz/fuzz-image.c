/* The image files facet-parse and facet-eval read: image_load (JPEG or
 * PNG, by content) and image_load_labels (a palette or grey PNG label
 * map), on arbitrary files. A file is refused with a negative errno and
 * "PATH: problem", or read whole into a buffer of the size it reports. */
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "render.h"

static void check_refusal(const char *path, int r, const char *err)
{
	size_t n = strlen(path);

	FUZZ_CHECK(r < 0);
	FUZZ_CHECK(strncmp(err, path, n) == 0 && err[n] == ':');
}

/* The buffer holds the size reported: ASan checks this read. */
static void touch_last(const uint8_t *buf, size_t size)
{
	volatile uint8_t last = buf[size - 1];

	(void)last;
}

static void check_image(const char *path)
{
	struct image img;
	char err[512] = "";
	int r = image_load(path, &img, err, sizeof(err));

	if (r < 0) {
		check_refusal(path, r, err);
		FUZZ_CHECK(img.rgba == NULL);
		return;
	}
	FUZZ_CHECK(img.rgba && img.width > 0 && img.height > 0);
	touch_last(img.rgba, (size_t)img.width * img.height * 4);
	image_free(&img);
}

static void check_labels(const char *path)
{
	uint8_t *labels;
	char err[512] = "";
	int w, h, r = image_load_labels(path, &labels, &w, &h, err, sizeof(err));

	if (r < 0) {
		check_refusal(path, r, err);
		FUZZ_CHECK(labels == NULL);
		return;
	}
	FUZZ_CHECK(labels && w > 0 && h > 0);
	touch_last(labels, (size_t)w * h);
	free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);

	check_image(path);
	check_labels(path);
	return 0;
}
