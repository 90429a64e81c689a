/* facetd's settings, from the command line (and later the config file).
 *
 * One table describes every option: its long name (also its config key),
 * short letter, argument, one line of help and how its value is checked.
 */
#ifndef FACETD_OPTIONS_H
#define FACETD_OPTIONS_H

#include <stdio.h>

#include "log.h"

#define OPTIONS_MAX_OUTPUTS 4

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
	int no_pacing;        /* file sources as fast as they are read */
	int alpha;            /* overlay opacity, percent */
	int frames;           /* stop after this many output frames; 0: never */
	int stats_json;       /* print the stats as JSON at exit */
	int preview;          /* show the SDL2 preview window */
	const char *screenshot; /* with preview: window as PNG at exit */
	enum log_level log_level;
};

enum options_result {
	OPTIONS_RUN = 0,      /* go on and run */
	OPTIONS_DONE = 1,     /* --help or --version answered */
};

void options_defaults(struct options *o);

/* Parses argv into o. Returns OPTIONS_RUN, OPTIONS_DONE, or -EINVAL after
 * printing "facetd: --OPTION: problem" to err. */
int options_parse(struct options *o, int argc, char **argv, FILE *out, FILE *err);

/* Prints the usage text: every option with one line of help. */
void options_usage(FILE *f);

#endif
