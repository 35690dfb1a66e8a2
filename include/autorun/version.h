/* The version of autorun and of its plugin ABI, for native plugins built against it. */
#ifndef AUTORUN_VERSION_H
#define AUTORUN_VERSION_H

#define AUTORUN_VERSION_MAJOR 0
#define AUTORUN_VERSION_MINOR 1
#define AUTORUN_VERSION_PATCH 0
#define AUTORUN_VERSION_STRING "0.1.0"

/* Bumped whenever struct ar_plugin, struct ar_plugin_api or the meaning of a call in
 * autorun/plugin.h changes incompatibly; autorun refuses plugins built for another one.
 * Functions added at the end of struct ar_plugin_api do not bump it (see its size field). */
#define AUTORUN_PLUGIN_ABI 1

#endif
