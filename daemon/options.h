/* facetd's settings: the command line, the config file and the control
 * socket's get/set all go through one table.
 *
 * One table (options.c) describes every option: its long name (also its
 * config key), short letter, argument, one line of help, how its value is
 * checked, and when a change takes effect in a running facetd.
 *
 * Adding a setting: a field in struct options, a row in the table, and, if
 * it applies live, one line in service.c's apply_live().
 */
#ifndef FACETD_OPTIONS_H
#define FACETD_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define OPTIONS_MAX_OUTPUTS 4

/* String fields point into argv or into storage the config module keeps;
 * struct options never owns memory and may be copied freely. */
struct options {
	const char *model;    /* weights file; NULL: the shipped default */
	const char *source;   /* frame source spec */
	const char *outputs[OPTIONS_MAX_OUTPUTS];
	int n_outputs;
	int res;              /* encoder input side */
	int threads;          /* BLAS threads for inference */
	int refine;           /* boundary refinement step, 1 = dense */
	int width, height;    /* wanted capture size; 0: the source's own */
	int fps;              /* wanted capture rate; 0: the source's own */
	const char *format;   /* camera pixel format: "auto", "yuyv", "mjpeg" or "nv12" */
	int no_pacing;        /* file sources as fast as they are read */
	int no_on_demand;     /* keep the camera open while nobody reads the virtual camera */
	int alpha;            /* overlay opacity, percent */
	int smoothing;        /* temporal smoothing, percent kept */
	const char *effect;   /* effect spec (render.h effect_parse) */
	const char *tint_hair, *tint_lips; /* RRGGBB; NULL: the effect's defaults */
	const char *output_labels; /* label-map stream; NULL: none */
	const char *output_format; /* "yuyv" or "i420" */
	int frames;           /* stop after this many output frames; 0: never */
	const char *stats_json; /* write the stats as JSON here at exit ("-": stdout);
				 * NULL: nowhere */
	int preview;          /* show the SDL2 preview window */
	const char *screenshot; /* with preview: window as PNG at exit */
	enum log_level log_level;
	const char *config;   /* config file; NULL: the default (configfile.h) */
	const char *control;  /* control socket; NULL: the default (control.h) */
	uint64_t given;       /* bit i: the table's option i was set */
};

/* When a changed value takes effect in a running facetd. */
enum options_when {
	OPTIONS_CLI_ONLY,     /* not a setting: --help, --version, --config */
	OPTIONS_AT_START,     /* read once when facetd starts */
	OPTIONS_RESTART,      /* the pipeline (capture stream) restarts */
	OPTIONS_LIVE,         /* the running pipeline takes it from its next frame */
};

enum options_result {
	OPTIONS_RUN = 0,      /* go on and run */
	OPTIONS_DONE = 1,     /* --help or --version answered */
	OPTIONS_DOCTOR = 2,   /* --doctor: check the set-up instead of running */
};

void options_defaults(struct options *o);

/* Parses argv into o. Returns OPTIONS_RUN, OPTIONS_DONE, or -EINVAL after
 * printing "facetd: --OPTION: problem" to err. */
int options_parse(struct options *o, int argc, char **argv, FILE *out, FILE *err);

/* Prints the usage text: every option with one line of help. */
void options_usage(FILE *f);

/* The table, by index: 0 .. options_count() - 1. */
size_t options_count(void);
const char *options_name(size_t i);
enum options_when options_when(size_t i);
/* Index of the option with this long name, or -ENOENT. */
int options_find(const char *name);

/* Sets one option from text, as a config file or `set KEY VALUE` gives it.
 * Flags take a boolean word (true/false, yes/no, on/off, 1/0); an output
 * is added to the list. String values are stored as the pointer given: the
 * caller keeps them alive. Returns 0, -ENOENT for an unknown key or
 * -EINVAL for a value out of range or a key that is not a setting, with
 * "KEY: problem" in err. */
int options_set(struct options *o, const char *key, const char *value,
		char *err, size_t errlen);

/* Writes option i's value as text a config file takes. Returns 1 when the
 * option is unset (buf ""), 0 otherwise, -ENOSPC when buf is too small. */
int options_get(const struct options *o, size_t i, char *buf, size_t len);

/* Masks: bit i is the table's option i. */
uint64_t options_mask(enum options_when when);
/* Options whose values differ between a and b (aliases and --help are never
 * reported). */
uint64_t options_diff(const struct options *a, const struct options *b);
/* Copies the options in mask from src to dst (outputs as a whole list). */
void options_copy(struct options *dst, const struct options *src, uint64_t mask);
/* Writes the names in mask as "a, b, c" into buf. */
void options_names(uint64_t mask, char *buf, size_t len);

#endif
