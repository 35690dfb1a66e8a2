/* libm, opened on first use (see core/dynlib.h): the functions Duktape's Math, SQLite's math
 * SQL functions and autorun itself call (an unoptimised build calls even fabs and floor). A
 * short run calls none of them, and mapping and relocating libm at exec cost every `autorun
 * run` about 0.2 ms (docs/performance.md).
 *
 * The names are libm's own, so the static SQLite and Duktape objects link against these.
 * SQLite may evaluate SQL on worker threads; the forwarders are safe to call from any. */
#include <math.h>
#include <stddef.h>

#include "core/dynlib.h"

static struct ar_dynlib libm = {.sonames = (const char *const[]){"libm.so.6", NULL}};

#define LIBM_1(name) AR_DYNLIB_FN(libm, double, name, (double x), (x))
#define LIBM_2(name) AR_DYNLIB_FN(libm, double, name, (double x, double y), (x, y))

LIBM_1(acos)
LIBM_1(acosh)
LIBM_1(asin)
LIBM_1(asinh)
LIBM_1(atan)
LIBM_2(atan2)
LIBM_1(atanh)
LIBM_1(cbrt)
LIBM_1(ceil)
LIBM_1(cos)
LIBM_1(cosh)
LIBM_1(exp)
LIBM_1(fabs)
LIBM_1(floor)
LIBM_2(fmod)
LIBM_1(log)
LIBM_1(log10)
LIBM_1(log2)
LIBM_2(pow)
LIBM_1(sin)
LIBM_1(sinh)
LIBM_1(sqrt)
LIBM_1(tan)
LIBM_1(tanh)
LIBM_1(trunc)
