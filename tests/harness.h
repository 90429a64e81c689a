/* A small test harness: typed asserts that report file:line, a runner that
 * executes each case and exits 0 (all passed), 1 (a failure) or 77 (every
 * case skipped: meson's "skipped").
 *
 *   static void test_x(void) { T_EQ_INT(1 + 1, 2); }
 *   T_MAIN(T_CASE(test_x), ...)
 */
#ifndef FACETD_HARNESS_H
#define FACETD_HARNESS_H

#include <stddef.h>

struct t_case {
	const char *name;
	void (*fn)(void);
};

#define T_CASE(f) { #f, f }
#define T_MAIN(...)                                                          \
	int main(int argc, char **argv)                                      \
	{                                                                    \
		static const struct t_case cases[] = { __VA_ARGS__ };        \
		return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv); \
	}

int t_run(const struct t_case *cases, size_t n, int argc, char **argv);

/* Fails the current case (never returns). */
_Noreturn void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Skips the current case with a reason (never returns). */
_Noreturn void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Path of a test data file: $FACETD_TEST_DATA/name or the source's tests/. */
const char *t_path(const char *name);
/* A fresh temporary directory for this process (removed at exit). */
const char *t_tmpdir(void);

#define T_ASSERT(c)                                                          \
	do {                                                                 \
		if (!(c))                                                    \
			t_fail(__FILE__, __LINE__, "assertion failed: %s", #c); \
	} while (0)

#define T_EQ_INT(a, b)                                                       \
	do {                                                                 \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);      \
		if (t_a_ != t_b_)                                            \
			t_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, t_a_, t_b_); \
	} while (0)

#define T_CMP_INT(a, op, b)                                                  \
	do {                                                                 \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);      \
		if (!(t_a_ op t_b_))                                         \
			t_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, t_a_, t_b_); \
	} while (0)

#define T_NEAR(a, b, tol)                                                    \
	do {                                                                 \
		double t_a_ = (a), t_b_ = (b), t_t_ = (tol);                 \
		if (!(t_a_ - t_b_ <= t_t_ && t_b_ - t_a_ <= t_t_))           \
			t_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tolerance %g)", #a, #b, t_a_, t_b_, t_t_); \
	} while (0)

#define T_CMP_DBL(a, op, b)                                                  \
	do {                                                                 \
		double t_a_ = (a), t_b_ = (b);                               \
		if (!(t_a_ op t_b_))                                         \
			t_fail(__FILE__, __LINE__, "%s %s %s: %.9g vs %.9g", #a, #op, #b, t_a_, t_b_); \
	} while (0)

#define T_STR_CONTAINS(s, sub)                                               \
	do {                                                                 \
		const char *t_s_ = (s), *t_sub_ = (sub);                     \
		if (!t_s_ || !strstr(t_s_, t_sub_))                          \
			t_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", t_s_ ? t_s_ : "(null)", t_sub_); \
	} while (0)

#endif
