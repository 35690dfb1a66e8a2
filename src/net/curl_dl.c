/* libcurl, opened on first use (see core/dynlib.h): the functions autorun calls. */
#define CURL_DISABLE_TYPECHECK /* curl.h would turn the definitions below into macros */
#include <curl/curl.h>
#include <stdarg.h>

#include "core/dynlib.h"

static struct ar_dynlib libcurl = {.sonames = (const char *const[]){"libcurl.so.4", NULL}};

AR_DYNLIB_FN(libcurl, CURLcode, curl_global_init, (long flags), (flags))
AR_DYNLIB_FN(libcurl, char *, curl_version, (void), ())
AR_DYNLIB_FN(libcurl, CURL *, curl_easy_init, (void), ())
AR_DYNLIB_FN(libcurl, void, curl_easy_cleanup, (CURL * h), (h))
AR_DYNLIB_FN(libcurl, void, curl_easy_reset, (CURL * h), (h))
AR_DYNLIB_FN(libcurl, const char *, curl_easy_strerror, (CURLcode c), (c))
AR_DYNLIB_FN(libcurl, char *, curl_easy_escape, (CURL * h, const char *s, int n), (h, s, n))
AR_DYNLIB_FN(libcurl, char *, curl_easy_unescape, (CURL * h, const char *s, int n, int *out),
             (h, s, n, out))
AR_DYNLIB_FN(libcurl, void, curl_free, (void *p), (p))
AR_DYNLIB_FN(libcurl, struct curl_slist *, curl_slist_append,
             (struct curl_slist * l, const char *s), (l, s))
AR_DYNLIB_FN(libcurl, void, curl_slist_free_all, (struct curl_slist * l), (l))
AR_DYNLIB_FN(libcurl, time_t, curl_getdate, (const char *s, const time_t *unused), (s, unused))
AR_DYNLIB_FN(libcurl, CURLU *, curl_url, (void), ())
AR_DYNLIB_FN(libcurl, void, curl_url_cleanup, (CURLU * u), (u))
AR_DYNLIB_FN(libcurl, CURLUcode, curl_url_get,
             (CURLU * u, CURLUPart what, char **part, unsigned int flags),
             (u, what, part, flags))
AR_DYNLIB_FN(libcurl, CURLUcode, curl_url_set,
             (CURLU * u, CURLUPart what, const char *part, unsigned int flags),
             (u, what, part, flags))
AR_DYNLIB_FN(libcurl, CURLM *, curl_multi_init, (void), ())
AR_DYNLIB_FN(libcurl, CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
AR_DYNLIB_FN(libcurl, CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *h), (m, h))
AR_DYNLIB_FN(libcurl, CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *h), (m, h))
AR_DYNLIB_FN(libcurl, CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void *p),
             (m, s, p))
AR_DYNLIB_FN(libcurl, CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))
AR_DYNLIB_FN(libcurl, CURLMcode, curl_multi_socket_action,
             (CURLM * m, curl_socket_t s, int ev, int *running), (m, s, ev, running))
AR_DYNLIB_FN(libcurl, const char *, curl_multi_strerror, (CURLMcode c), (c))

/* The variadic ones take exactly one argument after the option: a long, a pointer, a
 * function pointer or a curl_off_t, all passed in one integer register on the LP64
 * ABIs autorun builds for, so it is forwarded as a pointer-sized value. */
_Static_assert(sizeof(long) == sizeof(void *) && sizeof(curl_off_t) == sizeof(void *),
               "curl option forwarding assumes an LP64 ABI");

#define AR_CURL_VARIADIC(ret, name, handle_type, option_type)                                    \
    ret name(handle_type h, option_type opt, ...)                                                \
    {                                                                                            \
        static ret (*real)(handle_type, option_type, ...);                                       \
        if (real == 0) {                                                                         \
            *(void **)&real = ar__dynlib_sym(&libcurl, #name);                                   \
        }                                                                                        \
        va_list ap;                                                                              \
        va_start(ap, opt);                                                                       \
        void *arg = va_arg(ap, void *);                                                          \
        va_end(ap);                                                                              \
        return real(h, opt, arg);                                                                \
    }

AR_CURL_VARIADIC(CURLcode, curl_easy_setopt, CURL *, CURLoption)
AR_CURL_VARIADIC(CURLcode, curl_easy_getinfo, CURL *, CURLINFO)
AR_CURL_VARIADIC(CURLMcode, curl_multi_setopt, CURLM *, CURLMoption)
