/* Libraries that only some runs need (libcurl, libcrypto, libpq) are opened on first
 * use instead of at exec time: loading them and their dependencies would otherwise cost
 * every `autorun run` more than everything else it does (see docs/performance.md).
 * Each shim file defines the library's functions that autorun calls, with the same
 * names and signatures, forwarding to the real ones through ar__dynlib_sym(). */
#ifndef AR_CORE_DYNLIB_H
#define AR_CORE_DYNLIB_H

struct ar_dynlib {
    const char *const *sonames; /* tried in order, e.g. {"libcurl.so.4", NULL} */
    void *handle;               /* owned; opened on first use, never closed */
};

/* The address of symbol in lib. A library or symbol that cannot be found means the
 * installation is broken: this prints which one and exits with status 2. */
void *ar__dynlib_sym(struct ar_dynlib *lib, const char *symbol);

/* Defines a forwarding function: AR_DYNLIB_FN(lib, int, foo, (int a), (a)). It may be
 * called from several threads at once (SQLite's math functions on a worker thread). */
#define AR_DYNLIB_FN(lib, ret, name, params, args)                                               \
    ret name params                                                                              \
    {                                                                                            \
        static ret(*real) params;                                                                \
        ret(*fn) params = __atomic_load_n(&real, __ATOMIC_ACQUIRE);                              \
        if (fn == 0) {                                                                           \
            *(void **)&fn = ar__dynlib_sym(&(lib), #name);                                       \
            __atomic_store_n(&real, fn, __ATOMIC_RELEASE);                                       \
        }                                                                                        \
        return fn args;                                                                          \
    }

#endif
