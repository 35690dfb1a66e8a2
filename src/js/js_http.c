/* http: placeholder until the http binding lands; adds no functions. */
#include "js/vm.h"

void ar__js_http_open(duk_context *ctx)
{
    (void)ctx;
}
