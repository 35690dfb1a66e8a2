/* Opening libraries on first use; see dynlib.h. */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

void *ar__dynlib_sym(struct ar_dynlib *lib, const char *symbol)
{
    static pthread_mutex_t opening = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&opening);
    if (lib->handle == NULL) {
        for (const char *const *so = lib->sonames; *so && lib->handle == NULL; so++) {
            lib->handle = dlopen(*so, RTLD_NOW | RTLD_LOCAL);
        }
        if (lib->handle == NULL) {
            fprintf(stderr, "autorun: cannot load %s: %s (is its Debian package installed?)\n",
                    lib->sonames[0], dlerror());
            exit(2);
        }
    }
    pthread_mutex_unlock(&opening);
    void *p = dlsym(lib->handle, symbol);
    if (p == NULL) {
        fprintf(stderr, "autorun: %s has no %s: %s\n", lib->sonames[0], symbol, dlerror());
        exit(2);
    }
    return p;
}
