/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Master key, rollback manifest and host counter; per-vTPM data keys.
 *
 * Commit protocol of the manifest (research tss-sealing.md §3.3): the host
 * counter holds `committed`; every manifest written since carries
 * committed + 1; an increment makes the counter catch up. At start:
 *   manifest.counter == counter      clean
 *   manifest.counter == counter + 1  a commit was interrupted: increment, go on
 *   anything else                    rollback or another TPM: refuse to start
 * Increments are rate-limited (counter_interval) so a guest cannot wear out
 * the host TPM's NV; the manifest itself is rewritten whenever it changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "clock.h"
#include "log.h"
#include "parse.h"
#include "pool.h"
#include "state.h"
#include "util.h"

#define MASTER_SEALED "master.sealed"
/* Manifest writes are batched: at most one a second. */
#define COMMIT_DELAY_USEC (1000ull * 1000ull)
/* Handovers to other pool hosts under way at once: one per suspended guest being migrated away. */
#define HANDOVERS_MAX 64u

/* A vTPM whose last durable write of a kind failed (vtpm_state_write_result). */
typedef struct WriteError {
        char uuid[37];
        int perm_error, vol_error; /* 0 or negative errno */
        struct WriteError *next;
} WriteError;

struct VtpmState {
        StateRoot *root;  /* the host's own: master key, manifest, CA */
        StateRoot *vroot; /* the vTPM directories: root, or the pool's vtpms/ */
        HostTpm *tpm; /* NULL in key-file mode */
        uint8_t master_key[CRYPTO_KEY_SIZE];
        /* What wraps the vTPMs' data keys: master_key, or pool_key in a pool (NULL until a member). */
        const uint8_t *wrap_key;
        Pool *pool;
        bool pool_member;
        uint8_t pool_key[POOL_KEY_SIZE];
        uint8_t pool_point[POOL_KEY_POINT_SIZE]; /* this host's TPM transfer point */
        char pool_fp[POOL_KEY_FINGERPRINT_HEX_SIZE];
        StateManifest manifest;
        uint64_t committed_counter; /* the host counter's value; manifests carry committed + 1 */
        uint64_t last_increment_ns;
        uint64_t counter_interval_ns;
        bool dirty;                 /* the manifest on disk is behind the one in memory */
        unsigned host_tpm_commands; /* at start, for the boot-storm figure */
        sd_event *event;            /* vtpm_state_attach_event() */
        sd_event_source *commit_source;
        /* vTPMs whose worker was told to let go for another pool host's request (vtpm_state_handover_begin). */
        struct {
                char uuid[37];
                uint8_t handle[STATEFILE_UUID_SIZE];
        } handing_over[HANDOVERS_MAX];
        unsigned n_handing_over;
        WriteError *write_errors;
        int commit_error; /* the last manifest commit's: 0 or negative errno */
};

/* ---- master key ---- */

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static int key_from_file(const char *path, uint8_t key[CRYPTO_KEY_SIZE]) {
        _cleanup_close_ int fd = -1;
        uint8_t buf[CRYPTO_KEY_SIZE * 2 + 2];
        struct stat st;
        ssize_t n;
        int r;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                r = crypto_random(key, CRYPTO_KEY_SIZE);
                if (r < 0)
                        return log_error_errno(r, "Failed to generate a master key");
                fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return log_error_errno(-errno, "Failed to create key file %s", path);
                if (fchmod(fd, 0600) < 0 || write(fd, key, CRYPTO_KEY_SIZE) != CRYPTO_KEY_SIZE || fsync(fd) < 0) {
                        r = negative_errno();
                        (void) unlink(path);
                        crypto_wipe(key, CRYPTO_KEY_SIZE);
                        return log_error_errno(r, "Failed to write key file %s", path);
                }
                log_msg(LOG_WARNING, "Created a new master key in %s", path);
                return 0;
        }
        if (fd < 0)
                return log_error_errno(-errno, "Failed to open key file %s", path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Failed to stat key file %s", path);
        if (st.st_mode & 0077) {
                log_msg(LOG_ERR, "Key file %s is accessible by group or others (mode %04o); refusing it", path,
                        (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf));
        if (n < 0)
                return log_error_errno(-errno, "Failed to read key file %s", path);
        if (n == CRYPTO_KEY_SIZE) {
                memcpy(key, buf, CRYPTO_KEY_SIZE);
                crypto_wipe(buf, sizeof(buf));
                return 0;
        }
        if (n == 2 * CRYPTO_KEY_SIZE || (n == 2 * CRYPTO_KEY_SIZE + 1 && buf[n - 1] == '\n')) {
                for (size_t i = 0; i < CRYPTO_KEY_SIZE; i++) {
                        int hi = hexval((char) buf[2 * i]), lo = hexval((char) buf[2 * i + 1]);
                        if (hi < 0 || lo < 0)
                                goto bad;
                        key[i] = (uint8_t) (hi << 4 | lo);
                }
                crypto_wipe(buf, sizeof(buf));
                return 0;
        }
bad:
        crypto_wipe(buf, sizeof(buf));
        crypto_wipe(key, CRYPTO_KEY_SIZE);
        log_msg(LOG_ERR, "Key file %s must hold exactly 32 bytes, or 64 hex digits", path);
        return -EINVAL;
}

static int key_from_tpm(VtpmState *s, const StateConfig *c, bool have_vtpms) {
        _cleanup_free_ uint8_t *blob = NULL;
        const char *tcti = c->host_tpm.tcti ?: HOST_TPM_DEFAULT_TCTI;
        size_t len = 0;
        int r;

        r = host_tpm_open(&c->host_tpm, &s->tpm);
        if (r < 0) {
                log_msg(LOG_ERR, "Cannot use the host TPM at %s: %s", tcti,
                        r == -ENODEV  ? "no TPM answers there"
                        : r == -ENOPKG ? host_tpm_last_error(NULL)
                                       : strerror(-r));
                return r;
        }
        r = stateroot_read_raw(s->root, MASTER_SEALED, &blob, &len);
        if (r == -ENOENT) {
                if (have_vtpms) {
                        log_msg(LOG_ERR, "%s/%s is missing but the state root holds vTPMs; their keys cannot be "
                                "recovered without it. Refusing to start (restore the file from backup).",
                                stateroot_path(s->root), MASTER_SEALED);
                        return -ENOENT;
                }
                r = crypto_random(s->master_key, CRYPTO_KEY_SIZE);
                if (r < 0)
                        return log_error_errno(r, "Failed to generate a master key");
                r = host_tpm_seal(s->tpm, s->master_key, &blob, &len);
                if (r < 0) {
                        log_msg(LOG_ERR, "Failed to seal a new master key to the host TPM at %s: %s", tcti,
                                host_tpm_last_error(s->tpm));
                        return r;
                }
                r = stateroot_write_raw(s->root, MASTER_SEALED, blob, len);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s/%s", stateroot_path(s->root), MASTER_SEALED);
                log_msg(LOG_NOTICE, "Sealed a new master key to the host TPM at %s", tcti);
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/%s", stateroot_path(s->root), MASTER_SEALED);
        r = host_tpm_unseal(s->tpm, blob, len, s->master_key);
        if (r < 0) {
                const char *why = r == -EKEYREJECTED ? "it was sealed to another TPM, or this TPM was cleared"
                                  : r == -EPERM      ? "the host's PCRs no longer match the sealing policy"
                                  : r == -EBADMSG    ? "the file is malformed"
                                                     : "the host TPM failed";
                log_msg(LOG_ERR, "Cannot unseal the master key %s/%s: %s (%s)", stateroot_path(s->root),
                        MASTER_SEALED, why, host_tpm_last_error(s->tpm));
                return r;
        }
        return 0;
}

/* ---- manifest ---- */

static int manifest_load(VtpmState *s, bool have_vtpms, bool *ret_found) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t seq;
        int r;

        r = stateroot_read(s->root, STATE_KIND_MANIFEST, s->master_key, &buf, &len, &seq);
        if (r == -ENOENT) {
                *ret_found = false;
                if (have_vtpms && s->tpm) {
                        log_msg(LOG_ERR, "%s/manifest is missing but the state root holds vTPMs: refusing to start "
                                "(the state root may have been rolled back or tampered with)",
                                stateroot_path(s->root));
                        return -ENOENT;
                }
                return 0;
        }
        if (r < 0) {
                log_msg(LOG_ERR, "State file %s/manifest %s; refusing to start", stateroot_path(s->root),
                        statestore_strerror(r));
                return r;
        }
        r = state_manifest_parse(buf, len, &s->manifest);
        crypto_wipe(buf, len);
        if (r < 0) {
                log_msg(LOG_ERR, "State file %s/manifest has a malformed body; refusing to start",
                        stateroot_path(s->root));
                return r;
        }
        *ret_found = true;
        return 0;
}

/* Writes the manifest committed to `counter` (committed + 1 for a change not yet
 * anchored by an increment, committed to re-anchor after a foreign increment). */
static int manifest_write_at(VtpmState *s, uint64_t counter) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        s->manifest.counter = counter;
        r = state_manifest_encode(&s->manifest, &buf, &len);
        if (r < 0)
                return log_error_errno(r, "Failed to encode the manifest");
        r = stateroot_write(s->root, STATE_KIND_MANIFEST, s->master_key, s->manifest.counter, buf, len);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s/manifest", stateroot_path(s->root));
        s->dirty = false;
        return 0;
}

static int manifest_write(VtpmState *s) {
        return manifest_write_at(s, s->tpm ? s->committed_counter + 1 : 0);
}

static int counter_increment(VtpmState *s) {
        uint64_t v;
        int r = host_tpm_counter_increment(s->tpm, &v);

        if (r < 0)
                return log_error_errno(r, "Failed to increment the host TPM's rollback counter: %s",
                                       host_tpm_last_error(s->tpm));
        if (v != s->committed_counter + 1)
                log_msg(LOG_WARNING, "Host rollback counter went from %" PRIu64 " to %" PRIu64
                        " (someone else incremented it)", s->committed_counter, v);
        s->committed_counter = v;
        s->last_increment_ns = now_ns();
        /* The manifest on disk now carries exactly the counter: a clean state. A
         * foreign increment leaves it behind; the next start would refuse it,
         * so rewrite it with the new value at once. */
        if (s->manifest.counter != v)
                s->dirty = true;
        return 0;
}

static int manifest_check_counter(VtpmState *s, bool found) {
        uint64_t n;
        int r;

        if (!s->tpm) {
                log_msg(LOG_WARNING, "Key-file mode: vTPM state has no rollback protection (no host TPM counter)");
                return 0;
        }
        if (!found) {
                /* First start: anchor a new manifest to the counter. */
                r = host_tpm_counter_ensure(s->tpm, &n);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the host TPM's rollback counter: %s",
                                               host_tpm_last_error(s->tpm));
                s->committed_counter = n;
                r = manifest_write(s);
                if (r < 0)
                        return r;
                return counter_increment(s);
        }
        r = host_tpm_counter_read(s->tpm, &n);
        if (r == -ENOENT) {
                log_msg(LOG_ERR, "The host TPM has no rollback counter although %s/manifest exists: the TPM was "
                        "cleared or replaced. Refusing to start.", stateroot_path(s->root));
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read the host TPM's rollback counter: %s",
                                       host_tpm_last_error(s->tpm));
        if (s->manifest.counter == n) {
                s->committed_counter = n;
                return 0;
        }
        if (s->manifest.counter == n + 1) {
                /* The commit that ends a resumed vTPM's suspend is one of these: its volatile state is gone
                 * with the killed worker, and a device not yet Connected then starts afresh. */
                log_msg(LOG_WARNING, "Completing an interrupted manifest commit (counter %" PRIu64 "): vtpmd was "
                        "killed in the middle of it, so vTPMs whose workers died with it and saved nothing are "
                        "starting as after a power loss (PCRs and sessions reset, NV kept)", n + 1);
                s->committed_counter = n;
                return counter_increment(s);
        }
        if (s->manifest.counter < n)
                log_msg(LOG_ERR, "%s/manifest is committed to counter %" PRIu64 " but the host TPM's counter is "
                        "%" PRIu64 ": the state root was rolled back to an older copy. Refusing to start. To "
                        "recover, put back the newest copy of %s (the one vtpmd last ran with): an older copy is "
                        "refused on this host, as it could roll vTPMs back; vTPMs exported with vtpmd-ctl export "
                        "can be imported into a new, empty state directory instead (docs/state.md)",
                        stateroot_path(s->root), s->manifest.counter, n, stateroot_path(s->root));
        else
                log_msg(LOG_ERR, "%s/manifest is committed to counter %" PRIu64 " but the host TPM's counter is "
                        "%" PRIu64 ": the state root was made with another TPM. Refusing to start. To recover, "
                        "start vtpmd with the host TPM and NV index it was made with (HostTPM=, NVIndex= in "
                        "vtpmd.conf(5)), or import its vTPMs' exports into a new, empty state directory",
                        stateroot_path(s->root), s->manifest.counter, n);
        return -ESTALE;
}

/* ---- pool ---- */

static void pool_log_not_member(VtpmState *s) {
        log_msg(LOG_NOTICE, "This host (fingerprint %s) is not a member of the pool at %s yet: its vTPMs are "
                "refused until vtpmd-ctl pool init (the first host) or pool join here and pool admit on a member",
                s->pool_fp, pool_path(s->pool));
}

/* The pool's key through this host's TPM, if it is a member: then data keys are wrapped under it. */
static int pool_try_unlock(VtpmState *s) {
        int r = pool_unlock(s->pool, s->tpm, s->pool_point, s->pool_key);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Cannot unlock the pool key of %s for this host (fingerprint %s): %s", pool_path(s->pool),
                                       s->pool_fp, r == -EKEYREJECTED ? "it was not wrapped to this host's TPM" : strerror(-r));
        s->pool_member = true;
        s->wrap_key = s->pool_key;
        return 1;
}

static int pool_setup(VtpmState *s, const char *dir) {
        int r;

        if (!s->tpm)
                return log_error_errno(-EINVAL, "A pool (--pool-dir) needs the host TPM (KeySource=tpm): the pool key "
                                       "reaches a host only wrapped to its TPM");
        r = pool_open(dir, &s->pool);
        if (r < 0)
                return log_error_errno(r, "Cannot open the pool directory %s: %s", dir, strerror(-r));
        r = host_tpm_transfer_public(s->tpm, s->pool_point);
        if (r < 0)
                return log_error_errno(r, "Cannot make this host's TPM transfer key: %s", host_tpm_last_error(s->tpm));
        r = pool_key_fingerprint_hex(s->pool_point, s->pool_fp);
        if (r < 0)
                return log_error_errno(r, "Cannot compute this host's fingerprint: %s", strerror(-r));
        r = stateroot_open_shared(pool_vtpm_root(s->pool), &s->vroot);
        if (r < 0)
                return log_error_errno(r, "Cannot open %s: %s", pool_vtpm_root(s->pool), strerror(-r));
        s->wrap_key = NULL;
        r = pool_try_unlock(s);
        if (r < 0)
                return r;
        if (r == 0)
                pool_log_not_member(s);
        else
                log_msg(LOG_INFO, "Member of the pool at %s (this host's fingerprint %s)", pool_path(s->pool), s->pool_fp);
        return 0;
}

Pool *vtpm_state_pool(VtpmState *s, const char **ret_fp, bool *ret_member) {
        if (ret_fp)
                *ret_fp = s->pool ? s->pool_fp : NULL;
        if (ret_member)
                *ret_member = s->pool_member;
        return s->pool;
}

int vtpm_state_storage_probe(VtpmState *s, const char *uuid) {
        _cleanup_(statedir_closep) StateDir *d = NULL;
        StateHeader h;
        int r;

        /* Opened afresh: what a new worker would do. Reading the header of the
         * permanent state proves the storage answers reads again. */
        r = statedir_open_shared(s->vroot, uuid, &d);
        if (r < 0)
                return r;
        r = statedir_peek(d, STATE_KIND_PERMANENT, &h);
        return r == -ENOENT ? 0 : r;
}

int vtpm_state_top_up_spares(VtpmState *s, const char *uuid, uint32_t uid, uint32_t gid) {
        _cleanup_(statedir_closep) StateDir *d = NULL;
        int r;

        r = statedir_open_shared(s->vroot, uuid, &d);
        if (r < 0)
                return r;
        return statedir_top_up_spares(d, uid, gid);
}

int vtpm_state_pool_init(VtpmState *s) {
        int r;

        if (!s->pool)
                return -ENOTCONN;
        if (s->pool_member)
                return -EEXIST;
        r = pool_init(s->pool, s->pool_point, s->pool_key);
        if (r < 0)
                return r;
        s->pool_member = true;
        s->wrap_key = s->pool_key;
        log_msg(LOG_NOTICE, "Created the pool at %s with this host (fingerprint %s) as its first member",
                pool_path(s->pool), s->pool_fp);
        return 0;
}

int vtpm_state_pool_join(VtpmState *s) {
        int r;

        if (!s->pool)
                return -ENOTCONN;
        if (s->pool_member)
                return -EEXIST;
        r = pool_try_unlock(s);
        if (r != 0)
                return r < 0 ? r : -EEXIST; /* admitted meanwhile */
        r = pool_request_join(s->pool, s->pool_point);
        if (r < 0)
                return r;
        log_msg(LOG_NOTICE, "Asked to join the pool at %s (this host's fingerprint %s)", pool_path(s->pool),
                s->pool_fp);
        return 0;
}

int vtpm_state_pool_refresh(VtpmState *s) {
        if (!s->pool)
                return -ENOTCONN;
        if (s->pool_member)
                return 1;
        return pool_try_unlock(s);
}

int vtpm_state_pool_admit(VtpmState *s, const char *fp) {
        int r;

        if (!s->pool)
                return -ENOTCONN;
        if (!s->pool_member)
                return -ENOKEY;
        r = pool_admit(s->pool, s->pool_key, fp);
        if (r >= 0)
                log_msg(LOG_NOTICE, "Admitted host %s to the pool at %s", fp, pool_path(s->pool));
        return r;
}

/* Whether fp is the pool's only member: its key would leave with it. */
static int last_member(VtpmState *s, const char *fp) {
        _cleanup_free_ PoolHost *hosts = NULL;
        size_t n = 0, members = 0;
        bool found = false;
        int r;

        r = pool_list(s->pool, &hosts, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (hosts[i].member) {
                        members++;
                        found = found || streq(hosts[i].fp, fp);
                }
        return found && members == 1;
}

int vtpm_state_pool_remove(VtpmState *s, const char *fp) {
        bool self;
        int r;

        if (!s->pool)
                return -ENOTCONN;
        self = streq(fp, s->pool_fp);
        r = last_member(s, fp);
        if (r < 0)
                return r;
        if (r > 0)
                return -ENOTEMPTY;
        r = pool_remove(s->pool, fp);
        if (r < 0)
                return r;
        if (self) {
                /* Forgotten here as well, not only on the storage: from now on this host refuses the pool's vTPMs. */
                explicit_wipe(s->pool_key, sizeof(s->pool_key));
                s->pool_member = false;
                log_msg(LOG_NOTICE, "This host (%s) left the pool at %s; its vTPMs are refused here until it joins "
                        "again", fp, pool_path(s->pool));
        } else
                log_msg(LOG_NOTICE, "Removed host %s from the pool at %s", fp, pool_path(s->pool));
        return 0;
}

int vtpm_state_open(const StateConfig *c, VtpmState **ret) {
        _cleanup_free_ char **uuids = NULL;
        VtpmState *s;
        bool have_vtpms, found = false;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_error_errno(-ENOMEM, "Out of memory");
        s->counter_interval_ns = c->counter_interval_ns;

        r = stateroot_open(c->state_dir, &s->root);
        if (r < 0) {
                log_msg(LOG_ERR, "Cannot open the state directory %s: %s", c->state_dir,
                        r == -EBUSY ? "another vtpmd is using it" :
                        r == -EROFS ? "read-only file system (vtpmd.service writes only the state root it was built "
                                      "with: add a drop-in with ReadWritePaths= for this one, see FILES in vtpmd(8))" :
                        strerror(-r));
                goto fail;
        }
        r = stateroot_list(s->root, &uuids);
        if (r < 0) {
                log_error_errno(r, "Failed to list %s", c->state_dir);
                goto fail;
        }
        have_vtpms = uuids && uuids[0];
        for (size_t i = 0; uuids && uuids[i]; i++)
                free(uuids[i]);

        if (c->key_source == KEY_SOURCE_FILE) {
                log_msg(LOG_WARNING, "Key-file mode: the master key is %s, not sealed to a TPM. Use this only for "
                        "development or on hosts without a TPM.", c->key_file);
                r = key_from_file(c->key_file, s->master_key);
        } else
                r = key_from_tpm(s, c, have_vtpms);
        if (r < 0)
                goto fail;

        r = manifest_load(s, have_vtpms, &found);
        if (r < 0)
                goto fail;
        r = manifest_check_counter(s, found);
        if (r < 0)
                goto fail;
        if (!found && !s->tpm) {
                r = manifest_write(s);
                if (r < 0)
                        goto fail;
        }
        s->vroot = s->root;
        s->wrap_key = s->master_key;
        if (c->pool_dir) {
                r = pool_setup(s, c->pool_dir);
                if (r < 0)
                        goto fail;
        }
        if (s->tpm)
                s->host_tpm_commands = host_tpm_commands(s->tpm);
        *ret = s;
        return 0;
fail:
        vtpm_state_close(s);
        return r < 0 ? r : -EIO;
}

VtpmState *vtpm_state_close(VtpmState *s) {
        if (!s)
                return NULL;
        s->commit_source = sd_event_source_disable_unref(s->commit_source);
        s->event = sd_event_unref(s->event);
        if (s->root && (s->dirty || (s->tpm && s->manifest.counter == s->committed_counter + 1)))
                (void) vtpm_state_commit(s, true);
        state_manifest_done(&s->manifest);
        while (s->write_errors) {
                WriteError *e = s->write_errors;
                s->write_errors = e->next;
                free(e);
        }
        host_tpm_close(s->tpm);
        if (s->vroot != s->root)
                stateroot_close(s->vroot);
        stateroot_close(s->root);
        pool_close(s->pool);
        crypto_wipe(s->master_key, sizeof(s->master_key));
        crypto_wipe(s->pool_key, sizeof(s->pool_key));
        free(s);
        return NULL;
}

StateRoot *vtpm_state_root(VtpmState *s) {
        return s->vroot;
}

const uint8_t *vtpm_state_master_key(VtpmState *s) {
        return s->wrap_key;
}

StateRoot *vtpm_state_local_root(VtpmState *s) {
        return s->root;
}

const uint8_t *vtpm_state_local_key(VtpmState *s) {
        return s->master_key;
}

HostTpm *vtpm_state_host_tpm(VtpmState *s) {
        return s->tpm;
}

unsigned vtpm_state_host_tpm_commands(VtpmState *s) {
        return s->host_tpm_commands;
}

int vtpm_state_attach_event(VtpmState *s, sd_event *event) {
        s->event = sd_event_ref(event);
        return 0;
}

static int commit_cb(sd_event_source *source, uint64_t usec, void *userdata) {
        VtpmState *s = userdata;

        (void) vtpm_state_commit(s, false);
        /* Still owing a rate-limited counter increment: look again later. */
        if (s->dirty || (s->tpm && s->manifest.counter == s->committed_counter + 1)) {
                (void) sd_event_source_set_time_relative(source, COMMIT_DELAY_USEC);
                (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        }
        return 0;
}

void vtpm_state_changed(VtpmState *s) {
        int enabled = SD_EVENT_OFF;

        if (!s->commit_source) {
                if (!s->event || sd_event_add_time_relative(s->event, &s->commit_source, CLOCK_MONOTONIC,
                                                            COMMIT_DELAY_USEC, 0, commit_cb, s) < 0)
                        (void) vtpm_state_commit(s, false);
                return;
        }
        (void) sd_event_source_get_enabled(s->commit_source, &enabled);
        if (enabled == SD_EVENT_OFF) {
                (void) sd_event_source_set_time_relative(s->commit_source, COMMIT_DELAY_USEC);
                (void) sd_event_source_set_enabled(s->commit_source, SD_EVENT_ONESHOT);
        }
}

static int commit(VtpmState *s, bool force);

int vtpm_state_commit(VtpmState *s, bool force) {
        int r = commit(s, force);

        s->commit_error = r < 0 ? r : 0;
        return r;
}

static int commit(VtpmState *s, bool force) {
        int r;

        if (s->dirty) {
                r = manifest_write(s);
                if (r < 0)
                        return r;
        }
        if (s->tpm && s->manifest.counter == s->committed_counter + 1 &&
            (force || now_ns() - s->last_increment_ns >= s->counter_interval_ns)) {
                r = counter_increment(s);
                if (r < 0)
                        return r;
                if (s->dirty)
                        /* Someone else moved the counter: re-anchor at its value. */
                        return manifest_write_at(s, s->committed_counter);
        }
        return 0;
}

/* ---- one vTPM ---- */

static StateManifestEntry *entry_get(VtpmState *s, const char *uuid, bool add) {
        uint8_t u[STATEFILE_UUID_SIZE];
        StateManifestEntry *e, n = {};

        if (statefile_uuid_from_string(uuid, u) < 0)
                return NULL;
        e = state_manifest_find(&s->manifest, u);
        if (e || !add)
                return e;
        memcpy(n.uuid, u, sizeof(u));
        if (state_manifest_set(&s->manifest, &n) < 0)
                return NULL;
        s->dirty = true;
        return state_manifest_find(&s->manifest, u);
}

void vtpm_state_record(VtpmState *s, const char *uuid, StateKind kind, uint64_t seq) {
        StateManifestEntry *e = entry_get(s, uuid, true);

        if (!e)
                return;
        if (kind == STATE_KIND_PERMANENT && seq > e->perm_seq) {
                e->perm_seq = seq;
                s->dirty = true;
        } else if (kind == STATE_KIND_VOLATILE) {
                e->vol_seq = seq;
                s->dirty = true;
        }
}

bool vtpm_state_volatile_consumed(VtpmState *s, const char *uuid) {
        StateManifestEntry *e = entry_get(s, uuid, false);

        if (!e || (!e->vol_seq && !e->suspend.usec))
                return false;
        e->vol_seq = 0;
        e->suspend = (StateSuspend){ 0 };
        s->dirty = true;
        return true;
}

void vtpm_state_suspend(VtpmState *s, const char *uuid, const StateSuspend *su) {
        StateManifestEntry *e = entry_get(s, uuid, true);

        if (!e)
                return;
        e->suspend = *su;
        s->dirty = true;
}

bool vtpm_state_suspended(VtpmState *s, const char *uuid, StateSuspend *ret) {
        StateManifestEntry *e = entry_get(s, uuid, false);

        if (!e || !e->suspend.usec || !e->vol_seq)
                return false;
        if (ret)
                *ret = e->suspend;
        return true;
}

uint64_t vtpm_state_perm_seq(VtpmState *s, const char *uuid) {
        StateManifestEntry *e = entry_get(s, uuid, false);

        return e ? e->perm_seq : 0;
}

static WriteError **write_error_find(VtpmState *s, const char *uuid) {
        WriteError **p = &s->write_errors;

        while (*p && !streq((*p)->uuid, uuid))
                p = &(*p)->next;
        return p;
}

void vtpm_state_write_result(VtpmState *s, const char *uuid, StateKind kind, int error) {
        WriteError **p = write_error_find(s, uuid), *e = *p;

        if (!e && error < 0 && strlen(uuid) < sizeof(e->uuid)) {
                e = calloc(1, sizeof(*e));
                if (!e)
                        return;
                strcpy(e->uuid, uuid);
                *p = e;
        }
        if (!e)
                return;
        if (kind == STATE_KIND_PERMANENT)
                e->perm_error = error;
        else if (kind == STATE_KIND_VOLATILE)
                e->vol_error = error;
        if (!e->perm_error && !e->vol_error) {
                *p = e->next;
                free(e);
        }
}

int vtpm_state_write_error(VtpmState *s, const char *uuid, StateKind *ret_kind) {
        WriteError *e = *write_error_find(s, uuid);

        if (!e)
                return 0;
        *ret_kind = e->perm_error ? STATE_KIND_PERMANENT : STATE_KIND_VOLATILE;
        return e->perm_error ? e->perm_error : e->vol_error;
}

unsigned vtpm_state_write_errors(VtpmState *s, int *ret_error, int *ret_commit_error) {
        unsigned n = 0;

        *ret_error = 0;
        for (WriteError *e = s->write_errors; e; e = e->next, n++)
                if (!*ret_error)
                        *ret_error = e->perm_error ? e->perm_error : e->vol_error;
        *ret_commit_error = s->commit_error;
        return n;
}

void vtpm_state_forget(VtpmState *s, const char *uuid) {
        uint8_t u[STATEFILE_UUID_SIZE];
        WriteError **p = write_error_find(s, uuid), *e = *p;

        if (e) {
                *p = e->next;
                free(e);
        }

        if (statefile_uuid_from_string(uuid, u) >= 0 && state_manifest_find(&s->manifest, u)) {
                (void) state_manifest_remove(&s->manifest, u);
                s->dirty = true;
        }
}

/* ---- live migration between pool hosts (docs/pool.md) ---- */

static bool handover_possible(VtpmState *s) {
        return s->pool && s->pool_member && s->wrap_key;
}

static void host_binary(VtpmState *s, uint8_t out[STATE_HANDOVER_HOST_SIZE]) {
        for (size_t i = 0; i < STATE_HANDOVER_HOST_SIZE; i++)
                out[i] = (uint8_t) (hexval(s->pool_fp[2 * i]) << 4 | hexval(s->pool_fp[2 * i + 1]));
}

static uint64_t realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000;
}

void state_handover_host_hex(const StateHandover *h, char ret[POOL_KEY_FINGERPRINT_HEX_SIZE]) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < STATE_HANDOVER_HOST_SIZE; i++) {
                ret[2 * i] = digits[h->host[i] >> 4];
                ret[2 * i + 1] = digits[h->host[i] & 0xf];
        }
        ret[2 * STATE_HANDOVER_HOST_SIZE] = '\0';
}

int vtpm_state_handover_request(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE],
                                uint32_t domid, uint32_t devid) {
        StateHandover h = { .su = { .usec = realtime_usec(), .domid = domid, .devid = devid } };

        if (!handover_possible(s))
                return -ENOKEY;
        host_binary(s, h.host);
        memcpy(h.su.handle, handle, sizeof(h.su.handle));
        return pool_handover_write(s->pool, uuid, STATE_KIND_HANDOVER_REQUEST, s->pool_key, &h);
}

void vtpm_state_handover_cancel(VtpmState *s, const char *uuid) {
        if (s->pool)
                (void) pool_handover_remove(s->pool, uuid, STATE_KIND_HANDOVER_REQUEST);
}

int vtpm_state_handover_take(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE],
                             StateHandover *ret) {
        StateManifestEntry *e;
        StateHandover g;
        int r;

        if (!handover_possible(s))
                return 0;
        r = pool_handover_read(s->pool, uuid, STATE_KIND_HANDOVER_GRANT, s->pool_key, &g);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (memcmp(g.su.handle, handle, sizeof(g.su.handle)) != 0)
                return 0; /* another domain's (a stale grant): not this resume's */
        e = entry_get(s, uuid, true);
        if (!e)
                return -ENOMEM;
        /* What the holder recorded is what this host must not go below from now on. */
        if (g.perm_seq > e->perm_seq)
                e->perm_seq = g.perm_seq;
        e->vol_seq = g.vol_seq;
        e->suspend = g.vol_seq ? g.su : (StateSuspend){ 0 };
        s->dirty = true;
        /* Recorded here before the grant goes: a crash in between leaves one of them. */
        r = vtpm_state_commit(s, false);
        if (r < 0)
                return r;
        (void) pool_handover_remove(s->pool, uuid, STATE_KIND_HANDOVER_GRANT);
        (void) pool_handover_remove(s->pool, uuid, STATE_KIND_HANDOVER_REQUEST);
        *ret = g;
        return 1;
}

int vtpm_state_handover_requests(VtpmState *s, char ***ret) {
        if (!handover_possible(s))
                return -ENOKEY;
        return pool_handover_list(s->pool, STATE_KIND_HANDOVER_REQUEST, ret);
}

int vtpm_state_handover_read_request(VtpmState *s, const char *uuid, StateHandover *ret, bool *ret_own) {
        uint8_t own[STATE_HANDOVER_HOST_SIZE];
        int r;

        if (!handover_possible(s))
                return -ENOKEY;
        r = pool_handover_read(s->pool, uuid, STATE_KIND_HANDOVER_REQUEST, s->pool_key, ret);
        if (r < 0)
                return r;
        host_binary(s, own);
        *ret_own = memcmp(own, ret->host, sizeof(own)) == 0;
        return 0;
}

int vtpm_state_handover_grant(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE]) {
        StateManifestEntry *e = entry_get(s, uuid, false);
        StateHandover g;
        int r;

        if (!handover_possible(s) || !e || !e->suspend.usec || !e->vol_seq ||
            memcmp(e->suspend.handle, handle, sizeof(e->suspend.handle)) != 0)
                return 0;
        g = (StateHandover){ .su = e->suspend, .vol_seq = e->vol_seq, .perm_seq = e->perm_seq };
        host_binary(s, g.host);
        r = pool_handover_write(s->pool, uuid, STATE_KIND_HANDOVER_GRANT, s->pool_key, &g);
        if (r < 0)
                return r;
        (void) pool_handover_remove(s->pool, uuid, STATE_KIND_HANDOVER_REQUEST);
        /* Not suspended here any more: the saved state is the other host's to resume. */
        e->vol_seq = 0;
        e->suspend = (StateSuspend){ 0 };
        s->dirty = true;
        (void) vtpm_state_commit(s, false);
        return 1;
}

int vtpm_state_handover_begin(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE]) {
        for (unsigned i = 0; i < s->n_handing_over; i++)
                if (streq(s->handing_over[i].uuid, uuid))
                        return 0;
        if (s->n_handing_over >= HANDOVERS_MAX)
                return -EBUSY;
        snprintf(s->handing_over[s->n_handing_over].uuid, sizeof(s->handing_over[0].uuid), "%s", uuid);
        memcpy(s->handing_over[s->n_handing_over].handle, handle, STATEFILE_UUID_SIZE);
        s->n_handing_over++;
        return 1;
}

int vtpm_state_handover_released(VtpmState *s, const char *uuid) {
        uint8_t handle[STATEFILE_UUID_SIZE];

        for (unsigned i = 0; i < s->n_handing_over; i++) {
                if (!streq(s->handing_over[i].uuid, uuid))
                        continue;
                memcpy(handle, s->handing_over[i].handle, sizeof(handle));
                s->handing_over[i] = s->handing_over[--s->n_handing_over];
                return vtpm_state_handover_grant(s, uuid, handle);
        }
        return 0;
}

static int vtpm_create(VtpmState *s, const char *uuid, TpmFamily family, StateDir **ret_dir,
                       uint8_t data_key[CRYPTO_KEY_SIZE]) {
        StateDir *dir = NULL;
        uint8_t meta[STATE_META_SIZE];
        StateMeta m = { .family = family };
        struct timespec ts;
        int r;

        clock_gettime(CLOCK_REALTIME, &ts);
        m.created_usec = (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000;
        r = statedir_create(s->vroot, uuid, &dir);
        if (r < 0)
                return r;
        r = crypto_random(data_key, CRYPTO_KEY_SIZE);
        if (r >= 0)
                r = statedir_write(dir, STATE_KIND_DATA_KEY, s->wrap_key, 1, data_key, CRYPTO_KEY_SIZE);
        if (r >= 0) {
                state_meta_encode(&m, meta);
                r = statedir_write(dir, STATE_KIND_META, data_key, 1, meta, sizeof(meta));
        }
        if (r < 0) {
                (void) statedir_destroy(dir);
                statedir_close(dir);
                crypto_wipe(data_key, CRYPTO_KEY_SIZE);
                return r;
        }
        *ret_dir = dir;
        return 0;
}

int vtpm_state_prepare(VtpmState *s, const char *uuid, bool create, TpmFamily family, uint32_t domid,
                       uint32_t devid, VtpmKeys *ret) {
        StateDir *dir = NULL;
        _cleanup_free_ uint8_t *key = NULL, *meta = NULL;
        size_t key_len = 0, meta_len = 0;
        uint64_t seq;
        StateMeta m;
        StateManifestEntry *e;
        VtpmKeys k = { .dir_fd = -1 };
        int r;

        if (!s->wrap_key && s->pool && pool_try_unlock(s) < 0)
                return -ENOKEY;
        if (!s->wrap_key)
                return -ENOKEY; /* a pool this host is not a member of (yet: admitted since, it unlocks above) */
        r = statedir_open(s->vroot, uuid, &dir);
        if (r == -ENOENT && create) {
                r = vtpm_create(s, uuid, family, &dir, k.data_key);
                if (r < 0)
                        return log_dev_errno(LOG_ERR, r, domid, devid, uuid, "Failed to create vTPM state in %s/%s",
                                             stateroot_path(s->vroot), uuid);
                k.created = true;
                k.family = family;
                log_dev(LOG_NOTICE, domid, devid, uuid, "Created vTPM (TPM %s) in %s/%s",
                        tpm_family_to_string(family), stateroot_path(s->vroot), uuid);
        } else if (r < 0) {
                if (r == -EBUSY) /* the caller retries: not a failure yet */
                        return r;
                return log_dev_errno(LOG_ERR, r, domid, devid, uuid, "Cannot open vTPM state %s/%s",
                                     stateroot_path(s->vroot), uuid);
        } else {
                r = statedir_read(dir, STATE_KIND_DATA_KEY, s->wrap_key, &key, &key_len, &seq);
                if (r >= 0 && key_len != CRYPTO_KEY_SIZE)
                        r = -EBADMSG;
                if (r < 0) {
                        log_dev(LOG_ERR, domid, devid, uuid, "State file %s/key %s; not starting this vTPM, the "
                                "file is kept for inspection", uuid, statestore_strerror(r));
                        goto fail;
                }
                memcpy(k.data_key, key, CRYPTO_KEY_SIZE);
                crypto_wipe(key, key_len);
                r = statedir_read(dir, STATE_KIND_META, k.data_key, &meta, &meta_len, &seq);
                if (r >= 0)
                        r = state_meta_parse(meta, meta_len, &m);
                if (r < 0) {
                        log_dev(LOG_ERR, domid, devid, uuid, "State file %s/meta %s; not starting this vTPM, the "
                                "file is kept for inspection", uuid, statestore_strerror(r));
                        goto fail;
                }
                k.family = m.family;
        }

        e = entry_get(s, uuid, true);
        k.min_perm_seq = e ? e->perm_seq : 0;
        k.vol_seq = e ? e->vol_seq : 0;
        if (e && e->vol_seq)
                k.suspend = e->suspend;
        k.dir_fd = fcntl(statedir_fd(dir), F_DUPFD_CLOEXEC, 3);
        if (k.dir_fd < 0) {
                r = log_dev_errno(LOG_ERR, negative_errno(), domid, devid, uuid, "Cannot duplicate the fd of %s/%s",
                                  stateroot_path(s->vroot), uuid);
                goto fail;
        }
        /* The worker takes the directory's lock itself. */
        statedir_close(dir);
        *ret = k;
        return 0;
fail:
        crypto_wipe(k.data_key, sizeof(k.data_key));
        statedir_close(dir);
        return r;
}

void vtpm_keys_done(VtpmKeys *k) {
        crypto_wipe(k->data_key, sizeof(k->data_key));
        k->dir_fd = safe_close(k->dir_fd);
}
