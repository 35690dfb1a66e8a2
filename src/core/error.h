/* Error codes shared by every module: 0 is success, negative values are failures.
 * Codes that libuv also has reuse its values, so a libuv error passes through. */
#ifndef AR_CORE_ERROR_H
#define AR_CORE_ERROR_H

#include <uv.h>

#define AR_EINVAL UV_EINVAL    /* bad argument or malformed input */
#define AR_ENOMEM UV_ENOMEM    /* out of memory */
#define AR_ENOENT UV_ENOENT    /* no such file, recipe or run */
#define AR_EEXIST UV_EEXIST    /* already exists */
#define AR_EACCES UV_EACCES    /* permission refused (e.g. a secrets file others can read) */
#define AR_ETIMEDOUT UV_ETIMEDOUT
#define AR_ECANCELED UV_ECANCELED
#define AR_E2BIG UV_E2BIG      /* over a configured limit */
#define AR_EIO UV_EIO          /* storage failure */
#define AR_ERANGE (-4900)      /* value out of the accepted range */
#define AR_ESYNTAX (-4901)     /* syntax error in an expression, template or config */
#define AR_EVERIFY (-4902)     /* a signature or credential did not verify */
#define AR_ESTALE (-4903)      /* a timestamped delivery is too old */

const char *ar_strerror(int err);

#endif
