/* Refusal fixture: a plugin whose open() fails (and says why), after registering a module
 * that must therefore never be reachable. */
#include "autorun/plugin.h"

static int initfail_never(struct ar_js_call *call)
{
    return ar_js_return_string(call, "unreachable", 11);
}

static const struct ar_js_function initfail_functions[] = {
    {"never", initfail_never},
    {NULL, NULL},
};

static int initfail_open(struct ar_plugin_host *host)
{
    ar_plugin_export_module(host, initfail_functions, NULL);
    ar_plugin_fail(host, "the licence server at 127.0.0.1:9 did not answer");
    return AR_PLUGIN_EINVAL;
}

const struct ar_plugin abi_initfail_plugin = {
    .abi_version = AUTORUN_PLUGIN_ABI,
    .name = "abi_initfail",
    .version = "0.0.1",
    .description = "fails to start",
    .open = initfail_open,
};

AR_PLUGIN_EXPORT(abi_initfail_plugin)
