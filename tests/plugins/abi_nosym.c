/* Refusal fixture: a shared object without autorun_plugin_init(). */
#include "autorun/plugin.h"

const struct ar_plugin abi_nosym_plugin = {
    .abi_version = AUTORUN_PLUGIN_ABI,
    .name = "abi_nosym",
};

int abi_nosym_version(void);
int abi_nosym_version(void)
{
    return abi_nosym_plugin.abi_version;
}
