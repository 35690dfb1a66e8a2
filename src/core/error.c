/* Human text for AR_E* codes. */
#include "core/error.h"

const char *ar_strerror(int err)
{
    switch (err) {
    case AR_ERANGE: return "value out of range";
    case AR_ESYNTAX: return "syntax error";
    case AR_EVERIFY: return "verification failed";
    case AR_ESTALE: return "stale timestamp";
    default: return uv_strerror(err);
    }
}
