/* sql: placeholder until the sql binding lands; adds no functions. */
#include "js/vm.h"

void ar__js_sql_open(duk_context *ctx)
{
    (void)ctx;
}
