/* SPDX-License-Identifier: BSD-3-Clause */
/* A burst-per-interval rate limit for anything a guest can trigger. Pure: the caller passes the time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_ns;
        unsigned burst;
        uint64_t begin_ns;
        unsigned count;
        unsigned suppressed; /* events dropped in the previous window(s), reported once */
} RateLimit;

#define RATELIMIT_INIT(interval, n) ((RateLimit){ .interval_ns = (interval), .burst = (n) })

/* True if the event may be logged. When a new window opens after drops,
 * *ret_suppressed (if non-NULL) receives how many were dropped. */
static inline bool ratelimit_below(RateLimit *rl, uint64_t now_ns, unsigned *ret_suppressed) {
        if (ret_suppressed)
                *ret_suppressed = 0;
        if (rl->begin_ns == 0 || now_ns - rl->begin_ns >= rl->interval_ns) {
                if (ret_suppressed)
                        *ret_suppressed = rl->suppressed;
                rl->begin_ns = now_ns ? now_ns : 1;
                rl->count = 0;
                rl->suppressed = 0;
        }
        if (rl->count < rl->burst) {
                rl->count++;
                return true;
        }
        rl->suppressed++;
        return false;
}
