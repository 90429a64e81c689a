/* The config file reader (config_read) on arbitrary files.
 *
 * A refused file gets a negative errno and "PATH:LINE: problem" (or
 * "PATH: problem"). Every setting of an accepted file reads back with
 * options_get() as text that config_set() (the control socket's `set`)
 * takes and turns into the same value. */
#include <string.h>

#include "configfile.h"
#include "fuzz-util.h"

static void check_refusal(const char *path, int r, const char *err)
{
	size_t n = strlen(path);

	FUZZ_CHECK(r < 0);
	FUZZ_CHECK(strncmp(err, path, n) == 0 && err[n] == ':' && err[n + 1]);
}

/* Each setting of o, as get shows it, set again into a copy of o. */
static void check_round_trip(struct config *c, const struct options *o)
{
	char value[8192], err[512];

	for (size_t i = 0; i < options_count(); i++) {
		struct options back = *o;
		const char *name = options_name(i);

		if (options_when(i) == OPTIONS_CLI_ONLY || strcmp(name, "output") == 0)
			continue; /* outputs read back as one list */
		if (options_get(o, i, value, sizeof(value)) != 0)
			continue;
		FUZZ_CHECK(config_set(c, &back, name, value, err, sizeof(err)) == 0);
		FUZZ_CHECK((options_diff(o, &back) & (1ull << i)) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file(data, size);
	struct options cli, o;
	struct config *c;
	char err[1024] = "";
	int r;

	options_defaults(&cli);
	cli.config = path;
	c = config_create(&cli);
	FUZZ_CHECK(c);
	options_defaults(&o);
	r = config_read(c, path, &o, err, sizeof(err));
	if (r < 0)
		check_refusal(path, r, err);
	else
		check_round_trip(c, &o);
	config_destroy(c);
	return 0;
}
