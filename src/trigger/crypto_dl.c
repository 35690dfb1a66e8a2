/* libcrypto (OpenSSL 3), opened on first use (see core/dynlib.h): the HMAC and digest
 * functions webhook verification calls. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/dynlib.h"

static struct ar_dynlib libcrypto = {.sonames = (const char *const[]){"libcrypto.so.3", NULL}};

AR_DYNLIB_FN(libcrypto, int, CRYPTO_memcmp, (const void *a, const void *b, size_t n), (a, b, n))
AR_DYNLIB_FN(libcrypto, void, OPENSSL_cleanse, (void *p, size_t n), (p, n))
AR_DYNLIB_FN(libcrypto, int, EVP_Digest,
             (const void *data, size_t n, unsigned char *md, unsigned int *size,
              const EVP_MD *type, ENGINE *impl),
             (data, n, md, size, type, impl))
AR_DYNLIB_FN(libcrypto, const EVP_MD *, EVP_sha256, (void), ())
AR_DYNLIB_FN(libcrypto, EVP_MAC *, EVP_MAC_fetch,
             (OSSL_LIB_CTX * ctx, const char *algorithm, const char *properties),
             (ctx, algorithm, properties))
AR_DYNLIB_FN(libcrypto, void, EVP_MAC_free, (EVP_MAC * mac), (mac))
AR_DYNLIB_FN(libcrypto, EVP_MAC_CTX *, EVP_MAC_CTX_new, (EVP_MAC * mac), (mac))
AR_DYNLIB_FN(libcrypto, void, EVP_MAC_CTX_free, (EVP_MAC_CTX * ctx), (ctx))
AR_DYNLIB_FN(libcrypto, int, EVP_MAC_init,
             (EVP_MAC_CTX * ctx, const unsigned char *key, size_t keylen,
              const OSSL_PARAM params[]),
             (ctx, key, keylen, params))
AR_DYNLIB_FN(libcrypto, int, EVP_MAC_update,
             (EVP_MAC_CTX * ctx, const unsigned char *data, size_t datalen), (ctx, data, datalen))
AR_DYNLIB_FN(libcrypto, int, EVP_MAC_final,
             (EVP_MAC_CTX * ctx, unsigned char *out, size_t *outl, size_t outsize),
             (ctx, out, outl, outsize))
AR_DYNLIB_FN(libcrypto, OSSL_PARAM, OSSL_PARAM_construct_utf8_string,
             (const char *key, char *buf, size_t bsize), (key, buf, bsize))
AR_DYNLIB_FN(libcrypto, OSSL_PARAM, OSSL_PARAM_construct_end, (void), ())
