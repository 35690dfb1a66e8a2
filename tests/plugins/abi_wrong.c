/* Refusal fixture: a plugin that says it was built for plugin ABI 2. Only the first field is
 * read, as for any version, so its other fields are deliberately left empty. */
#include "autorun/plugin.h"

const struct ar_plugin abi_wrong_plugin = {
    .abi_version = 2,
    .name = "abi_wrong",
};

AR_PLUGIN_EXPORT(abi_wrong_plugin)
