/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl pool status|init|join|admit HOST|remove HOST|leave: the hosts that share vTPM state. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static void print_status(const CliReply *reply) {
        static const CliRow rows[] = {
                { "pool_dir", "Pool directory" }, { "pool_id", "Pool" }, { "host", "This host" },
                { "member", "Member" },
        };
        json_object *hosts;

        cli_print_rows(reply->result, rows, ELEMENTSOF(rows), 16, false);
        if (!json_object_object_get_ex(reply->result, "hosts", &hosts))
                return;
        printf("\n%-64s  %s\n", "HOST", "STATE");
        for (size_t i = 0; i < json_object_array_length(hosts); i++) {
                json_object *h = json_object_array_get_idx(hosts, i), *self;
                bool me = json_object_object_get_ex(h, "self", &self) && json_object_get_boolean(self);
                printf("%-64s  %s%s\n", cli_str(h, "host"), cli_str(h, "state"), me ? " (this host)" : "");
        }
}

static void print_init(const CliReply *reply) {
        printf("Created the pool; this host %s is its first member.\n", cli_str(reply->result, "host"));
}

static void print_join(const CliReply *reply) {
        const char *fp = cli_str(reply->result, "host");
        printf("Asked to join as host %s.\nOn a member, check that fingerprint and run: vtpmd-ctl pool admit %s\n",
               fp, fp);
}

static int prepare_host(CliCall *call, const char *arg) {
        if (ctl_parse_host(arg, call->req.host) < 0)
                return cli_fail("not a host fingerprint: \"%.80s\" (64 hex digits, as vtpmd-ctl pool status prints)",
                                arg);
        call->req.has_host = true;
        return 0;
}

const Command cmd_pool_status = {
        .name = "pool status",
        .usage = "",
        .summary = "show the pool: its directory, this host's fingerprint, members and hosts asking to join",
        .op = CTL_OP_POOL_STATUS,
        .print = print_status,
};

const Command cmd_pool_init = {
        .name = "pool init",
        .usage = "",
        .summary = "create the pool in PoolDirectory= with this host as its first member",
        .op = CTL_OP_POOL_INIT,
        .print = print_init,
};

const Command cmd_pool_join = {
        .name = "pool join",
        .usage = "",
        .summary = "ask to join the pool; a member then admits this host's fingerprint",
        .op = CTL_OP_POOL_JOIN,
        .print = print_join,
};

const Command cmd_pool_admit = {
        .name = "pool admit",
        .usage = "HOST",
        .summary = "admit the host with this fingerprint: the pool key, wrapped to that host's TPM",
        .op = CTL_OP_POOL_ADMIT,
        .n_positional = 1,
        .prepare = prepare_host,
};

const Command cmd_pool_leave = {
        .name = "pool leave",
        .usage = "",
        .summary = "this host leaves the pool (no vTPM may run here): it forgets the pool key",
        .op = CTL_OP_POOL_LEAVE,
};

const Command cmd_pool_remove = {
        .name = "pool remove",
        .usage = "HOST",
        .summary = "remove a member (or a join request): it can no longer unlock the pool key",
        .op = CTL_OP_POOL_REMOVE,
        .n_positional = 1,
        .prepare = prepare_host,
};
