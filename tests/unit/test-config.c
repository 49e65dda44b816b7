/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd.conf and the command line: what each key accepts, the exact
 * file:line errors a user sees, and which source wins. */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "test.h"
#include "util.h"
#include "vtpmd-config.h"

static char tmpdir[64];
static unsigned file_no;

static const char *dir(void) {
        if (!tmpdir[0]) {
                snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-config.XXXXXX");
                if (!mkdtemp(tmpdir))
                        abort();
        }
        return tmpdir;
}

/* A new file with these contents; the returned path is static until the next call. */
static const char *write_conf(const char *contents) {
        static char path[128];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%u.conf", dir(), file_no++);
        f = fopen(path, "we");
        if (!f)
                abort();
        fputs(contents, f);
        fclose(f);
        return path;
}

/* config_parse_argv on "vtpmd" followed by the NULL-terminated arguments. */
static int run(VtpmdConfig *c, char **ret_error, ...) {
        char *argv[64] = { (char *) "vtpmd" };
        int argc = 1;
        va_list ap;

        va_start(ap, ret_error);
        for (const char *a; (a = va_arg(ap, const char *));) {
                if (argc >= 63)
                        abort();
                argv[argc++] = (char *) a;
        }
        va_end(ap);
        return config_parse_argv(c, argc, argv, ret_error);
}

/* Loads `contents` as a file; expects failure with exactly "PATH:want". */
#define ASSERT_FILE_ERROR(contents, want)                                          \
        do {                                                                       \
                VtpmdConfig _c;                                                    \
                char *_err = NULL, _want[512];                                     \
                const char *_p = write_conf(contents);                             \
                config_init(&_c);                                                  \
                ASSERT_TRUE(config_load_file(&_c, _p, true, &_err) < 0);           \
                config_done(&_c);                                                  \
                snprintf(_want, sizeof(_want), "%s:%s", _p, (want));               \
                if (!_err || strcmp(_err, _want) != 0) {                           \
                        fprintf(stderr, "  got  %s\n  want %s\n", _err ? _err : "(null)", _want); \
                        free(_err);                                                \
                        TEST_FAIL_("wrong error for %s", #contents);               \
                }                                                                  \
                free(_err);                                                        \
        } while (0)

#define ASSERT_CLI_ERROR(want, ...)                                                \
        do {                                                                       \
                VtpmdConfig _c;                                                    \
                char *_err = NULL;                                                 \
                config_init(&_c);                                                  \
                ASSERT_TRUE(run(&_c, &_err, "--no-config", __VA_ARGS__, NULL) < 0); \
                config_done(&_c);                                                  \
                if (!_err || strcmp(_err, (want)) != 0) {                          \
                        fprintf(stderr, "  got  %s\n  want %s\n", _err ? _err : "(null)", (want)); \
                        free(_err);                                                \
                        TEST_FAIL_("wrong error");                                 \
                }                                                                  \
                free(_err);                                                        \
        } while (0)

TEST(defaults) {
        VtpmdConfig c;
        char *err = NULL;

        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--no-config", NULL), 0);
        ASSERT_STREQ(c.platform_spec, "xen");
        ASSERT_EQ(c.self_domid, 0);
        ASSERT_EQ(c.default_family, TPM_FAMILY_2_0);
        ASSERT_EQ(c.log_level, LOG_INFO);
        ASSERT_EQ(c.initwait_dwell_ns, 100ull * 1000000ull);
        ASSERT_FALSE(c.auto_create); /* unknown vTPM UUIDs are refused by default */
        ASSERT_STREQ(c.control_path, "/run/vtpmd/control");
        ASSERT_FALSE(c.have_control_gid);
        ASSERT_STREQ(c.state.state_dir, VTPMD_STATEDIR);
        ASSERT_EQ(c.state.key_source, KEY_SOURCE_TPM);
        ASSERT_TRUE(c.state.host_tpm.tcti == NULL);
        ASSERT_EQ(c.state.host_tpm.srk_handle, 0);
        ASSERT_EQ(c.state.host_tpm.nv_index, 0);
        ASSERT_EQ(c.state.host_tpm.n_pcrs, 0);
        ASSERT_EQ(c.state.counter_interval_ns, 60ull * 1000000000ull);
        ASSERT_TRUE(c.worker_fork_server);
        config_done(&c);
}

TEST(every_key_from_the_file) {
        VtpmdConfig c;
        char *err = NULL;
        const char *p = write_conf("# vtpmd.conf\n"
                                   "[vtpmd]\n"
                                   "StateDirectory = /srv/vtpm\n"
                                   "HostTPM = swtpm:host=localhost,port=2321\n"
                                   "KeySource = file:/etc/vtpmd/dev.key\n"
                                   "PCRPolicy = 7,0,2\n"
                                   "SRKHandle = 0x81000001\n"
                                   "NVIndex = 0x01800200\n"
                                   "CounterInterval = 300\n"
                                   "AutoCreate = no\n"
                                   "ControlSocket = /run/vtpmd/ctl\n"
                                   "ControlGroup = 4242\n"
                                   "LogLevel = debug\n"
                                   "DefaultTPM = 1.2\n"
                                   "InitWaitMS = 250\n"
                                   "WorkerSpawn = exec\n");

        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--config", p, NULL), 0);
        ASSERT_TRUE(err == NULL);
        ASSERT_STREQ(c.state.state_dir, "/srv/vtpm");
        ASSERT_STREQ(c.state.host_tpm.tcti, "swtpm:host=localhost,port=2321");
        ASSERT_EQ(c.state.key_source, KEY_SOURCE_FILE);
        ASSERT_STREQ(c.state.key_file, "/etc/vtpmd/dev.key");
        ASSERT_EQ(c.state.host_tpm.n_pcrs, 3);
        ASSERT_EQ(c.state.host_tpm.pcrs[0], 0);
        ASSERT_EQ(c.state.host_tpm.pcrs[1], 2);
        ASSERT_EQ(c.state.host_tpm.pcrs[2], 7);
        ASSERT_EQ(c.state.host_tpm.srk_handle, 0x81000001u);
        ASSERT_EQ(c.state.host_tpm.nv_index, 0x01800200u);
        ASSERT_EQ(c.state.counter_interval_ns, 300ull * 1000000000ull);
        ASSERT_FALSE(c.auto_create);
        ASSERT_STREQ(c.control_path, "/run/vtpmd/ctl");
        ASSERT_TRUE(c.have_control_gid);
        ASSERT_EQ(c.control_gid, 4242);
        ASSERT_EQ(c.log_level, LOG_DEBUG);
        ASSERT_EQ(c.default_family, TPM_FAMILY_1_2);
        ASSERT_EQ(c.initwait_dwell_ns, 250ull * 1000000ull);
        ASSERT_FALSE(c.worker_fork_server);
        config_done(&c);
}

TEST(every_flag_from_the_command_line) {
        VtpmdConfig c;
        char *err = NULL;

        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--no-config", "--state-dir", "/srv/vtpm", "--host-tpm", "mssim:", "--key-source",
                      "file:/k", "--pcr-policy", "0", "--srk-handle", "2164260865", "--nv-index", "0x01bfffff",
                      "--counter-interval", "0", "--auto-create=no", "--control", "/run/c", "--control-group",
                      "root", "--log-level", "err", "--default-tpm", "1.2", "--initwait-ms", "0", "--platform",
                      "sim:/tmp/x", "--domid", "7", "--trace", "--worker", "/usr/libexec/w", "--worker-spawn",
                      "exec", NULL),
                  0);
        ASSERT_STREQ(c.state.state_dir, "/srv/vtpm");
        ASSERT_STREQ(c.state.host_tpm.tcti, "mssim:");
        ASSERT_STREQ(c.state.key_file, "/k");
        ASSERT_EQ(c.state.host_tpm.n_pcrs, 1);
        ASSERT_EQ(c.state.host_tpm.srk_handle, 0x81000001u);
        ASSERT_EQ(c.state.host_tpm.nv_index, 0x01bfffffu);
        ASSERT_EQ(c.state.counter_interval_ns, 0);
        ASSERT_FALSE(c.auto_create);
        ASSERT_STREQ(c.control_path, "/run/c");
        ASSERT_TRUE(c.have_control_gid);
        ASSERT_EQ(c.control_gid, 0);
        ASSERT_EQ(c.log_level, LOG_ERR);
        ASSERT_EQ(c.default_family, TPM_FAMILY_1_2);
        ASSERT_EQ(c.initwait_dwell_ns, 0);
        ASSERT_STREQ(c.platform_spec, "sim:/tmp/x");
        ASSERT_EQ(c.self_domid, 7);
        ASSERT_TRUE(c.trace);
        ASSERT_STREQ(c.worker_path, "/usr/libexec/w");
        ASSERT_FALSE(c.worker_fork_server);
        config_done(&c);
}

TEST(booleans_and_empty_values) {
        static const char *yes[] = { "yes", "true", "on", "1" }, *no[] = { "no", "false", "off", "0" };
        VtpmdConfig c;
        char *err = NULL, buf[128];

        for (size_t i = 0; i < 4; i++) {
                config_init(&c);
                snprintf(buf, sizeof(buf), "[vtpmd]\nAutoCreate=%s\n", no[i]);
                ASSERT_OK(config_load_file(&c, write_conf(buf), true, &err));
                ASSERT_FALSE(c.auto_create);
                snprintf(buf, sizeof(buf), "[vtpmd]\nAutoCreate=%s\n", yes[i]);
                ASSERT_OK(config_load_file(&c, write_conf(buf), true, &err));
                ASSERT_TRUE(c.auto_create);
                config_done(&c);
        }

        /* empty PCRPolicy and ControlGroup mean "none" (e.g. to undo a setting) */
        config_init(&c);
        ASSERT_OK(config_load_file(&c, write_conf("[vtpmd]\nPCRPolicy=0,1\nControlGroup=0\n"), true, &err));
        ASSERT_OK(config_load_file(&c, write_conf("[vtpmd]\nPCRPolicy=\nControlGroup=\n"), true, &err));
        ASSERT_EQ(c.state.host_tpm.n_pcrs, 0);
        ASSERT_FALSE(c.have_control_gid);
        config_done(&c);
}

TEST(bad_values_in_the_file) {
        ASSERT_FILE_ERROR("[vtpmd]\nStateDirectory=var/lib/vtpmd\n", "2: StateDirectory=var/lib/vtpmd: expected an absolute path");
        ASSERT_FILE_ERROR("[vtpmd]\nStateDirectory=\n", "2: StateDirectory=: expected an absolute path");
        ASSERT_FILE_ERROR("[vtpmd]\nHostTPM=\n", "2: HostTPM=: expected a TCTI such as device:/dev/tpmrm0");
        ASSERT_FILE_ERROR("[vtpmd]\n\nKeySource=file:relative\n",
                          "3: KeySource=file:relative: expected tpm or file:/ABSOLUTE/PATH");
        ASSERT_FILE_ERROR("[vtpmd]\nKeySource=TPM\n", "2: KeySource=TPM: expected tpm or file:/ABSOLUTE/PATH");
        ASSERT_FILE_ERROR("[vtpmd]\nPCRPolicy=0,24\n",
                          "2: PCRPolicy=0,24: expected distinct PCRs 0-23 like 0,2,7 (empty: no PCR policy)");
        ASSERT_FILE_ERROR("[vtpmd]\nPCRPolicy=7,7\n",
                          "2: PCRPolicy=7,7: expected distinct PCRs 0-23 like 0,2,7 (empty: no PCR policy)");
        ASSERT_FILE_ERROR("[vtpmd]\nSRKHandle=0x80000001\n",
                          "2: SRKHandle=0x80000001: expected a persistent handle 0x81xxxxxx");
        ASSERT_FILE_ERROR("[vtpmd]\nNVIndex=0x01c00002\n",
                          "2: NVIndex=0x01c00002: expected an owner NV index 0x01800000-0x01bfffff");
        ASSERT_FILE_ERROR("[vtpmd]\nNVIndex=0x1800000000\n",
                          "2: NVIndex=0x1800000000: expected an owner NV index 0x01800000-0x01bfffff");
        ASSERT_FILE_ERROR("[vtpmd]\nCounterInterval=86401\n", "2: CounterInterval=86401: expected 0..86400 seconds");
        ASSERT_FILE_ERROR("[vtpmd]\nCounterInterval=60s\n", "2: CounterInterval=60s: expected 0..86400 seconds");
        ASSERT_FILE_ERROR("[vtpmd]\nAutoCreate=maybe\n", "2: AutoCreate=maybe: expected yes or no");
        ASSERT_FILE_ERROR("[vtpmd]\nAutoCreate=Yes\n", "2: AutoCreate=Yes: expected yes or no");
        ASSERT_FILE_ERROR("[vtpmd]\nControlSocket=control\n", "2: ControlSocket=control: expected an absolute path");
        ASSERT_FILE_ERROR("[vtpmd]\nControlSocket=/run/vtpmd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                          "2: ControlSocket=/run/vtpmd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: "
                          "expected an absolute path shorter than 108 bytes");
        ASSERT_FILE_ERROR("[vtpmd]\nControlGroup=no-such-group-for-vtpmd-tests\n",
                          "2: ControlGroup=no-such-group-for-vtpmd-tests: expected the name or number of an existing "
                          "group (empty: root only)");
        ASSERT_FILE_ERROR("[vtpmd]\nLogLevel=loud\n", "2: LogLevel=loud: expected err, warning, notice, info or debug");
        ASSERT_FILE_ERROR("[vtpmd]\nDefaultTPM=2\n", "2: DefaultTPM=2: expected 2.0 or 1.2");
        ASSERT_FILE_ERROR("[vtpmd]\nInitWaitMS=60001\n", "2: InitWaitMS=60001: expected 0..60000 milliseconds");
        ASSERT_FILE_ERROR("[vtpmd]\nInitWaitMS=-1\n", "2: InitWaitMS=-1: expected 0..60000 milliseconds");
        ASSERT_FILE_ERROR("[vtpmd]\nWorkerSpawn=fork\n", "2: WorkerSpawn=fork: expected fork-server or exec");
        ASSERT_FILE_ERROR("[vtpmd]\nWorkerSpawn=\n", "2: WorkerSpawn=: expected fork-server or exec");
}

TEST(unknown_and_duplicate_keys_and_sections) {
        ASSERT_FILE_ERROR("[vtpmd]\nLogLevel=info\nVerbose=yes\n", "3: unknown key Verbose");
        ASSERT_FILE_ERROR("[vtpmd]\nloglevel=info\n", "2: unknown key loglevel");
        /* command-line-only settings are not keys */
        ASSERT_FILE_ERROR("[vtpmd]\nPlatform=xen\n", "2: unknown key Platform");
        ASSERT_FILE_ERROR("[vtpmd]\nLogLevel=info\n[Service]\nLogLevel=info\n",
                          "4: unknown section [Service], expected [vtpmd]");
        ASSERT_FILE_ERROR("[vtpmd]\nLogLevel=info\n# again\nLogLevel=debug\n", "4: LogLevel is set twice (first on line 2)");
        ASSERT_FILE_ERROR("[vtpmd]\nLogLevel=info\n[vtpmd]\nLogLevel=info\n", "4: LogLevel is set twice (first on line 2)");
}

TEST(syntax_errors_carry_file_and_line) {
        ASSERT_FILE_ERROR("LogLevel=info\n", "1: assignment before the first [Section]");
        ASSERT_FILE_ERROR("[vtpmd]\n\nLogLevel info\n", "3: expected [Section], Key=Value or a comment");
        ASSERT_FILE_ERROR("[vtpmd\n", "1: expected ']' at the end of the section header");
}

TEST(nul_byte_in_file) {
        VtpmdConfig c;
        char *err = NULL, want[256];
        const char *p = write_conf("");
        int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, "[vtpmd]\nLogLevel=in\0fo\n", 23), 23);
        close(fd);
        config_init(&c);
        ASSERT_ERR(config_load_file(&c, p, true, &err), -EBADMSG);
        config_done(&c);
        snprintf(want, sizeof(want), "%s:2: NUL byte", p);
        ASSERT_STREQ(err, want);
        free(err);
}

TEST(command_line_overrides_the_file_wherever_it_is) {
        VtpmdConfig c;
        char *err = NULL;
        const char *p = write_conf("[vtpmd]\nLogLevel=debug\nAutoCreate=no\nStateDirectory=/from/file\n");

        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--log-level", "err", "--config", p, "--state-dir=/from/cli", NULL), 0);
        ASSERT_EQ(c.log_level, LOG_ERR);
        ASSERT_STREQ(c.state.state_dir, "/from/cli");
        ASSERT_FALSE(c.auto_create); /* from the file, not overridden */
        config_done(&c);

        /* the last of a repeated flag wins, as with getopt everywhere */
        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--config", p, "--log-level", "err", "--log-level", "notice", NULL), 0);
        ASSERT_EQ(c.log_level, LOG_NOTICE);
        config_done(&c);
}

TEST(command_line_errors) {
        ASSERT_CLI_ERROR("--log-level=loud: expected err, warning, notice, info or debug", "--log-level", "loud");
        ASSERT_CLI_ERROR("--state-dir=rel: expected an absolute path", "--state-dir", "rel");
        ASSERT_CLI_ERROR("--auto-create=perhaps: expected yes or no", "--auto-create", "perhaps");
        ASSERT_CLI_ERROR("--domid=65536: expected a domain id 0..65535", "--domid", "65536");
        ASSERT_CLI_ERROR("--srk-handle=1: expected a persistent handle 0x81xxxxxx", "--srk-handle", "1");
        ASSERT_CLI_ERROR("unknown option --verbose", "--verbose");
        ASSERT_CLI_ERROR("--log-level needs a value", "--log-level");
        ASSERT_CLI_ERROR("unexpected argument extra", "extra");
}

/* --help names every option vtpmd accepts. */
TEST(help_lists_every_option) {
        static const char *const flags[] = {
                "config", "no-config", "platform", "domid", "default-tpm", "log-level", "trace", "initwait-ms",
                "worker", "state-dir", "key-source", "host-tpm", "srk-handle", "pcr-policy", "nv-index",
                "counter-interval", "auto-create", "control", "control-group", "worker-ids", "worker-memory-max",
                "worker-spawn", "help", "version",
        };
        char path[] = "/tmp/vtpmd-help.XXXXXX", text[8192] = {}, want[64];
        int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
        VtpmdConfig c;
        char *err = NULL;

        ASSERT_TRUE(fd >= 0 && saved >= 0);
        fflush(stdout);
        ASSERT_TRUE(dup2(fd, STDOUT_FILENO) >= 0);
        config_init(&c);
        int r = run(&c, &err, "--help", NULL);
        fflush(stdout);
        dup2(saved, STDOUT_FILENO);
        close(saved);
        config_done(&c);
        ASSERT_EQ(r, 1);
        ASSERT_TRUE(pread(fd, text, sizeof(text) - 1, 0) > 0);
        close(fd);
        unlink(path);
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                snprintf(want, sizeof(want), "--%s ", flags[i]);
                if (!strstr(text, want))
                        TEST_FAIL_("--help does not list --%s", flags[i]);
        }
}

TEST(a_bad_file_fails_even_when_the_flag_overrides_it) {
        VtpmdConfig c;
        char *err = NULL, want[256];
        const char *p = write_conf("[vtpmd]\nLogLevel=loud\n");

        config_init(&c);
        ASSERT_TRUE(run(&c, &err, "--config", p, "--log-level", "info", NULL) < 0);
        config_done(&c);
        snprintf(want, sizeof(want), "%s:2: LogLevel=loud: expected err, warning, notice, info or debug", p);
        ASSERT_STREQ(err, want);
        free(err);
}

TEST(missing_files) {
        VtpmdConfig c;
        char *err = NULL, missing[128], want[256];

        snprintf(missing, sizeof(missing), "%s/absent.conf", dir());

        /* an explicitly given file must exist */
        config_init(&c);
        ASSERT_ERR(run(&c, &err, "--config", missing, NULL), -ENOENT);
        config_done(&c);
        snprintf(want, sizeof(want), "%s: No such file or directory", missing);
        ASSERT_STREQ(err, want);
        free(err);
        err = NULL;

        /* the default one need not */
        config_init(&c);
        ASSERT_OK(config_load_file(&c, missing, false, &err));
        ASSERT_TRUE(err == NULL);
        config_done(&c);

        /* a directory is not a configuration file */
        config_init(&c);
        ASSERT_ERR(config_load_file(&c, dir(), false, &err), -EISDIR);
        config_done(&c);
        snprintf(want, sizeof(want), "%s: not a regular file", dir());
        ASSERT_STREQ(err, want);
        free(err);
}

TEST(no_config_wins_over_an_earlier_config) {
        VtpmdConfig c;
        char *err = NULL, missing[128];

        snprintf(missing, sizeof(missing), "%s/absent.conf", dir());
        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--config", missing, "--no-config", NULL), 0);
        config_done(&c);
        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--config", missing, "--config", "", NULL), 0);
        config_done(&c);
}

TEST(oversized_file) {
        VtpmdConfig c;
        char *err = NULL, want[256];
        const char *p = write_conf("");
        FILE *f = fopen(p, "we");

        ASSERT_TRUE(f != NULL);
        fputs("[vtpmd]\n", f);
        for (unsigned i = 0; i < VTPMD_CONFIG_MAX_SIZE / 8; i++)
                fputs("# ......\n", f);
        fclose(f);
        config_init(&c);
        ASSERT_ERR(config_load_file(&c, p, true, &err), -EFBIG);
        config_done(&c);
        snprintf(want, sizeof(want), "%s: larger than %u bytes", p, VTPMD_CONFIG_MAX_SIZE);
        ASSERT_STREQ(err, want);
        free(err);
}

/* The example installed as vtpmd.conf: as shipped it sets nothing; with every
 * "#Key=value" line uncommented it must be valid, name every key, and say
 * exactly the defaults (so the documentation cannot drift from the code). */
TEST(the_shipped_example_documents_the_defaults) {
        static const char *keys[] = {
                "StateDirectory", "KeySource", "HostTPM", "PCRPolicy", "NVIndex", "CounterInterval", "AutoCreate",
                "DefaultTPM", "ControlSocket", "ControlGroup", "LogLevel", "InitWaitMS", "WorkerSpawn",
                "EkCaCertificate", "EkCaKey",
        };
        VtpmdConfig c, def;
        char *err = NULL, line[512], *uncommented = NULL;
        size_t size = 0;
        FILE *in = fopen(EXAMPLE_CONF, "re"), *out;

        ASSERT_TRUE(in != NULL);
        config_init(&def);
        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--config", EXAMPLE_CONF, NULL), 0);
        ASSERT_EQ(c.n_strings, 0); /* nothing was set */
        config_done(&c);

        out = open_memstream(&uncommented, &size);
        ASSERT_TRUE(out != NULL);
        while (fgets(line, sizeof(line), in))
                fputs(line[0] == '#' && line[1] >= 'A' && line[1] <= 'Z' ? line + 1 : line, out);
        fclose(in);
        fclose(out);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char want[64];
                snprintf(want, sizeof(want), "\n%s=", keys[i]);
                if (!strstr(uncommented, want))
                        TEST_FAIL_("the example does not show the default of %s", keys[i]);
        }

        config_init(&c);
        if (config_load_file(&c, write_conf(uncommented), true, &err) < 0)
                TEST_FAIL_("uncommented example: %s", err);
        free(uncommented);
        ASSERT_STREQ(c.state.state_dir, def.state.state_dir);
        ASSERT_EQ(c.state.key_source, def.state.key_source);
        ASSERT_STREQ(c.state.host_tpm.tcti, HOST_TPM_DEFAULT_TCTI);
        ASSERT_EQ(c.state.host_tpm.srk_handle, def.state.host_tpm.srk_handle);
        ASSERT_EQ(c.state.host_tpm.n_pcrs, 0);
        ASSERT_EQ(c.state.host_tpm.nv_index, HOST_TPM_DEFAULT_NV_INDEX);
        ASSERT_EQ(c.state.counter_interval_ns, def.state.counter_interval_ns);
        ASSERT_EQ(c.auto_create, def.auto_create);
        ASSERT_EQ(c.default_family, def.default_family);
        ASSERT_STREQ(c.control_path, def.control_path);
        ASSERT_EQ(c.have_control_gid, def.have_control_gid);
        ASSERT_EQ(c.log_level, def.log_level);
        ASSERT_EQ(c.initwait_dwell_ns, def.initwait_dwell_ns);
        ASSERT_EQ(c.worker_fork_server, def.worker_fork_server);
        config_done(&c);
        config_done(&def);
}

/* runs last (cases run in file order): remove what the others wrote */
TEST(zz_cleanup) {
        char path[160];

        for (unsigned i = 0; i < file_no; i++) {
                snprintf(path, sizeof(path), "%s/%u.conf", dir(), i);
                (void) unlink(path);
        }
        ASSERT_OK(rmdir(dir()));
}

TEST(ek_ca_files_go_together) {
        VtpmdConfig c;
        char *err = NULL;

        config_init(&c);
        ASSERT_EQ(run(&c, &err, "--no-config", "--ek-ca-cert", "/etc/ca.pem", "--ek-ca-key", "/etc/ca.key", NULL), 0);
        ASSERT_STREQ(c.ek_ca_cert, "/etc/ca.pem");
        ASSERT_STREQ(c.ek_ca_key, "/etc/ca.key");
        config_done(&c);
        config_init(&c);
        ASSERT_ERR(run(&c, &err, "--no-config", "--ek-ca-cert", "/etc/ca.pem", NULL), -EINVAL);
        ASSERT_TRUE(strstr(err, "go together") != NULL);
        free(err);
        err = NULL;
        config_done(&c);
        config_init(&c);
        ASSERT_ERR(run(&c, &err, "--no-config", "--ek-ca-cert", "ca.pem", "--ek-ca-key", "/etc/ca.key", NULL), -EINVAL);
        ASSERT_TRUE(strstr(err, "absolute path") != NULL);
        free(err);
        config_done(&c);
}
