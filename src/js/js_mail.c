/* mail: placeholder until the mail binding lands; adds no functions. */
#include "js/vm.h"

void ar__js_mail_open(duk_context *ctx)
{
    (void)ctx;
}
