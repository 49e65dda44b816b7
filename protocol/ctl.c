/* SPDX-License-Identifier: BSD-3-Clause */
/* Control-socket messages and the export blob: parse, validate, encode. Pure. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "ctl.h"
#include "parse.h"
#include "util.h"

#define CTL_JSON_DEPTH 8 /* our messages nest at most 3 deep */

const uint8_t CTL_EXPORT_CHECK_NONCE[CTL_EXPORT_NONCE_SIZE] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe };

/* Members a request may carry. */
enum {
        F_UUID = 1u << 0,
        F_TPM = 1u << 1,
        F_EK = 1u << 2,
        F_BANKS = 1u << 3,
        F_EK_CERT = 1u << 4,
        F_PLATFORM_CERT = 1u << 5,
        F_FORCE = 1u << 6,
        F_KEY = 1u << 7,
        F_KDF = 1u << 8,
        F_HOST = 1u << 9,
        F_BANK = 1u << 10,
        F_PCRS = 1u << 11,
};

static const struct {
        const char *name;
        unsigned allowed;
        unsigned required;
} ops[_CTL_OP_MAX] = {
        [CTL_OP_CREATE] = { "create", F_UUID | F_TPM | F_EK | F_BANKS | F_EK_CERT | F_PLATFORM_CERT, 0 },
        [CTL_OP_LIST] = { "list", 0, 0 },
        [CTL_OP_SHOW] = { "show", F_UUID, F_UUID },
        [CTL_OP_DESTROY] = { "destroy", F_UUID | F_FORCE, F_UUID },
        [CTL_OP_EXPORT] = { "export", F_UUID | F_KEY | F_KDF, F_UUID | F_KEY | F_KDF },
        [CTL_OP_IMPORT] = { "import", F_KEY, F_KEY },
        [CTL_OP_RESET] = { "reset", F_UUID, F_UUID },
        [CTL_OP_STATUS] = { "status", 0, 0 },
        [CTL_OP_CA_CERT] = { "ca-cert", 0, 0 },
        [CTL_OP_POOL_STATUS] = { "pool-status", 0, 0 },
        [CTL_OP_POOL_INIT] = { "pool-init", 0, 0 },
        [CTL_OP_POOL_JOIN] = { "pool-join", 0, 0 },
        [CTL_OP_POOL_ADMIT] = { "pool-admit", F_HOST, F_HOST },
        [CTL_OP_POOL_REMOVE] = { "pool-remove", F_HOST, F_HOST },
        [CTL_OP_POOL_LEAVE] = { "pool-leave", 0, 0 },
        [CTL_OP_EK_CERT] = { "ek-cert", F_UUID, F_UUID },
        [CTL_OP_RESTART] = { "restart", F_UUID, F_UUID },
        [CTL_OP_PCRREAD] = { "pcrread", F_UUID | F_BANK | F_PCRS, F_UUID },
        [CTL_OP_BACKUP] = { "backup", F_UUID | F_KEY | F_KDF, F_UUID | F_KEY | F_KDF },
};

static const struct {
        const char *name;
        unsigned bit;
} fields[] = {
        { "uuid", F_UUID },       { "tpm", F_TPM },     { "ek", F_EK },
        { "pcr_banks", F_BANKS }, { "ek_cert", F_EK_CERT }, { "platform_cert", F_PLATFORM_CERT },
        { "force", F_FORCE },     { "key", F_KEY },     { "kdf", F_KDF },
        { "host", F_HOST },       { "bank", F_BANK },   { "pcrs", F_PCRS },
};

static const char *const ek_names[] = { "rsa2048", "ecc-p256" };
static const char *const bank_names[] = { "sha1", "sha256", "sha384", "sha512" };

int ctl_parse_host(const char *s, char ret[CTL_HOST_LEN]) {
        if (!s || strlen(s) != CTL_HOST_LEN - 1)
                return -EINVAL;
        for (const char *c = s; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return -EINVAL;
        memcpy(ret, s, CTL_HOST_LEN);
        return 0;
}

bool ctl_guest_name_valid(const char *s) {
        char uuid[CTL_UUID_LEN];
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n >= CTL_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        /* A UUID argument is taken as the UUID: a guest named like one could not be named. */
        return parse_uuid(s, uuid) < 0;
}

const char *ctl_op_to_string(CtlOp op) {
        if ((unsigned) op >= _CTL_OP_MAX)
                return NULL;
        return ops[op].name;
}

int ctl_op_from_string(const char *s, CtlOp *ret) {
        for (unsigned i = 0; i < _CTL_OP_MAX; i++)
                if (streq(s, ops[i].name)) {
                        *ret = (CtlOp) i;
                        return 0;
                }
        return -EINVAL;
}

bool ctl_op_takes_fd(CtlOp op) {
        return op == CTL_OP_EXPORT || op == CTL_OP_IMPORT || op == CTL_OP_BACKUP;
}

/* A JSON string's text, or NULL if v is not a string or holds a NUL (JSON's
 * "\u0000"): "list\u0000junk" must not pass for "list". */
static const char *json_cstr(json_object *v) {
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        return strlen(s) == (size_t) json_object_get_string_len(v) ? s : NULL;
}

/* Whether valid JSON text escapes a NUL anywhere. json-c cuts an object's
 * member name at a NUL ({"op\u0000x": ...} has a member "op"), so json_cstr
 * cannot see those. */
static bool json_text_has_nul(const uint8_t *buf, size_t len) {
        for (size_t i = 0; i + 1 < len; i++) {
                if (buf[i] != '\\')
                        continue;
                if (buf[i + 1] == 'u' && len - i >= 6 && memcmp(buf + i + 2, "0000", 4) == 0)
                        return true;
                i++; /* skip the escaped character: \\u0000 is a backslash, then "u0000" */
        }
        return false;
}

static void tohex(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = '\0';
}

/* Parses one JSON object from exactly len bytes: no trailing bytes, no NUL, valid UTF-8. */
static int json_parse_object(const uint8_t *buf, size_t len, json_object **ret) {
        json_tokener *tok;
        json_object *o;
        bool complete;

        if (len == 0 || len > CTL_MAX_PACKET || memchr(buf, '\0', len))
                return -EBADMSG;
        tok = json_tokener_new_ex(CTL_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, (const char *) buf, (int) len);
        complete = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        if (!o || !complete || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

static int parse_name_list(json_object *v, const char *const *names, size_t n_names, unsigned *ret) {
        unsigned mask = 0;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(v);
        if (n == 0 || n > n_names)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                const char *e = json_cstr(json_object_array_get_idx(v, i));
                size_t j;

                if (!e)
                        return -EBADMSG;
                for (j = 0; j < n_names; j++)
                        if (streq(e, names[j]))
                                break;
                if (j == n_names || (mask & (1u << j)))
                        return -EBADMSG;
                mask |= 1u << j;
        }
        *ret = mask;
        return 0;
}

static int parse_kdf(json_object *v, CtlKdfParams *ret) {
        CtlKdfParams k = {};
        json_object *alg = NULL, *it = NULL, *salt = NULL;
        const char *s, *salt_hex;
        int64_t n;
        int count = 0;

        if (!json_object_is_type(v, json_type_object))
                return -EBADMSG;
        json_object_object_foreach(v, key, val) {
                (void) val;
                if (!streq(key, "alg") && !streq(key, "iterations") && !streq(key, "salt"))
                        return -EBADMSG;
                count++;
        }
        if (!json_object_object_get_ex(v, "alg", &alg) || !(s = json_cstr(alg)))
                return -EBADMSG;
        if (streq(s, "none")) {
                if (count != 1)
                        return -EBADMSG;
                k.alg = CTL_KDF_NONE;
        } else if (streq(s, "pbkdf2-sha256")) {
                if (count != 3 || !json_object_object_get_ex(v, "iterations", &it) ||
                    !json_object_object_get_ex(v, "salt", &salt) || !json_object_is_type(it, json_type_int) ||
                    !(salt_hex = json_cstr(salt)))
                        return -EBADMSG;
                n = json_object_get_int64(it);
                if (n < CTL_KDF_MIN_ITERATIONS || n > CTL_KDF_MAX_ITERATIONS)
                        return -EBADMSG;
                k.alg = CTL_KDF_PBKDF2_SHA256;
                k.iterations = (uint32_t) n;
                if (parse_hex(salt_hex, k.salt, sizeof(k.salt)) < 0)
                        return -EBADMSG;
        } else
                return -EBADMSG;
        *ret = k;
        return 0;
}

static int request_member(CtlRequest *r, unsigned bit, json_object *v) {
        const char *s;

        switch (bit) {
        case F_UUID:
                s = json_cstr(v);
                if (!s || parse_uuid(s, r->uuid) < 0)
                        return -EBADMSG;
                r->has_uuid = true;
                return 0;
        case F_TPM:
                s = json_cstr(v);
                if (!s || tpm_family_from_string(s, &r->family) < 0)
                        return -EBADMSG;
                r->has_family = true;
                return 0;
        case F_EK:
                return parse_name_list(v, ek_names, ELEMENTSOF(ek_names), &r->eks);
        case F_BANKS:
                return parse_name_list(v, bank_names, ELEMENTSOF(bank_names), &r->pcr_banks);
        case F_EK_CERT:
        case F_PLATFORM_CERT:
        case F_FORCE:
                if (!json_object_is_type(v, json_type_boolean))
                        return -EBADMSG;
                *(bit == F_EK_CERT ? &r->ek_cert : bit == F_PLATFORM_CERT ? &r->platform_cert : &r->force) =
                        json_object_get_boolean(v);
                return 0;
        case F_HOST:
                s = json_cstr(v);
                if (!s || ctl_parse_host(s, r->host) < 0)
                        return -EBADMSG;
                r->has_host = true;
                return 0;
        case F_KEY:
                s = json_cstr(v);
                if (!s || parse_hex(s, r->key, sizeof(r->key)) < 0)
                        return -EBADMSG;
                r->has_key = true;
                return 0;
        case F_KDF:
                return parse_kdf(v, &r->kdf);
        case F_BANK: {
                unsigned b;
                s = json_cstr(v);
                /* exactly one bank */
                if (!s || strchr(s, ',') || ctl_parse_bank_list(s, &b) < 0)
                        return -EBADMSG;
                r->bank = b;
                return 0;
        }
        case F_PCRS: {
                size_t n;
                uint32_t mask = 0;
                if (!json_object_is_type(v, json_type_array))
                        return -EBADMSG;
                n = json_object_array_length(v);
                if (n == 0 || n > CTL_PCR_COUNT)
                        return -EBADMSG;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i);
                        int64_t pcr;
                        if (!json_object_is_type(e, json_type_int))
                                return -EBADMSG;
                        pcr = json_object_get_int64(e);
                        if (pcr < 0 || pcr >= CTL_PCR_COUNT || (mask & (1u << pcr)))
                                return -EBADMSG;
                        mask |= 1u << pcr;
                }
                r->pcrs = mask;
                return 0;
        }
        default:
                return -EBADMSG;
        }
}

int ctl_request_parse(const uint8_t *buf, size_t len, CtlRequest *ret) {
        json_object *o = NULL, *op;
        const char *op_name;
        CtlRequest r = {};
        unsigned seen = 0;
        int ret_r = -EBADMSG;

        if (json_parse_object(buf, len, &o) < 0)
                return -EBADMSG;
        if (json_text_has_nul(buf, len))
                goto out;
        if (!json_object_object_get_ex(o, "op", &op) || !(op_name = json_cstr(op)) ||
            ctl_op_from_string(op_name, &r.op) < 0)
                goto out;
        json_object_object_foreach(o, key, val) {
                unsigned bit = 0;

                if (streq(key, "op"))
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                        if (streq(key, fields[i].name))
                                bit = fields[i].bit;
                if (!bit || !(ops[r.op].allowed & bit) || (seen & bit))
                        goto out;
                if (request_member(&r, bit, val) < 0)
                        goto out;
                seen |= bit;
        }
        if ((seen & ops[r.op].required) != ops[r.op].required)
                goto out;
        /* Certificates need the key they certify. Which families are manufactured
         * is the daemon's business (it knows its default family), not syntax. */
        if (r.ek_cert && !r.eks)
                goto out;
        *ret = r;
        ret_r = 0;
out:
        explicit_wipe(&r, sizeof(r));
        json_object_put(o);
        return ret_r;
}

static json_object *name_list(unsigned mask, const char *const *names, size_t n) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++)
                if (mask & (1u << i))
                        json_object_array_add(a, json_object_new_string(names[i]));
        return a;
}

static int finish_encode(json_object *o, char **ret, size_t *ret_len) {
        const char *s;
        size_t n;
        char *copy;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        if (n > CTL_MAX_PACKET)
                return -E2BIG;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        *ret_len = n;
        return 0;
}

int ctl_request_encode(const CtlRequest *r, char **ret, size_t *ret_len) {
        json_object *o;
        char hex[2 * CTL_KEY_SIZE + 1];
        int rr;

        if ((unsigned) r->op >= _CTL_OP_MAX)
                return -EINVAL;
        if ((ops[r->op].required & F_UUID) && !r->has_uuid)
                return -EINVAL;
        if ((ops[r->op].required & F_KEY) && !r->has_key)
                return -EINVAL;
        if ((ops[r->op].required & F_HOST) && !r->has_host)
                return -EINVAL;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "op", json_object_new_string(ops[r->op].name));
        if (r->has_uuid && (ops[r->op].allowed & F_UUID))
                json_object_object_add(o, "uuid", json_object_new_string(r->uuid));
        if (r->has_family && (ops[r->op].allowed & F_TPM))
                json_object_object_add(o, "tpm", json_object_new_string(tpm_family_to_string(r->family)));
        if (r->eks && (ops[r->op].allowed & F_EK))
                json_object_object_add(o, "ek", name_list(r->eks, ek_names, ELEMENTSOF(ek_names)));
        if (r->pcr_banks && (ops[r->op].allowed & F_BANKS))
                json_object_object_add(o, "pcr_banks", name_list(r->pcr_banks, bank_names, ELEMENTSOF(bank_names)));
        if (r->ek_cert && (ops[r->op].allowed & F_EK_CERT))
                json_object_object_add(o, "ek_cert", json_object_new_boolean(1));
        if (r->platform_cert && (ops[r->op].allowed & F_PLATFORM_CERT))
                json_object_object_add(o, "platform_cert", json_object_new_boolean(1));
        if (r->force && (ops[r->op].allowed & F_FORCE))
                json_object_object_add(o, "force", json_object_new_boolean(1));
        if (r->has_host && (ops[r->op].allowed & F_HOST))
                json_object_object_add(o, "host", json_object_new_string(r->host));
        if (r->bank && (ops[r->op].allowed & F_BANK)) {
                if (!ctl_bank_to_string(r->bank)) {
                        json_object_put(o);
                        return -EINVAL;
                }
                json_object_object_add(o, "bank", json_object_new_string(ctl_bank_to_string(r->bank)));
        }
        if (r->pcrs && (ops[r->op].allowed & F_PCRS)) {
                json_object *a = json_object_new_array();
                for (unsigned i = 0; a && i < CTL_PCR_COUNT; i++)
                        if (r->pcrs & (1u << i))
                                json_object_array_add(a, json_object_new_int((int) i));
                json_object_object_add(o, "pcrs", a);
        }
        if (r->has_key && (ops[r->op].allowed & F_KEY)) {
                tohex(r->key, sizeof(r->key), hex);
                json_object_object_add(o, "key", json_object_new_string(hex));
                explicit_wipe(hex, sizeof(hex));
        }
        if (ops[r->op].allowed & F_KDF) {
                json_object *k = json_object_new_object();
                if (r->kdf.alg == CTL_KDF_PBKDF2_SHA256) {
                        char salt[2 * CTL_SALT_SIZE + 1];
                        tohex(r->kdf.salt, sizeof(r->kdf.salt), salt);
                        json_object_object_add(k, "alg", json_object_new_string("pbkdf2-sha256"));
                        json_object_object_add(k, "iterations", json_object_new_int64(r->kdf.iterations));
                        json_object_object_add(k, "salt", json_object_new_string(salt));
                } else
                        json_object_object_add(k, "alg", json_object_new_string("none"));
                json_object_object_add(o, "kdf", k);
        }
        rr = finish_encode(o, ret, ret_len);
        json_object_put(o);
        return rr;
}

void ctl_request_done(CtlRequest *r) {
        explicit_wipe(r->key, sizeof(r->key));
}

static int parse_list_string(const char *s, const char *const *names, size_t n_names, bool allow_both,
                             unsigned *ret) {
        unsigned mask = 0;
        const char *p = s;

        if (allow_both && streq(s, "both")) {
                *ret = (1u << n_names) - 1;
                return 0;
        }
        for (;;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t) (comma - p) : strlen(p);
                size_t j;

                for (j = 0; j < n_names; j++)
                        if (strlen(names[j]) == n && strncmp(p, names[j], n) == 0)
                                break;
                if (j == n_names || (mask & (1u << j)))
                        return -EINVAL;
                mask |= 1u << j;
                if (!comma)
                        break;
                p = comma + 1;
        }
        *ret = mask;
        return 0;
}

int ctl_parse_ek_list(const char *s, unsigned *ret) {
        return parse_list_string(s, ek_names, ELEMENTSOF(ek_names), true, ret);
}

int ctl_parse_bank_list(const char *s, unsigned *ret) {
        return parse_list_string(s, bank_names, ELEMENTSOF(bank_names), false, ret);
}

const char *ctl_bank_to_string(unsigned bank) {
        for (size_t i = 0; i < ELEMENTSOF(bank_names); i++)
                if (bank == 1u << i)
                        return bank_names[i];
        return NULL;
}

int ctl_parse_pcr_selection(const char *s, unsigned *ret_bank, uint32_t *ret_pcrs) {
        const char *colon = strchr(s, ':'), *p;
        char name[16];
        size_t n = colon ? (size_t) (colon - s) : strlen(s);
        uint32_t mask = 0;
        unsigned bank = 0;

        if (n == 0 || n >= sizeof(name))
                return -EINVAL;
        memcpy(name, s, n);
        name[n] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(bank_names); i++)
                if (streq(name, bank_names[i]))
                        bank = 1u << i;
        if (!bank)
                return -EINVAL;
        if (!colon || streq(colon + 1, "all")) {
                *ret_bank = bank;
                *ret_pcrs = (1u << CTL_PCR_COUNT) - 1;
                return 0;
        }
        p = colon + 1;
        for (;;) {
                unsigned v = 0;
                size_t digits = 0;

                while (*p >= '0' && *p <= '9' && digits < 3) {
                        v = v * 10 + (unsigned) (*p - '0');
                        p++;
                        digits++;
                }
                if (digits == 0 || v >= CTL_PCR_COUNT || (mask & (1u << v)))
                        return -EINVAL;
                mask |= 1u << v;
                if (*p == '\0')
                        break;
                if (*p != ',')
                        return -EINVAL;
                p++;
        }
        *ret_bank = bank;
        *ret_pcrs = mask;
        return 0;
}

/* ---- replies ---- */

static bool printable_line(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

int ctl_reply_parse(const uint8_t *buf, size_t len, CtlReply *ret) {
        json_object *o = NULL, *v, *ok, *err, *msg;
        const char *text;
        CtlReply r = {};

        if (json_parse_object(buf, len, &o) < 0)
                return -EBADMSG;
        if (json_object_object_get_ex(o, "item", &v)) {
                if (json_object_object_length(o) != 1 || !json_object_is_type(v, json_type_object))
                        goto bad;
                r.kind = CTL_REPLY_ITEM;
                r.obj = json_object_get(v);
                json_object_put(o);
                *ret = r;
                return 0;
        }
        if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_is_type(ok, json_type_boolean))
                goto bad;
        if (json_object_get_boolean(ok)) {
                r.kind = CTL_REPLY_OK;
                r.obj = o;
                *ret = r;
                return 0;
        }
        if (json_object_object_length(o) != 3 || !json_object_object_get_ex(o, "errno", &err) ||
            !json_object_object_get_ex(o, "error", &msg) || !json_object_is_type(err, json_type_int) ||
            !(text = json_cstr(msg)))
                goto bad;
        if (json_object_get_int64(err) < 1 || json_object_get_int64(err) > 4095 || strlen(text) >= sizeof(r.message) ||
            strlen(text) == 0 || !printable_line(text))
                goto bad;
        r.kind = CTL_REPLY_ERROR;
        r.error = -(int) json_object_get_int64(err);
        memcpy(r.message, text, strlen(text) + 1);
        json_object_put(o);
        *ret = r;
        return 0;
bad:
        json_object_put(o);
        return -EBADMSG;
}

void ctl_reply_done(CtlReply *r) {
        json_object_put(r->obj);
        r->obj = NULL;
}

int ctl_reply_encode_ok(json_object *result, char **ret, size_t *ret_len) {
        json_object *o = result ? json_object_get(result) : json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_del(o, "item");
        json_object_object_add(o, "ok", json_object_new_boolean(1));
        r = finish_encode(o, ret, ret_len);
        json_object_put(o);
        return r;
}

int ctl_reply_encode_item(json_object *item, char **ret, size_t *ret_len) {
        json_object *o = json_object_new_object();
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "item", json_object_get(item));
        r = finish_encode(o, ret, ret_len);
        json_object_put(o);
        return r;
}

int ctl_reply_encode_error(int error, const char *message, char **ret, size_t *ret_len) {
        char line[CTL_MAX_ERROR];
        json_object *o;
        size_t i;
        int r;

        if (error >= 0 || error < -4095)
                error = -EIO;
        /* One printable line, bounded, whatever the caller passed. */
        for (i = 0; message && message[i] && i < sizeof(line) - 1; i++)
                line[i] = ((unsigned char) message[i] < 0x20 || message[i] == 0x7f) ? ' ' : message[i];
        line[i] = '\0';
        if (i == 0)
                snprintf(line, sizeof(line), "%s", strerror(-error));
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "errno", json_object_new_int(-error));
        json_object_object_add(o, "error", json_object_new_string(line));
        r = finish_encode(o, ret, ret_len);
        json_object_put(o);
        return r;
}

/* ---- export blob ---- */

void ctl_export_header_encode(const CtlExportHeader *h, uint8_t out[CTL_EXPORT_HEADER_SIZE]) {
        memset(out, 0, CTL_EXPORT_HEADER_SIZE);
        memcpy(out, CTL_EXPORT_MAGIC, 8);
        tpm_put_be16(out + 8, h->version ? h->version : CTL_EXPORT_VERSION);
        tpm_put_be16(out + 10, (uint16_t) h->kdf.alg);
        if (h->kdf.alg == CTL_KDF_PBKDF2_SHA256) {
                tpm_put_be32(out + 12, h->kdf.iterations);
                memcpy(out + 16, h->kdf.salt, CTL_SALT_SIZE);
        }
        memcpy(out + 32, h->uuid, 16);
        memcpy(out + 48, h->key_check, 16);
        memcpy(out + 64, h->nonce, CTL_EXPORT_NONCE_SIZE);
        tpm_put_be32(out + 76, h->length);
}

int ctl_export_header_parse(const uint8_t *buf, size_t len, bool only_header, CtlExportHeader *ret) {
        static const uint8_t zero[CTL_SALT_SIZE];
        CtlExportHeader h = {};
        uint16_t kdf;

        if (len < CTL_EXPORT_HEADER_SIZE || memcmp(buf, CTL_EXPORT_MAGIC, 8) != 0)
                return -EBADMSG;
        h.version = tpm_be16(buf + 8);
        if (h.version < CTL_EXPORT_VERSION_MIN || h.version > CTL_EXPORT_VERSION)
                return -EPROTONOSUPPORT;
        kdf = tpm_be16(buf + 10);
        if (kdf == CTL_KDF_NONE) {
                if (tpm_be32(buf + 12) != 0 || memcmp(buf + 16, zero, sizeof(zero)) != 0)
                        return -EBADMSG;
                h.kdf.alg = CTL_KDF_NONE;
        } else if (kdf == CTL_KDF_PBKDF2_SHA256) {
                h.kdf.alg = CTL_KDF_PBKDF2_SHA256;
                h.kdf.iterations = tpm_be32(buf + 12);
                if (h.kdf.iterations < CTL_KDF_MIN_ITERATIONS || h.kdf.iterations > CTL_KDF_MAX_ITERATIONS)
                        return -EBADMSG;
                memcpy(h.kdf.salt, buf + 16, CTL_SALT_SIZE);
        } else
                return -EBADMSG;
        memcpy(h.uuid, buf + 32, 16);
        memcpy(h.key_check, buf + 48, 16);
        memcpy(h.nonce, buf + 64, CTL_EXPORT_NONCE_SIZE);
        h.length = tpm_be32(buf + 76);
        if (h.length < CTL_EXPORT_META_SIZE + 4u || h.length > CTL_EXPORT_MAX_PAYLOAD)
                return -EBADMSG;
        if (!(only_header && len == CTL_EXPORT_HEADER_SIZE) &&
            len != CTL_EXPORT_HEADER_SIZE + (size_t) h.length + CTL_EXPORT_TAG_SIZE)
                return -EBADMSG;
        *ret = h;
        return 0;
}

int ctl_export_payload_encode(const CtlExportPayload *p, uint8_t **ret, size_t *ret_len) {
        size_t n = CTL_EXPORT_META_SIZE + 4u + p->permall_len, off;
        uint8_t *b;

        if (p->permall_len > CTL_EXPORT_MAX_PERMALL)
                return -E2BIG;
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++) {
                if (p->rec_len[i] > CTL_EXPORT_MAX_RECORD)
                        return -E2BIG;
                n += 4u + p->rec_len[i];
        }
        b = malloc(n);
        if (!b)
                return -ENOMEM;
        memcpy(b, p->meta, CTL_EXPORT_META_SIZE);
        off = CTL_EXPORT_META_SIZE;
        tpm_put_be32(b + off, (uint32_t) p->permall_len);
        off += 4;
        if (p->permall_len)
                memcpy(b + off, p->permall, p->permall_len);
        off += p->permall_len;
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++) {
                tpm_put_be32(b + off, (uint32_t) p->rec_len[i]);
                off += 4;
                if (p->rec_len[i])
                        memcpy(b + off, p->rec[i], p->rec_len[i]);
                off += p->rec_len[i];
        }
        *ret = b;
        *ret_len = n;
        return 0;
}

int ctl_export_payload_parse(const uint8_t *buf, size_t len, uint16_t version, CtlExportPayload *ret) {
        CtlExportPayload p = { .meta = buf };
        size_t off = CTL_EXPORT_META_SIZE + 4u;
        uint32_t n;

        if (version < CTL_EXPORT_VERSION_MIN || version > CTL_EXPORT_VERSION)
                return -EPROTONOSUPPORT;
        if (len < off)
                return -EBADMSG;
        n = tpm_be32(buf + CTL_EXPORT_META_SIZE);
        if (n > CTL_EXPORT_MAX_PERMALL || len - off < n)
                return -EBADMSG;
        p.permall = buf + off;
        p.permall_len = n;
        off += n;
        for (size_t i = 0; version >= 2 && i < _CTL_EXPORT_REC_MAX; i++) {
                if (len - off < 4u)
                        return -EBADMSG;
                n = tpm_be32(buf + off);
                off += 4;
                if (n > CTL_EXPORT_MAX_RECORD || len - off < n)
                        return -EBADMSG;
                p.rec[i] = buf + off;
                p.rec_len[i] = n;
                off += n;
        }
        if (off != len)
                return -EBADMSG;
        *ret = p;
        return 0;
}
