/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Export keys. A passphrase is stretched here, in the client, with
 * PBKDF2-HMAC-SHA256 (OpenSSL EVP_KDF), so vtpmd's event loop never spends
 * the KDF's deliberate second on it; vtpmd only sees the derived key.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"
#include "util.h"
#include "vtpmd-ctl.h"

#define SECRET_FILE_MAX 4096u /* our own bound: a passphrase or a hex key is far shorter */

/* The whole file, NUL-terminated; prints the error. */
static int read_secret_file(const char *what, const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        char *buf;
        size_t len = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                cli_fail("cannot read %s %s: %s", what, path, strerror(errno));
                return -ENOENT;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > (off_t) SECRET_FILE_MAX) {
                cli_fail("%s %s must be a regular file of at most %u bytes", what, path, SECRET_FILE_MAX);
                return -EINVAL;
        }
        buf = calloc(1, SECRET_FILE_MAX + 1);
        if (!buf) {
                cli_fail("out of memory");
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, SECRET_FILE_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        cli_fail("cannot read %s %s: %s", what, path, strerror(errno));
                        OPENSSL_cleanse(buf, SECRET_FILE_MAX);
                        free(buf);
                        return -EIO;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static void free_secret(char *s) {
        if (s) {
                OPENSSL_cleanse(s, SECRET_FILE_MAX);
                free(s);
        }
}

static int key_from_file(const char *path, uint8_t key[CTL_KEY_SIZE]) {
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = read_secret_file("key file", path, &buf, &len);
        if (r < 0)
                return r;
        if (len == CTL_KEY_SIZE) {
                memcpy(key, buf, CTL_KEY_SIZE);
                free_secret(buf);
                return 0;
        }
        if (len == 2 * CTL_KEY_SIZE + 1 && buf[len - 1] == '\n')
                buf[--len] = '\0';
        /* The length check too: a NUL after 64 hex digits must not pass for the end. */
        if (len == 2 * CTL_KEY_SIZE && parse_hex(buf, key, CTL_KEY_SIZE) >= 0) {
                free_secret(buf);
                return 0;
        }
        free_secret(buf);
        cli_fail("key file %s must hold exactly 32 bytes, or 64 hex digits", path);
        return -EINVAL;
}

static int key_from_passphrase(const char *path, const CtlKdfParams *kdf, uint8_t key[CTL_KEY_SIZE]) {
        EVP_KDF *alg = NULL;
        EVP_KDF_CTX *kctx = NULL;
        OSSL_PARAM params[5], *p = params;
        unsigned iter = kdf->iterations;
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = read_secret_file("passphrase file", path, &buf, &len);
        if (r < 0)
                return r;
        /* One trailing newline is the editor's, not the passphrase's. */
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (len == 0) {
                free_secret(buf);
                cli_fail("passphrase file %s is empty", path);
                return -EINVAL;
        }
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, buf, len);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) kdf->salt, sizeof(kdf->salt));
        *p++ = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &iter);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        *p = OSSL_PARAM_construct_end();
        alg = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
        kctx = alg ? EVP_KDF_CTX_new(alg) : NULL;
        r = kctx && EVP_KDF_derive(kctx, key, CTL_KEY_SIZE, params) == 1 ? 0 : -EIO;
        EVP_KDF_CTX_free(kctx);
        EVP_KDF_free(alg);
        free_secret(buf);
        if (r < 0)
                cli_fail("cannot derive a key from the passphrase (OpenSSL PBKDF2 failed)");
        return r;
}

static int check_one(const CliKeyArgs *a) {
        if (!!a->passphrase_file == !!a->key_file) {
                cli_fail("give exactly one of --passphrase-file FILE and --key-file FILE");
                return -EINVAL;
        }
        return 0;
}

int cli_key_option(CliCall *call, int c, const char *arg) {
        switch (c) {
        case CLI_OPT_PASSPHRASE_FILE:
                call->key.passphrase_file = arg;
                return 0;
        case CLI_OPT_KEY_FILE:
                call->key.key_file = arg;
                return 0;
        default:
                return -1;
        }
}

int cli_key_for_export(const CliKeyArgs *a, uint8_t key[CTL_KEY_SIZE], CtlKdfParams *ret_kdf) {
        CtlKdfParams kdf = { .alg = CTL_KDF_NONE };
        const char *env;
        uint32_t iter = CTL_KDF_DEFAULT_ITERATIONS;
        int r;

        if (check_one(a) < 0)
                return -EINVAL;
        if (a->key_file) {
                r = key_from_file(a->key_file, key);
                if (r >= 0)
                        *ret_kdf = kdf;
                return r;
        }
        /* Tests may lower the work factor; never below the protocol's minimum. */
        env = getenv("VTPMD_CTL_KDF_ITERATIONS");
        if (env && *env) {
                uint32_t v;
                if (parse_u32_max(env, CTL_KDF_MAX_ITERATIONS, &v) < 0 || v < CTL_KDF_MIN_ITERATIONS) {
                        cli_fail("VTPMD_CTL_KDF_ITERATIONS must be %u..%u", CTL_KDF_MIN_ITERATIONS,
                                 CTL_KDF_MAX_ITERATIONS);
                        return -EINVAL;
                }
                iter = v;
        }
        kdf.alg = CTL_KDF_PBKDF2_SHA256;
        kdf.iterations = iter;
        if (RAND_bytes(kdf.salt, sizeof(kdf.salt)) != 1) {
                cli_fail("cannot generate a salt");
                return -EIO;
        }
        r = key_from_passphrase(a->passphrase_file, &kdf, key);
        if (r >= 0)
                *ret_kdf = kdf;
        return r;
}

int cli_key_for_import(const CliKeyArgs *a, const CtlKdfParams *kdf, uint8_t key[CTL_KEY_SIZE]) {
        if (check_one(a) < 0)
                return -EINVAL;
        if (kdf->alg == CTL_KDF_PBKDF2_SHA256 && !a->passphrase_file) {
                cli_fail("this export is protected by a passphrase: use --passphrase-file");
                return -EINVAL;
        }
        if (kdf->alg == CTL_KDF_NONE && !a->key_file) {
                cli_fail("this export is protected by a key: use --key-file");
                return -EINVAL;
        }
        return a->key_file ? key_from_file(a->key_file, key) : key_from_passphrase(a->passphrase_file, kdf, key);
}
