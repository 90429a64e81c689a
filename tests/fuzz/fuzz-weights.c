/* The weights loader (model_load) on arbitrary files.
 *
 * The input's file-size and CRC fields (model/FORMAT.md) are first set to
 * match it, or nearly every input would stop at the checksum. Weights the
 * loader accepts must then run: one encode at their smallest input side
 * and a refined and a dense decode, with every label a class id. That run
 * is made once for each set of hyper-parameters met (the first input of a
 * process always runs it): most inputs the loader takes differ from one
 * met before only in tensor values, and a forward pass costs ~10 ms. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz-util.h"
#include "model.h"

#define FPW_HEADER 256
#define FPW_SIZE_OFF 16
#define FPW_CRC_OFF 24
#define RUN_MAX_RES 128 /* larger inputs: loaded, not run (time) */
#define OUT_SIDE 16

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A copy of the input with its size and CRC fields made right. */
static uint8_t *with_size_and_crc(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	FUZZ_CHECK(copy);
	memcpy(copy, data, size);
	if (size >= FPW_HEADER) {
		put_le(copy + FPW_SIZE_OFF, size, 8);
		put_le(copy + FPW_CRC_OFF, 0, 4);
		put_le(copy + FPW_CRC_OFF, crc32_z(crc32_z(0, NULL, 0), copy, size), 4);
	}
	return copy;
}

static void check_labels(const uint8_t *labels, int num_classes)
{
	for (int i = 0; i < OUT_SIDE * OUT_SIDE; i++)
		FUZZ_CHECK(labels[i] < num_classes);
}

static void run_model(const struct model *m)
{
	static float chw[3 * RUN_MAX_RES * RUN_MAX_RES];
	const struct model_info *in = model_get_info(m);
	struct model_refine refine = { .step = 4 };
	uint8_t labels[OUT_SIDE * OUT_SIDE];
	struct model_run *run;
	int res = in->res_min;

	if (res > RUN_MAX_RES)
		return;
	for (int i = 0; i < 3 * res * res; i++)
		chw[i] = (float)(i % 11) / 5.0f - 1.0f;
	run = model_run_create(m, res);
	FUZZ_CHECK(run);
	FUZZ_CHECK(model_encode(run, chw, res) == 0);
	FUZZ_CHECK(model_decode_labels(run, OUT_SIDE, OUT_SIDE, labels, OUT_SIDE, &refine) == 0);
	check_labels(labels, in->num_classes);
	FUZZ_CHECK(model_decode_labels(run, OUT_SIDE, OUT_SIDE, labels, OUT_SIDE, NULL) == 0);
	check_labels(labels, in->num_classes);
	model_run_destroy(run);
}

/* Whether in's hyper-parameters differ from those of the last model run. */
static int new_shape(const struct model_info *in)
{
	static struct model_info last;
	struct model_info shape = *in;

	shape.file_size = 0;
	if (memcmp(&shape, &last, sizeof(shape)) == 0)
		return 0;
	last = shape;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *file = with_size_and_crc(data, size);
	const char *path = fuzz_file(file, size);
	struct model *m = NULL;
	char err[512] = "";
	int r;

	free(file);
	model_set_threads(1);
	r = model_load(path, &m, err, sizeof(err));
	if (r < 0) {
		/* refused: no model, and a message naming the file */
		FUZZ_CHECK(m == NULL);
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':');
		return 0;
	}
	FUZZ_CHECK(r == 0 && m);
	FUZZ_CHECK(model_get_info(m)->file_size == size);
	if (new_shape(model_get_info(m)))
		run_model(m);
	model_free(m);
	return 0;
}
