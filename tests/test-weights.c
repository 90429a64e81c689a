/* The weights loader against good, truncated, bit-flipped, wrong-version
 * and wrong-shape files: every bad file is refused with a message naming
 * the file and the problem, never a crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "model.h"

struct blob {
	uint8_t *data;
	size_t size;
};

static struct blob read_fixture(void)
{
	struct blob b = { 0 };
	FILE *f = fopen(t_path("fixtures/tiny.fpw"), "rb");

	T_ASSERT(f);
	fseek(f, 0, SEEK_END);
	b.size = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	b.data = malloc(b.size);
	T_ASSERT(b.data && fread(b.data, 1, b.size, f) == b.size);
	fclose(f);
	return b;
}

static const char *write_tmp(const char *name, const uint8_t *data, size_t size)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
	f = fopen(path, "wb");
	T_ASSERT(f);
	T_ASSERT(size == 0 || fwrite(data, 1, size, f) == size);
	fclose(f);
	return path;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the CRC so that only the edited field is wrong. */
static void fix_crc(struct blob *b)
{
	uLong crc;

	put32(b->data + 24, 0);
	crc = crc32(0L, b->data, (uInt)b->size);
	put32(b->data + 24, (uint32_t)crc);
}

/* Loads and expects failure r with a message holding the path and want. */
static void expect_refused(const char *path, int r_want, const char *want)
{
	char err[512] = "";
	struct model *m = (struct model *)1;
	int r = model_load(path, &m, err, sizeof(err));

	T_EQ_INT(r, r_want);
	T_ASSERT(m == NULL);
	T_STR_CONTAINS(err, path);
	T_STR_CONTAINS(err, want);
}

static void test_good_file_loads(void)
{
	char err[512];
	struct model *m;
	const struct model_info *in;

	T_EQ_INT(model_load(t_path("fixtures/tiny.fpw"), &m, err, sizeof(err)), 0);
	in = model_get_info(m);
	T_EQ_INT(in->num_classes, 19);
	T_EQ_INT(in->head_stride, 2);
	T_EQ_INT(in->chans[2], 16);
	T_EQ_INT(in->mlp_layers, 2);
	T_ASSERT(strcmp(in->class_names[13], "hair") == 0);
	T_CMP_INT(in->params, >, 1000);
	model_free(m);
	model_free(NULL);
}

static void test_missing_and_not_regular(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/nope.fpw", t_tmpdir());
	expect_refused(path, -ENOENT, "cannot open");
	expect_refused(t_tmpdir(), -EINVAL, "not a regular file");
	expect_refused(write_tmp("empty.fpw", NULL, 0), -EINVAL, "too short");
}

static void test_truncated(void)
{
	struct blob b = read_fixture();
	const size_t cuts[] = { 1, 100, 255, 256, 300, b.size / 2, b.size - 1 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		const char *p = write_tmp("cut.fpw", b.data, cuts[i]);
		expect_refused(p, -EINVAL, cuts[i] < 256 ? "too short" : "truncated");
	}
	free(b.data);
}

static void test_bit_flips(void)
{
	struct blob b = read_fixture();
	uint32_t seed = 99;

	for (int i = 0; i < 64; i++) {
		seed = seed * 1103515245u + 12345u;
		size_t at = (seed >> 4) % b.size;
		/* keep the magic, version and size intact: the CRC must catch it */
		if (at < 24)
			at += 32;
		uint8_t bit = (uint8_t)(1u << ((seed >> 24) & 7));
		b.data[at] ^= bit;
		const char *p = write_tmp("flip.fpw", b.data, b.size);
		expect_refused(p, -EBADMSG, "checksum mismatch");
		b.data[at] ^= bit;
	}
	free(b.data);
}

static void test_bad_magic(void)
{
	struct blob b = read_fixture();

	b.data[6] = '\n'; /* CR-LF -> LF-LF, as a text-mode copy does */
	expect_refused(write_tmp("magic.fpw", b.data, b.size), -EINVAL, "bad magic");
	free(b.data);
}

static void test_wrong_version(void)
{
	struct blob b = read_fixture();

	put32(b.data + 8, 2);
	fix_crc(&b);
	expect_refused(write_tmp("v2.fpw", b.data, b.size), -EPROTO, "format version 2");
	free(b.data);
}

/* Changes mlp_hidden in the header: every MLP tensor now has the wrong
 * shape, and the first one met is named. */
static void test_wrong_shape(void)
{
	struct blob b = read_fixture();

	put32(b.data + 80, 17);
	fix_crc(&b);
	expect_refused(write_tmp("shape.fpw", b.data, b.size), -EINVAL, "tensor 'mlp.0.weight': shape (17, 26) expected");
	free(b.data);
}

static void test_hparam_out_of_range(void)
{
	struct blob b = read_fixture();

	put32(b.data + 44, 3); /* head stride */
	fix_crc(&b);
	expect_refused(write_tmp("stride.fpw", b.data, b.size), -EINVAL, "head_stride = 3 out of range");
	put32(b.data + 44, 2);
	put32(b.data + 124, 2); /* skip is 0 or 1 */
	fix_crc(&b);
	expect_refused(write_tmp("skip2.fpw", b.data, b.size), -EINVAL, "skip = 2 out of range");
	free(b.data);
}

/* A file that says it has the group-1 skip but whose first pixel-MLP layer
 * lacks the c1 = 8 columns for it. */
static void test_skip_without_columns(void)
{
	struct blob b = read_fixture();

	put32(b.data + 124, 1);
	fix_crc(&b);
	expect_refused(write_tmp("skip.fpw", b.data, b.size), -EINVAL,
		       "tensor 'mlp.0.weight': shape (16, 34) expected, file has (16, 26)");
	free(b.data);
}

static void test_renamed_tensor(void)
{
	struct blob b = read_fixture();
	uint32_t table = b.data[120] | b.data[121] << 8 | b.data[122] << 16 | (uint32_t)b.data[123] << 24;

	/* the first entry is head.weight: call it something else */
	T_ASSERT(memcmp(b.data + table, "head.weight", 11) == 0);
	memcpy(b.data + table, "head.wEight", 11);
	fix_crc(&b);
	expect_refused(write_tmp("name.fpw", b.data, b.size), -EINVAL, "tensor 'head.weight' missing");
	free(b.data);
}

static void test_tensor_outside_file(void)
{
	struct blob b = read_fixture();
	uint32_t table = b.data[120] | b.data[121] << 8 | b.data[122] << 16 | (uint32_t)b.data[123] << 24;

	put32(b.data + table + 80, (uint32_t)b.size - 64); /* head.weight's data offset */
	fix_crc(&b);
	expect_refused(write_tmp("off.fpw", b.data, b.size), -EINVAL, "outside the file");
	free(b.data);
}

/* Labels of a small fixed image: the forward pass reads every weight. */
static void parse_pattern(struct model *m, uint8_t *labels)
{
	struct model_run *run = model_run_create(m, 96);
	uint8_t rgba[64 * 64 * 4];

	T_ASSERT(run);
	for (size_t i = 0; i < sizeof(rgba); i++)
		rgba[i] = (uint8_t)(i * 7 + (i >> 8) * 13);
	T_EQ_INT(model_encode_rgba(run, rgba, 64 * 4, 64, 64, 96), 0);
	T_EQ_INT(model_decode_labels(run, 32, 32, labels, 32, NULL), 0);
	model_run_destroy(run);
}

/* A loaded model no longer depends on its file: truncated in place (cp
 * over it, an editor saving), overwritten with zeros or removed, the
 * weights stay those that were checked (a mapping of the file would fault
 * with SIGBUS on the next forward pass). */
static void test_file_changed_after_load(void)
{
	struct blob b = read_fixture();
	uint8_t before[32 * 32], after[32 * 32];
	const char *path = write_tmp("live.fpw", b.data, b.size);
	char err[512];
	struct model *m;
	FILE *f;

	T_EQ_INT(model_load(path, &m, err, sizeof(err)), 0);
	parse_pattern(m, before);
	T_EQ_INT(truncate(path, 100), 0);
	parse_pattern(m, after);
	T_ASSERT(memcmp(before, after, sizeof(before)) == 0);
	f = fopen(path, "r+b");
	T_ASSERT(f);
	memset(b.data, 0, b.size);
	T_ASSERT(fwrite(b.data, 1, b.size, f) == b.size);
	fclose(f);
	parse_pattern(m, after);
	T_ASSERT(memcmp(before, after, sizeof(before)) == 0);
	T_EQ_INT(unlink(path), 0);
	parse_pattern(m, after);
	T_ASSERT(memcmp(before, after, sizeof(before)) == 0);
	model_free(m);
	free(b.data);
}

T_MAIN(T_CASE(test_good_file_loads),
       T_CASE(test_missing_and_not_regular),
       T_CASE(test_truncated),
       T_CASE(test_bit_flips),
       T_CASE(test_bad_magic),
       T_CASE(test_wrong_version),
       T_CASE(test_wrong_shape),
       T_CASE(test_hparam_out_of_range),
       T_CASE(test_skip_without_columns),
       T_CASE(test_renamed_tensor),
       T_CASE(test_tensor_outside_file),
       T_CASE(test_file_changed_after_load))
