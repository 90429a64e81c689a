/* Loading and validating a weights file (model/FORMAT.md).
 *
 * Nothing of the file is trusted until checked: its size against the header,
 * its CRC, every hyper-parameter against a range, every tensor against the
 * name, shape, dtype and place the hyper-parameters call for. Only then are
 * pointers into the file's copy in memory handed to the engine.
 */
#include "model-priv.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"

#define FPW_MAGIC "FPLIIF\r\n"
#define FPW_VERSION 1
#define FPW_HEADER 256
#define FPW_ENTRY 96
#define FPW_NAME 56
#define FPW_CRC_OFF 24

struct loader {
	const char *path;
	const uint8_t *p;
	size_t size;
	uint32_t ntensors, names_off, table_off;
	uint8_t *seen; /* one flag per tensor-table entry */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct loader *ld, int r, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(ld->err, ld->errlen, "%s: ", ld->path);
	if (n >= 0 && (size_t)n < ld->errlen) {
		va_start(ap, fmt);
		vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return r;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static float rdf32(const uint8_t *p)
{
	uint32_t u = rd32(p);
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

static uint32_t file_crc(const uint8_t *p, size_t size)
{
	static const uint8_t zero[4];
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32_z(crc, p, FPW_CRC_OFF);
	crc = crc32_z(crc, zero, sizeof(zero));
	crc = crc32_z(crc, p + FPW_CRC_OFF + 4, size - FPW_CRC_OFF - 4);
	return (uint32_t)crc;
}

static int check_header(struct loader *ld)
{
	const uint8_t *p = ld->p;
	uint64_t fsize;

	if (ld->size < FPW_HEADER)
		return fail(ld, -EINVAL, "%zu bytes: too short for a weights file", ld->size);
	if (memcmp(p, FPW_MAGIC, 8) != 0)
		return fail(ld, -EINVAL, "not an FP-LIIF weights file (bad magic)");
	if (rd32(p + 8) != FPW_VERSION)
		return fail(ld, -EPROTO, "format version %u, this build reads version %d",
			    rd32(p + 8), FPW_VERSION);
	if (rd32(p + 12) != FPW_HEADER)
		return fail(ld, -EINVAL, "header size %u, expected %d", rd32(p + 12), FPW_HEADER);
	fsize = rd64(p + 16);
	if (fsize != ld->size)
		return fail(ld, -EINVAL, "truncated or extended: header says %llu bytes, file has %zu",
			    (unsigned long long)fsize, ld->size);
	if (file_crc(p, ld->size) != rd32(p + FPW_CRC_OFF))
		return fail(ld, -EBADMSG, "checksum mismatch (file corrupt)");
	return 0;
}

static int check_range(struct loader *ld, const char *what, long v, long lo, long hi)
{
	if (v < lo || v > hi)
		return fail(ld, -EINVAL, "%s = %ld out of range [%ld, %ld]", what, v, lo, hi);
	return 0;
}

static int read_hparams(struct loader *ld, struct model_info *in)
{
	const uint8_t *p = ld->p;
	int r = 0;

	in->num_classes = (int)rd32(p + 28);
	in->res_train = (int)rd32(p + 32);
	in->res_min = (int)rd32(p + 36);
	in->res_max = (int)rd32(p + 40);
	in->head_stride = (int)rd32(p + 44);
	for (int i = 0; i < 3; i++) {
		in->chans[i] = (int)rd32(p + 48 + 4 * i);
		in->blocks[i] = (int)rd32(p + 60 + 4 * i);
		in->mean[i] = rdf32(p + 88 + 4 * i);
		in->std[i] = rdf32(p + 100 + 4 * i);
	}
	in->red_hidden = (int)rd32(p + 72);
	in->red_out = (int)rd32(p + 76);
	in->mlp_hidden = (int)rd32(p + 80);
	in->mlp_layers = (int)rd32(p + 84);
	in->skip = (int)rd32(p + 124);
	ld->ntensors = rd32(p + 112);
	ld->names_off = rd32(p + 116);
	ld->table_off = rd32(p + 120);

	r = r ? r : check_range(ld, "classes", in->num_classes, 2, MODEL_MAX_CLASSES);
	r = r ? r : check_range(ld, "res_min", in->res_min, 16, 1024);
	r = r ? r : check_range(ld, "res_max", in->res_max, in->res_min, 1024);
	r = r ? r : check_range(ld, "res_train", in->res_train, in->res_min, in->res_max);
	r = r ? r : check_range(ld, "head_stride", in->head_stride, 1, 2);
	for (int i = 0; i < 3 && !r; i++) {
		r = check_range(ld, "channels", in->chans[i], 1, 1024);
		r = r ? r : check_range(ld, "blocks", in->blocks[i], 0, MODEL_MAX_BLOCKS);
		if (!r && !(in->std[i] > 1e-6f && isfinite(in->std[i]) && isfinite(in->mean[i])))
			r = fail(ld, -EINVAL, "input normalisation of channel %d is not finite/positive", i);
	}
	r = r ? r : check_range(ld, "red_hidden", in->red_hidden, 1, 4096);
	r = r ? r : check_range(ld, "red_out", in->red_out, 1, 4096);
	r = r ? r : check_range(ld, "mlp_hidden", in->mlp_hidden, 1, 4096);
	r = r ? r : check_range(ld, "mlp_layers", in->mlp_layers, 1, MODEL_MAX_MLP);
	r = r ? r : check_range(ld, "skip", in->skip, 0, 1);
	return r;
}

static int read_tables(struct loader *ld, struct model_info *in)
{
	uint64_t names_end = (uint64_t)ld->names_off + 16ull * (unsigned)in->num_classes;
	uint64_t table_end = (uint64_t)ld->table_off + (uint64_t)FPW_ENTRY * ld->ntensors;

	if (ld->ntensors == 0 || ld->ntensors > 4096)
		return fail(ld, -EINVAL, "tensor count %u out of range", ld->ntensors);
	if (ld->names_off < FPW_HEADER || names_end > ld->size)
		return fail(ld, -EINVAL, "class-name table outside the file");
	if (ld->table_off < FPW_HEADER || table_end > ld->size)
		return fail(ld, -EINVAL, "tensor table outside the file");
	for (int c = 0; c < in->num_classes; c++) {
		const uint8_t *n = ld->p + ld->names_off + 16 * c;
		if (memchr(n, 0, 16) == NULL)
			return fail(ld, -EINVAL, "class name %d is not NUL-terminated", c);
		memcpy(in->class_names[c], n, 16);
	}
	ld->seen = calloc(ld->ntensors, 1);
	return ld->seen ? 0 : fail(ld, -ENOMEM, "out of memory");
}

static const uint8_t *find_entry(struct loader *ld, const char *name, uint32_t *index)
{
	for (uint32_t i = 0; i < ld->ntensors; i++) {
		const uint8_t *e = ld->p + ld->table_off + (size_t)FPW_ENTRY * i;
		if (strncmp((const char *)e, name, FPW_NAME) == 0) {
			*index = i;
			return e;
		}
	}
	return NULL;
}

static void fmt_shape(char *buf, size_t len, const uint32_t *shape, uint32_t ndim)
{
	int n = snprintf(buf, len, "(");

	for (uint32_t i = 0; i < ndim && n > 0 && (size_t)n < len; i++)
		n += snprintf(buf + n, len - (size_t)n, i ? ", %u" : "%u", shape[i]);
	if (n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ")");
}

/* Looks a tensor up and checks it is f32 of exactly this shape and lies
 * aligned inside the file. */
static int tensor(struct loader *ld, const float **out, const char *name,
		  uint32_t ndim, uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3)
{
	const uint32_t want[4] = { d0, d1, d2, d3 };
	uint32_t index, have[4], hdim;
	uint64_t off, bytes, count = 1;
	char ws[64], hs[64];
	const uint8_t *e = find_entry(ld, name, &index);

	if (!e)
		return fail(ld, -EINVAL, "tensor '%s' missing", name);
	if (ld->seen[index]++)
		return fail(ld, -EINVAL, "tensor '%s' listed twice", name);
	if (rd32(e + 56) != 0)
		return fail(ld, -EINVAL, "tensor '%s': dtype %u, only f32 (0) is read", name, rd32(e + 56));
	hdim = rd32(e + 60);
	for (int i = 0; i < 4; i++)
		have[i] = rd32(e + 64 + 4 * i);
	if (hdim != ndim || memcmp(have, want, sizeof(want)) != 0) {
		fmt_shape(ws, sizeof(ws), want, ndim);
		fmt_shape(hs, sizeof(hs), have, hdim > 4 ? 4 : hdim);
		return fail(ld, -EINVAL, "tensor '%s': shape %s expected, file has %s", name, ws, hs);
	}
	for (int i = 0; i < 4; i++)
		count *= want[i];
	off = rd64(e + 80);
	bytes = rd64(e + 88);
	if (bytes != count * sizeof(float))
		return fail(ld, -EINVAL, "tensor '%s': %llu bytes for %llu values", name,
			    (unsigned long long)bytes, (unsigned long long)count);
	if (off % 64 || off < FPW_HEADER || off > ld->size || bytes > ld->size - off)
		return fail(ld, -EINVAL, "tensor '%s': data at %llu+%llu is unaligned or outside the file",
			    name, (unsigned long long)off, (unsigned long long)bytes);
	*out = (const float *)(const void *)(ld->p + off);
	return 0;
}

static int conv_tensors(struct loader *ld, struct conv *c, const char *prefix,
			int cin, int cout, int k, int stride)
{
	char name[FPW_NAME];
	int r;

	c->cin = cin;
	c->cout = cout;
	c->k = k;
	c->stride = stride;
	snprintf(name, sizeof(name), "%s.weight", prefix);
	r = tensor(ld, &c->w, name, 4, (uint32_t)cout, (uint32_t)cin, (uint32_t)k, (uint32_t)k);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%s.bias", prefix);
	return tensor(ld, &c->b, name, 1, (uint32_t)cout, 1, 1, 1);
}

static int linear_tensors(struct loader *ld, struct linear *l, const char *prefix,
			  int in, int out)
{
	char name[FPW_NAME];
	int r;

	l->in = in;
	l->out = out;
	snprintf(name, sizeof(name), "%s.weight", prefix);
	r = tensor(ld, &l->w, name, 2, (uint32_t)out, (uint32_t)in, 1, 1);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%s.bias", prefix);
	return tensor(ld, &l->b, name, 1, (uint32_t)out, 1, 1, 1);
}

static int group_tensors(struct loader *ld, struct model *m, int g)
{
	int c = m->info.chans[g];
	char prefix[FPW_NAME];
	int r = 0;

	for (int b = 0; b < m->info.blocks[g] && !r; b++) {
		snprintf(prefix, sizeof(prefix), "g%d.blocks.%d.conv1", g + 1, b);
		r = conv_tensors(ld, &m->blocks[g][2 * b], prefix, c, c, 3, 1);
		snprintf(prefix, sizeof(prefix), "g%d.blocks.%d.conv2", g + 1, b);
		r = r ? r : conv_tensors(ld, &m->blocks[g][2 * b + 1], prefix, c, c, 3, 1);
	}
	return r;
}

static int bind_tensors(struct loader *ld, struct model *m)
{
	const struct model_info *in = &m->info;
	int c1 = in->chans[0], c2 = in->chans[1], c3 = in->chans[2];
	int mh = in->mlp_hidden, in0 = in->red_out + c3 + 2 + (in->skip ? c1 : 0);
	char prefix[FPW_NAME];
	int r;

	r = conv_tensors(ld, &m->head, "head", 3, c1, 3, in->head_stride);
	r = r ? r : group_tensors(ld, m, 0);
	r = r ? r : conv_tensors(ld, &m->down1, "down1", c1, c2, 3, 2);
	r = r ? r : group_tensors(ld, m, 1);
	r = r ? r : conv_tensors(ld, &m->down2, "down2", c2, c3, 3, 2);
	r = r ? r : group_tensors(ld, m, 2);
	r = r ? r : conv_tensors(ld, &m->red1, "red1", c3, in->red_hidden, 3, 1);
	r = r ? r : conv_tensors(ld, &m->red2, "red2", in->red_hidden, in->red_out, 1, 1);
	for (int j = 0; j < in->mlp_layers && !r; j++) {
		snprintf(prefix, sizeof(prefix), "mlp.%d", j);
		r = linear_tensors(ld, &m->mlp[j], prefix, j ? mh : in0, mh);
	}
	r = r ? r : linear_tensors(ld, &m->out, "out", mh, in->num_classes);
	for (uint32_t i = 0; i < ld->ntensors && !r; i++) {
		if (!ld->seen[i])
			r = fail(ld, -EINVAL, "unexpected tensor '%.55s'",
				 (const char *)(ld->p + ld->table_off + (size_t)FPW_ENTRY * i));
	}
	return r;
}

static size_t count_params(const struct loader *ld)
{
	size_t n = 0;

	for (uint32_t i = 0; i < ld->ntensors; i++)
		n += rd64(ld->p + ld->table_off + (size_t)FPW_ENTRY * i + 88) / sizeof(float);
	return n;
}

/* Reads the whole file into memory, 64-byte aligned as the tensors'
 * offsets are. Not mmap: a mapping faults (SIGBUS) on the next forward pass
 * once the file is truncated in place (cp or an editor writing over it),
 * and a file written over in place would change the weights under a
 * running engine after they were checked. */
static int read_file(struct loader *ld, void **data)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, r = 0;

	fd = open(ld->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(ld, -errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0)
		r = fail(ld, -errno, "cannot stat: %s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		r = fail(ld, -EINVAL, "not a regular file");
	else if (st.st_size < FPW_HEADER)
		r = fail(ld, -EINVAL, "%lld bytes: too short for a weights file", (long long)st.st_size);
	if (r == 0) {
		ld->size = (size_t)st.st_size;
		buf = aligned_alloc(64, (ld->size + 63) / 64 * 64);
		if (!buf)
			r = fail(ld, -ENOMEM, "%zu bytes: out of memory", ld->size);
	}
	while (r == 0 && got < ld->size) {
		ssize_t n = read(fd, buf + got, ld->size - got);
		if (n < 0 && errno != EINTR)
			r = fail(ld, -errno, "cannot read: %s", strerror(errno));
		else if (n == 0)
			r = fail(ld, -EINVAL, "truncated while being read (%zu of %zu bytes)", got,
				 ld->size);
		else if (n > 0)
			got += (size_t)n;
	}
	close(fd);
	if (r < 0)
		free(buf);
	else
		*data = buf;
	return r;
}

/* Calls fn on every conv slot of m until one fails: all block slots,
 * bound or not (unbound ones have no weights), so that it serves a model
 * whose block counts were never checked, after a failed load, too. */
static int for_each_conv(struct model *m, int (*fn)(struct conv *))
{
	struct conv *one[] = { &m->head, &m->down1, &m->down2, &m->red1, &m->red2 };
	int r = 0;

	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]) && !r; i++)
		r = fn(one[i]);
	for (int g = 0; g < 3 && !r; g++)
		for (int b = 0; b < 2 * MODEL_MAX_BLOCKS && !r; b++)
			r = fn(&m->blocks[g][b]);
	return r;
}

/* The engine's own form of a conv's weights, where it has one. */
static int prepare_conv(struct conv *c)
{
	return c->w ? engine_wino_weights(c) : 0;
}

static int free_conv(struct conv *c)
{
	free(c->wino);
	c->wino = NULL;
	return 0;
}

int model_load(const char *path, struct model **out, char *err, size_t errlen)
{
	char dummy[1];
	struct loader ld = { .path = path, .err = err ? err : dummy,
			     .errlen = err ? errlen : sizeof(dummy) };
	struct model *m;
	int r;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(&ld, -ENOMEM, "out of memory");
	r = read_file(&ld, &m->data);
	if (r < 0)
		goto fail;
	m->size = ld.size;
	ld.p = m->data;
	r = check_header(&ld);
	r = r ? r : read_hparams(&ld, &m->info);
	r = r ? r : read_tables(&ld, &m->info);
	r = r ? r : bind_tensors(&ld, m);
	if (!r && (r = for_each_conv(m, prepare_conv)) < 0)
		fail(&ld, r, "out of memory");
	if (r < 0)
		goto fail;
	m->info.params = count_params(&ld);
	m->info.file_size = ld.size;
	free(ld.seen);
	*out = m;
	return 0;
fail:
	free(ld.seen);
	model_free(m);
	return r;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for_each_conv(m, free_conv);
	free(m->data);
	free(m);
}

const struct model_info *model_get_info(const struct model *m)
{
	return &m->info;
}

static bool readable(const char *path)
{
	return access(path, R_OK) == 0;
}

int model_default_path(char *buf, size_t len)
{
	const char *env = getenv("FACETD_MODEL");
	const char *dirs[] = { FACETD_SOURCE_ROOT "/model/weights", FACETD_DATADIR };

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return readable(buf) ? 0 : -ENOENT;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(buf, len, "%s/default.fpw", dirs[i]);
		if (readable(buf))
			return 0;
	}
	return -ENOENT;
}
