/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "ini.h"
#include "log.h"
#include "parse.h"
#include "util.h"
#include "vtpmd-config.h"

#define CONFIG_SECTION "vtpmd"

/* Keeps a copy of s for as long as the configuration lives. */
static const char *config_strdup(VtpmdConfig *c, const char *s) {
        char **p, *copy;

        copy = strdup(s);
        if (!copy)
                return NULL;
        p = reallocarray(c->strings, c->n_strings + 1, sizeof(char *));
        if (!p) {
                free(copy);
                return NULL;
        }
        c->strings = p;
        c->strings[c->n_strings++] = copy;
        return copy;
}

/* Each setter checks one value and applies it. On a bad value it returns
 * -EINVAL with *ret_reason saying what was expected; -ENOMEM otherwise. */
typedef int (*ConfigSetter)(VtpmdConfig *c, const char *v, const char **ret_reason);

static int set_absolute_path(VtpmdConfig *c, const char *v, const char **target, const char **ret_reason) {
        const char *p;

        if (v[0] != '/') {
                *ret_reason = "expected an absolute path";
                return -EINVAL;
        }
        p = config_strdup(c, v);
        if (!p)
                return -ENOMEM;
        *target = p;
        return 0;
}

static int set_state_dir(VtpmdConfig *c, const char *v, const char **ret_reason) {
        return set_absolute_path(c, v, &c->state.state_dir, ret_reason);
}

static int set_pool_dir(VtpmdConfig *c, const char *v, const char **ret_reason) {
        return set_absolute_path(c, v, &c->state.pool_dir, ret_reason);
}

/* An empty value: vtpmd's own local CA again. */
static int set_ek_ca_cert(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (!*v) {
                c->ek_ca_cert = NULL;
                return 0;
        }
        return set_absolute_path(c, v, &c->ek_ca_cert, ret_reason);
}

static int set_ek_ca_key(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (!*v) {
                c->ek_ca_key = NULL;
                return 0;
        }
        return set_absolute_path(c, v, &c->ek_ca_key, ret_reason);
}

static int set_host_tpm(VtpmdConfig *c, const char *v, const char **ret_reason) {
        const char *p;

        if (!*v) {
                *ret_reason = "expected a TCTI such as device:/dev/tpmrm0";
                return -EINVAL;
        }
        p = config_strdup(c, v);
        if (!p)
                return -ENOMEM;
        c->state.host_tpm.tcti = p;
        return 0;
}

static int set_key_source(VtpmdConfig *c, const char *v, const char **ret_reason) {
        const char *p;

        if (streq(v, "tpm")) {
                c->state.key_source = KEY_SOURCE_TPM;
                c->state.key_file = NULL;
                return 0;
        }
        if (strncmp(v, "file:", 5) != 0 || v[5] != '/') {
                *ret_reason = "expected tpm or file:/ABSOLUTE/PATH";
                return -EINVAL;
        }
        p = config_strdup(c, v + 5);
        if (!p)
                return -ENOMEM;
        c->state.key_source = KEY_SOURCE_FILE;
        c->state.key_file = p;
        return 0;
}

static int set_pcr_policy(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t pcrs[HOST_TPM_MAX_PCRS];
        size_t n;

        if (parse_pcr_list(v, 24, pcrs, HOST_TPM_MAX_PCRS, &n) < 0) {
                *ret_reason = "expected distinct PCRs 0-23 like 0,2,7 (empty: no PCR policy)";
                return -EINVAL;
        }
        memcpy(c->state.host_tpm.pcrs, pcrs, sizeof(pcrs));
        c->state.host_tpm.n_pcrs = n;
        return 0;
}

static int set_srk_handle(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t h;

        if (parse_u32_hex_or_dec(v, &h) < 0 || (h >> 24) != 0x81) {
                *ret_reason = "expected a persistent handle 0x81xxxxxx";
                return -EINVAL;
        }
        c->state.host_tpm.srk_handle = h;
        return 0;
}

static int set_nv_index(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t h;

        if (parse_u32_hex_or_dec(v, &h) < 0 || h < 0x01800000u || h > 0x01bfffffu) {
                *ret_reason = "expected an owner NV index 0x01800000-0x01bfffff";
                return -EINVAL;
        }
        c->state.host_tpm.nv_index = h;
        return 0;
}

static int set_counter_interval(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t s;

        if (parse_u32_max(v, 86400, &s) < 0) {
                *ret_reason = "expected 0..86400 seconds";
                return -EINVAL;
        }
        c->state.counter_interval_ns = (uint64_t) s * 1000000000ull;
        return 0;
}

/* The spellings systemd accepts for booleans, lowercase only. */
static int set_auto_create(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (streq(v, "yes") || streq(v, "true") || streq(v, "on") || streq(v, "1"))
                c->auto_create = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "off") || streq(v, "0"))
                c->auto_create = false;
        else {
                *ret_reason = "expected yes or no";
                return -EINVAL;
        }
        return 0;
}

/* FIRST is the group vtpmd shares with its workers, FIRST+1 the uid of
 * manufacturing workers, FIRST+2..LAST one uid per running guest worker. */
static int set_worker_ids(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t a, b;

        if (streq(v, "no")) {
                c->worker_id_first = c->worker_id_last = 0;
                return 0;
        }
        if (parse_u32_range(v, &a, &b) < 0 || a == 0 || b - a < 2 || b == UINT32_MAX) {
                *ret_reason = "expected FIRST-LAST, 0 < FIRST, FIRST+2 <= LAST < 4294967295, or no";
                return -EINVAL;
        }
        c->worker_id_first = a;
        c->worker_id_last = b;
        return 0;
}

static int set_worker_memory_max(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint64_t n;

        if (streq(v, "infinity")) {
                c->worker_memory_max = 0;
                return 0;
        }
        /* Below 64 MiB libtpms, OpenSSL and two thread stacks do not fit. */
        if (parse_size(v, &n) < 0 || n < (64ull << 20)) {
                *ret_reason = "expected a size of at least 64M (K, M, G suffixes) or infinity";
                return -EINVAL;
        }
        c->worker_memory_max = n;
        return 0;
}

static int set_worker_spawn(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (streq(v, "fork-server"))
                c->worker_fork_server = true;
        else if (streq(v, "exec"))
                c->worker_fork_server = false;
        else {
                *ret_reason = "expected fork-server or exec";
                return -EINVAL;
        }
        return 0;
}

static int set_control_path(VtpmdConfig *c, const char *v, const char **ret_reason) {
        /* bound: sun_path of struct sockaddr_un, with its NUL */
        if (strlen(v) >= sizeof(((struct sockaddr_un *) NULL)->sun_path)) {
                *ret_reason = "expected an absolute path shorter than 108 bytes";
                return -EINVAL;
        }
        return set_absolute_path(c, v, &c->control_path, ret_reason);
}

static int set_control_group(VtpmdConfig *c, const char *v, const char **ret_reason) {
        struct group gr, *res = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t bufsize = 1024;
        uint32_t gid;
        int r;

        if (!*v) {
                c->have_control_gid = false;
                return 0;
        }
        if (parse_u32(v, &gid) == 0 && gid != (uint32_t) (gid_t) -1) {
                c->control_gid = (gid_t) gid;
                c->have_control_gid = true;
                return 0;
        }
        for (;;) {
                buf = malloc(bufsize);
                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(v, &gr, buf, bufsize, &res);
                if (r != ERANGE || bufsize >= 1024u * 1024u)
                        break;
                free(TAKE_PTR(buf));
                bufsize *= 4;
        }
        if (r != 0 || !res) {
                *ret_reason = "expected the name or number of an existing group (empty: root only)";
                return -EINVAL;
        }
        c->control_gid = res->gr_gid;
        c->have_control_gid = true;
        return 0;
}

static int set_log_level(VtpmdConfig *c, const char *v, const char **ret_reason) {
        int l = log_level_from_string(v);

        if (l < 0) {
                *ret_reason = "expected err, warning, notice, info or debug";
                return -EINVAL;
        }
        c->log_level = l;
        return 0;
}

static int set_default_tpm(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (tpm_family_from_string(v, &c->default_family) < 0) {
                *ret_reason = "expected 2.0 or 1.2";
                return -EINVAL;
        }
        return 0;
}

static int set_initwait(VtpmdConfig *c, const char *v, const char **ret_reason) {
        uint32_t ms;

        if (parse_u32_max(v, 60000, &ms) < 0) {
                *ret_reason = "expected 0..60000 milliseconds";
                return -EINVAL;
        }
        c->initwait_dwell_ns = (uint64_t) ms * 1000000ull;
        return 0;
}

static int set_platform(VtpmdConfig *c, const char *v, const char **ret_reason) {
        /* checked by platform_parse() once the domid is known */
        c->platform_spec = v;
        return 0;
}

static int set_domid(VtpmdConfig *c, const char *v, const char **ret_reason) {
        if (parse_u32_max(v, UINT16_MAX, &c->self_domid) < 0) {
                *ret_reason = "expected a domain id 0..65535";
                return -EINVAL;
        }
        return 0;
}

static int set_trace(VtpmdConfig *c, const char *v, const char **ret_reason) {
        c->trace = true;
        return 0;
}

static int set_subuid(VtpmdConfig *c, const char *v, const char **ret_reason) {
        return set_absolute_path(c, v, &c->subuid_path, ret_reason);
}

static int set_subgid(VtpmdConfig *c, const char *v, const char **ret_reason) {
        return set_absolute_path(c, v, &c->subgid_path, ret_reason);
}

static int set_worker(VtpmdConfig *c, const char *v, const char **ret_reason) {
        c->worker_path = v;
        return 0;
}

typedef struct ConfigOption {
        const char *key;  /* in [vtpmd]; NULL: command line only */
        const char *flag; /* --flag */
        const char *arg;  /* NULL: a flag without a value */
        ConfigSetter set;
} ConfigOption;

/* The order is the order of --help. */
static const ConfigOption options[] = {
        { NULL, "platform", "xen|sim:DIR", set_platform },
        { NULL, "domid", "N", set_domid },
        { "DefaultTPM", "default-tpm", "2.0|1.2", set_default_tpm },
        { "LogLevel", "log-level", "LEVEL", set_log_level },
        { NULL, "trace", NULL, set_trace },
        { "InitWaitMS", "initwait-ms", "MS", set_initwait },
        { NULL, "worker", "PATH", set_worker },
        { "StateDirectory", "state-dir", "PATH", set_state_dir },
        { "PoolDirectory", "pool-dir", "PATH", set_pool_dir },
        { "EkCaCertificate", "ek-ca-cert", "PATH", set_ek_ca_cert },
        { "EkCaKey", "ek-ca-key", "PATH", set_ek_ca_key },
        { "KeySource", "key-source", "tpm|file:PATH", set_key_source },
        { "HostTPM", "host-tpm", "TCTI", set_host_tpm },
        { "SRKHandle", "srk-handle", "HANDLE", set_srk_handle },
        { "PCRPolicy", "pcr-policy", "LIST", set_pcr_policy },
        { "NVIndex", "nv-index", "HANDLE", set_nv_index },
        { "CounterInterval", "counter-interval", "SEC", set_counter_interval },
        { "AutoCreate", "auto-create", "yes|no", set_auto_create },
        { "ControlSocket", "control", "PATH", set_control_path },
        { "ControlGroup", "control-group", "GROUP", set_control_group },
        { "WorkerIDs", "worker-ids", "FIRST-LAST|no", set_worker_ids },
        { NULL, "subuid", "FILE", set_subuid },
        { NULL, "subgid", "FILE", set_subgid },
        { "WorkerMemoryMax", "worker-memory-max", "SIZE", set_worker_memory_max },
        { "WorkerSpawn", "worker-spawn", "fork-server|exec", set_worker_spawn },
};

void config_init(VtpmdConfig *c) {
        *c = (VtpmdConfig){
                .platform_spec = "xen",
                .default_family = TPM_FAMILY_2_0,
                .log_level = LOG_INFO,
                .initwait_dwell_ns = VTPMD_DEFAULT_INITWAIT_MS * 1000000ull,
                /* libxl invents a random UUID per boot when none is
                 * configured: a fresh vTPM per boot is never what a user
                 * wants, so unknown UUIDs are refused unless asked for. */
                .auto_create = false,
                .control_path = VTPMD_DEFAULT_CONTROL_PATH,
                .subuid_path = VTPMD_DEFAULT_SUBUID_FILE,
                .subgid_path = VTPMD_DEFAULT_SUBGID_FILE,
                .worker_id_first = VTPMD_DEFAULT_WORKER_ID_FIRST,
                .worker_id_last = VTPMD_DEFAULT_WORKER_ID_LAST,
                .worker_memory_max = VTPMD_DEFAULT_WORKER_MEMORY_MAX,
                .worker_fork_server = true,
                .state = {
                        .state_dir = VTPMD_STATEDIR,
                        .key_source = KEY_SOURCE_TPM,
                        .counter_interval_ns = VTPMD_DEFAULT_COUNTER_INTERVAL_S * 1000000000ull,
                },
        };
}

void config_done(VtpmdConfig *c) {
        for (size_t i = 0; i < c->n_strings; i++)
                free(c->strings[i]);
        free(c->strings);
        c->strings = NULL;
        c->n_strings = 0;
}

static const ConfigOption *option_by_key(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (options[i].key && streq(options[i].key, key))
                        return &options[i];
        return NULL;
}

static int read_file(const char *path, bool must_exist, char **ret, size_t *ret_size, char **ret_error) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -ENOENT && !must_exist) {
                        *ret = NULL;
                        *ret_size = 0;
                        return 0;
                }
                if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = negative_errno();
                if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                if (asprintf(ret_error, "%s: not a regular file", path) < 0)
                        *ret_error = NULL;
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        }
        buf = malloc(VTPMD_CONFIG_MAX_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        /* read to EOF, not st_size: the file may change under us */
        for (;;) {
                ssize_t n = read(fd, buf + size, VTPMD_CONFIG_MAX_SIZE + 1 - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = negative_errno();
                        if (asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > VTPMD_CONFIG_MAX_SIZE) {
                        if (asprintf(ret_error, "%s: larger than %u bytes", path, VTPMD_CONFIG_MAX_SIZE) < 0)
                                *ret_error = NULL;
                        return -EFBIG;
                }
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int config_load_file(VtpmdConfig *c, const char *path, bool must_exist, char **ret_error) {
        unsigned first_line[ELEMENTSOF(options)] = { 0 };
        _cleanup_(ini_freep) Ini *ini = NULL;
        _cleanup_free_ char *data = NULL;
        IniError ie = { 0 };
        size_t size;
        int r;

        *ret_error = NULL;
        r = read_file(path, must_exist, &data, &size, ret_error);
        if (r < 0 || !data)
                return r;

        r = ini_parse(data, size, &ini, &ie);
        if (r == -EBADMSG) {
                if (asprintf(ret_error, "%s:%u: %s", path, ie.line, ie.message) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (r < 0)
                return r;

        for (size_t i = 0; i < ini->n_entries; i++) {
                const IniEntry *e = &ini->entries[i];
                const ConfigOption *o;
                const char *reason = NULL;
                size_t idx;

                if (!streq(e->section, CONFIG_SECTION)) {
                        if (asprintf(ret_error, "%s:%u: unknown section [%s], expected [" CONFIG_SECTION "]", path,
                                     e->line, e->section) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                o = option_by_key(e->key);
                if (!o) {
                        if (asprintf(ret_error, "%s:%u: unknown key %s", path, e->line, e->key) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                idx = (size_t) (o - options);
                if (first_line[idx]) {
                        if (asprintf(ret_error, "%s:%u: %s is set twice (first on line %u)", path, e->line, e->key,
                                     first_line[idx]) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                first_line[idx] = e->line;
                r = o->set(c, e->value, &reason);
                if (r == -EINVAL) {
                        if (asprintf(ret_error, "%s:%u: %s=%s: %s", path, e->line, e->key, e->value, reason) < 0)
                                *ret_error = NULL;
                        return r;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static void help(void) {
        printf("Usage: vtpmd [OPTIONS]\n"
               "\n"
               "Xen vTPM backend: serves every guest's vtpm device with its own libtpms instance.\n"
               "Settings come from the configuration file, then from these options.\n"
               "\n"
               "  --config PATH            configuration file (default: " VTPMD_CONFIG_FILE ")\n"
               "  --no-config              use no configuration file (same as --config '')\n"
               "  --platform xen|sim:DIR   Xen to talk to (default: xen)\n"
               "  --domid N                the backend domain this daemon serves (default: 0)\n"
               "  --default-tpm 2.0|1.2    TPM family of new vTPMs (default: 2.0)\n"
               "  --log-level LEVEL        err, warning, notice, info, debug (default: info)\n"
               "  --trace                  log TPM payloads at debug level (contains guest secrets)\n"
               "  --initwait-ms MS         keep InitWait visible at least this long (default: %u)\n"
               "  --worker PATH            the vtpmd-worker binary\n"
               "  --state-dir PATH         vTPM state root (default: " VTPMD_STATEDIR ")\n"
               "  --pool-dir PATH          vTPM directories on a file system shared by a pool of hosts (default: none)\n"
               "  --ek-ca-cert PATH        issue EK certificates with this CA certificate (PEM) ...\n"
               "  --ek-ca-key PATH         ... and its key (PEM, mode 0600) (default: vtpmd's local CA)\n"
               "  --key-source tpm|file:PATH  master key sealed to the host TPM (default), or a key file\n"
               "  --host-tpm TCTI          host TPM 2.0 (default: " HOST_TPM_DEFAULT_TCTI ")\n"
               "  --srk-handle HANDLE      persistent SRK (default: create the TCG template primary)\n"
               "  --pcr-policy LIST        seal the master key to these sha256 PCRs, e.g. 0,2,7 (default: none)\n"
               "  --nv-index HANDLE        host NV counter for rollback protection (default: 0x%08x)\n"
               "  --counter-interval SEC   at most one counter increment per interval (default: %u)\n"
               "  --auto-create yes|no     create state for unknown vTPM UUIDs (default: no)\n"
               "  --control PATH           control socket (default: " VTPMD_DEFAULT_CONTROL_PATH ")\n"
               "  --control-group GROUP    group allowed to use the control socket (default: root only)\n"
               "  --worker-ids FIRST-LAST|no  group and uids of the workers (default: %u-%u)\n"
               "  --subuid FILE            subordinate uids WorkerIDs= must not overlap (default: " VTPMD_DEFAULT_SUBUID_FILE ")\n"
               "  --subgid FILE            subordinate gids WorkerIDs= must not overlap (default: " VTPMD_DEFAULT_SUBGID_FILE ")\n"
               "  --worker-memory-max SIZE address-space limit of each worker (default: %lluM)\n"
               "  --worker-spawn fork-server|exec  how workers start (default: fork-server)\n"
               "  -h, --help               show this help\n"
               "  --version                show the version\n",
               VTPMD_DEFAULT_INITWAIT_MS, HOST_TPM_DEFAULT_NV_INDEX, VTPMD_DEFAULT_COUNTER_INTERVAL_S,
               VTPMD_DEFAULT_WORKER_ID_FIRST, VTPMD_DEFAULT_WORKER_ID_LAST, VTPMD_DEFAULT_WORKER_MEMORY_MAX >> 20);
}

enum {
        OPT_CONFIG = 0x100,
        OPT_NO_CONFIG,
        OPT_VERSION,
        OPT_FIRST, /* OPT_FIRST + i is options[i] */
};

int config_parse_argv(VtpmdConfig *c, int argc, char **argv, char **ret_error) {
        struct option longopts[ELEMENTSOF(options) + 5];
        const char *config_path = VTPMD_CONFIG_FILE;
        bool config_explicit = false;
        size_t n = 0;
        int opt, r;

        *ret_error = NULL;
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                longopts[n++] = (struct option){ options[i].flag, options[i].arg ? required_argument : no_argument,
                                                 NULL, OPT_FIRST + (int) i };
        longopts[n++] = (struct option){ "config", required_argument, NULL, OPT_CONFIG };
        longopts[n++] = (struct option){ "no-config", no_argument, NULL, OPT_NO_CONFIG };
        longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        longopts[n++] = (struct option){ "version", no_argument, NULL, OPT_VERSION };
        longopts[n] = (struct option){};

        /* First pass: which file, and whether to run at all. Second pass: the
         * rest, so that the command line overrides the file wherever it is. */
        opterr = 0;
        optind = 0;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) >= 0) {
                switch (opt) {
                case OPT_CONFIG:
                        config_path = optarg;
                        config_explicit = true;
                        break;
                case OPT_NO_CONFIG:
                        config_path = "";
                        config_explicit = true;
                        break;
                case 'h':
                        help();
                        return 1;
                case OPT_VERSION:
                        /* libtpms and tpm2-tss as built with (the workers load libtpms), OpenSSL as running. */
                        printf("vtpmd " VTPMD_VERSION "\nlibtpms " VTPMD_LIBTPMS_VERSION "\n%s\ntpm2-tss "
                               VTPMD_TSS2_VERSION "\n", crypto_library_version());
                        return 1;
                case ':':
                        if (asprintf(ret_error, "%s needs a value", argv[optind - 1]) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                case '?':
                        if (asprintf(ret_error, "unknown option %s", argv[optind - 1]) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                default:
                        break;
                }
        }
        if (optind < argc) {
                if (asprintf(ret_error, "unexpected argument %s", argv[optind]) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        if (*config_path) {
                r = config_load_file(c, config_path, config_explicit, ret_error);
                if (r < 0)
                        return r;
        }

        optind = 0;
        while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) >= 0) {
                const ConfigOption *o;
                const char *reason = NULL;

                if (opt < OPT_FIRST)
                        continue;
                o = &options[opt - OPT_FIRST];
                r = o->set(c, o->arg ? optarg : NULL, &reason);
                if (r == -EINVAL) {
                        if (asprintf(ret_error, "--%s=%s: %s", o->flag, optarg, reason) < 0)
                                *ret_error = NULL;
                        return r;
                }
                if (r < 0)
                        return r;
        }
        if (!c->ek_ca_cert != !c->ek_ca_key) {
                if (asprintf(ret_error, "EkCaCertificate= (--ek-ca-cert) and EkCaKey= (--ek-ca-key) go together: "
                             "set both, or neither for vtpmd's local CA") < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        return 0;
}
