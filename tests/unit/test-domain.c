/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Domain information in the simulated hypervisor (lib/domain.h): what the
 * toolstack writes is what the supervisor reads, a destroyed domain is gone,
 * and a malformed file is refused rather than read as "running".
 */
#include <stdio.h>
#include <string.h>

#include "domain.h"
#include "platform.h"
#include "simdir.h"
#include "statefile.h"
#include "test.h"
#include "util.h"

#define DOMID 7u

static void domainctlp(DomainCtl **d) {
        domainctl_free(*d);
}
#define _cleanup_domainctl_ __attribute__((cleanup(domainctlp)))

static void write_raw(const SimDir *d, const char *text) {
        char path[128];
        snprintf(path, sizeof(path), "%s/hv/domain-%u", d->path, DOMID);
        FILE *f = fopen(path, "w");
        REQUIRE(f, "cannot write %s", path);
        fputs(text, f);
        fclose(f);
}

TEST(set_then_info_round_trips_every_reason) {
        _cleanup_simdir_ SimDir d = { 0 };
        ASSERT_OK(simdir_make(&d));
        _cleanup_platform_ Platform *p = plat(&d, 0);
        _cleanup_domainctl_ DomainCtl *dc = NULL;
        ASSERT_OK(domainctl_open(p, &dc));
        DomainInfo in = { 0 }, out;
        ASSERT_OK(statefile_uuid_from_string("0b7e2d1c-5a1f-4c3e-9d2a-7f6e5d4c3b2a", in.handle));

        ASSERT_ERR(domainctl_info(dc, DOMID, &out), -ENOENT);
        ASSERT_OK(domain_sim_set(p, DOMID, &in));
        ASSERT_OK(domainctl_info(dc, DOMID, &out));
        ASSERT_FALSE(out.shutdown);
        ASSERT_MEMEQ(out.handle, in.handle, DOMAIN_HANDLE_SIZE);
        ASSERT_FALSE(domain_info_suspended(&out));
        for (int r = DOMAIN_SHUTDOWN_POWEROFF; r <= DOMAIN_SHUTDOWN_SOFT_RESET; r++) {
                in.shutdown = true;
                in.reason = (DomainShutdown) r;
                ASSERT_OK(domain_sim_set(p, DOMID, &in));
                ASSERT_OK(domainctl_info(dc, DOMID, &out));
                ASSERT_TRUE(out.shutdown);
                ASSERT_EQ(out.reason, r);
                ASSERT_EQ(domain_info_suspended(&out), r == DOMAIN_SHUTDOWN_SUSPEND);
        }
        /* Another domain is not this one. */
        ASSERT_ERR(domainctl_info(dc, DOMID + 1, &out), -ENOENT);
}

TEST(destroyed_domain_reads_as_absent) {
        _cleanup_simdir_ SimDir d = { 0 };
        ASSERT_OK(simdir_make(&d));
        _cleanup_platform_ Platform *p = plat(&d, 0);
        _cleanup_domainctl_ DomainCtl *dc = NULL;
        DomainInfo in = { .shutdown = true, .reason = DOMAIN_SHUTDOWN_SUSPEND }, out;
        ASSERT_OK(domainctl_open(p, &dc));
        ASSERT_OK(domain_sim_set(p, DOMID, &in));
        ASSERT_OK(platform_sim_destroy_domain(p, DOMID));
        ASSERT_ERR(domainctl_info(dc, DOMID, &out), -ENOENT);
        /* Removing twice is fine, like destroying a domain that is gone. */
        ASSERT_OK(domain_sim_remove(p, DOMID));
}

TEST(malformed_files_are_refused) {
        static const char *const bad[] = {
                "",
                "uuid=0b7e2d1c-5a1f-4c3e-9d2a-7f6e5d4c3b2a\n",
                "shutdown=none\n",
                "uuid=nope\nshutdown=none\n",
                "uuid=0b7e2d1c-5a1f-4c3e-9d2a-7f6e5d4c3b2a\nshutdown=asleep\n",
                "uuid=0b7e2d1c-5a1f-4c3e-9d2a-7f6e5d4c3b2a\nshutdown=none\nextra=1\n",
                "uuid=0b7e2d1c-5a1f-4c3e-9d2a-7f6e5d4c3b2a\nshutdown\n",
        };
        _cleanup_simdir_ SimDir d = { 0 };
        ASSERT_OK(simdir_make(&d));
        _cleanup_platform_ Platform *p = plat(&d, 0);
        _cleanup_domainctl_ DomainCtl *dc = NULL;
        DomainInfo out;
        ASSERT_OK(domainctl_open(p, &dc));
        ASSERT_OK(domain_sim_set(p, DOMID, &(DomainInfo){ 0 })); /* creates DIR/hv */
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                write_raw(&d, bad[i]);
                ASSERT_ERR(domainctl_info(dc, DOMID, &out), -EBADMSG);
        }
}

TEST(shutdown_names) {
        DomainShutdown r;
        ASSERT_STREQ(domain_shutdown_to_string(DOMAIN_SHUTDOWN_SUSPEND), "suspend");
        ASSERT_STREQ(domain_shutdown_to_string((DomainShutdown) 99), "unknown");
        ASSERT_OK(domain_shutdown_from_string("crash", &r));
        ASSERT_EQ(r, DOMAIN_SHUTDOWN_CRASH);
        ASSERT_ERR(domain_shutdown_from_string("none", &r), -EINVAL);
}

TEST(sim_set_refuses_xen_and_reserved_domids) {
        _cleanup_simdir_ SimDir d = { 0 };
        ASSERT_OK(simdir_make(&d));
        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_ERR(domain_sim_set(p, 0x7FF0u, &(DomainInfo){ 0 }), -EINVAL);
        ASSERT_ERR(domain_sim_set(NULL, DOMID, &(DomainInfo){ 0 }), -EOPNOTSUPP);
}
