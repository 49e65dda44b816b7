/* SPDX-License-Identifier: BSD-3-Clause */
/* Domain information on real Xen: libxenctrl's xc_domain_getinfo (domain.h). */
#include <errno.h>
#include <string.h>
#include <xenctrl.h>

#include "domain.h"
#include "util.h"
#include "xenops-internal.h"

int domain_xen_open(void **ret) {
        xc_interface *xch = xc_interface_open(vtpm_xen_null_logger(), vtpm_xen_null_logger(), 0);

        if (!xch)
                return negative_errno();
        *ret = xch;
        return 0;
}

void domain_xen_close(void *h) {
        (void) xc_interface_close(h);
}

int domain_xen_info(void *h, uint32_t domid, DomainInfo *ret) {
        xc_dominfo_t info;
        int n;

        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -ENOENT;
        /* It returns the first domain at or after domid: check it is this one. */
        n = xc_domain_getinfo(h, domid, 1, &info);
        if (n < 0)
                return errno == ESRCH ? -ENOENT : negative_errno();
        if (n == 0 || info.domid != domid)
                return -ENOENT;
        *ret = (DomainInfo){
                .shutdown = info.shutdown,
                .reason = (DomainShutdown) info.shutdown_reason,
                .dying = info.dying,
        };
        memcpy(ret->handle, info.handle, DOMAIN_HANDLE_SIZE);
        return 0;
}
