/* SPDX-License-Identifier: BSD-3-Clause */
#include <string.h>

#include "subid.h"
#include "test.h"
#include "util.h"

/* What useradd writes on Debian: 65536 ids per user from 100000 on. */
static const char debian[] = "alice:100000:65536\n"
                             "bob:165536:65536\n"
                             "carol:231072:65536\n"
                             "dave:296608:65536\n";

TEST(debian_fourth_block_overlaps_the_old_default) {
        SubidOverlap o;

        ASSERT_EQ(subid_find_overlap(debian, strlen(debian), 300000, 365535, &o), 1);
        ASSERT_EQ(o.line, 4);
        ASSERT_STREQ(o.name, "dave");
        ASSERT_EQ(o.first, 296608);
        ASSERT_EQ(o.last, 362143);
}

TEST(default_range_is_clear_of_useradds_blocks) {
        ASSERT_EQ(subid_find_overlap(debian, strlen(debian), 2147221504u, 2147287039u, NULL), 0);
        /* useradd's SUB_UID_MAX default (login.defs) is 600100000: no block it hands out reaches 2^31. */
        static const char last[] = "zed:600034464:65536\n";
        ASSERT_EQ(subid_find_overlap(last, strlen(last), 2147221504u, 2147287039u, NULL), 0);
}

TEST(edges_are_inclusive) {
        static const char f[] = "u:1000:10\n"; /* 1000..1009 */
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1009, 2000, NULL), 1);
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1, 1000, NULL), 1);
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1010, 2000, NULL), 0);
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1, 999, NULL), 0);
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1002, 1003, NULL), 1); /* inside */
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 1, 5000, NULL), 1);    /* around */
}

TEST(count_past_the_end_of_the_id_space_is_cut) {
        static const char f[] = "u:4294967000:4294967295\n";
        SubidOverlap o;
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 4294967290u, 4294967294u, &o), 1);
        ASSERT_EQ(o.last, 4294967295u);
}

TEST(lines_that_give_nobody_ids_are_skipped) {
        static const char f[] = "\n"
                                "# alice:300000:65536\n"
                                "nocount:300000\n"
                                "zero:300000:0\n"
                                ":300000:10\n"
                                "junk:30x000:10\n"
                                "neg:-1:10\n"
                                "1000:300005:1"; /* a uid as the name, no final newline: counts */
        SubidOverlap o;
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 300000, 365535, &o), 1);
        ASSERT_EQ(o.line, 8);
        ASSERT_STREQ(o.name, "1000");
        ASSERT_EQ(o.first, 300005);
        ASSERT_EQ(o.last, 300005);
}

TEST(empty_file_and_long_lines) {
        ASSERT_EQ(subid_find_overlap("", 0, 1, 10, NULL), 0);
        char big[600];
        memset(big, 'a', sizeof(big));
        memcpy(big + sizeof(big) - 8, ":1:1000\n", 8);
        ASSERT_EQ(subid_find_overlap(big, sizeof(big), 1, 10, NULL), 0);
}

TEST(no_nul_needed_and_nothing_read_past_len) {
        static const char f[] = "a:10:5\nb:100:5\n";
        /* len stops inside line 2: "b:10" gives no count, so no overlap with 100.. */
        ASSERT_EQ(subid_find_overlap(f, 11, 100, 104, NULL), 0);
        ASSERT_EQ(subid_find_overlap(f, strlen(f), 100, 104, NULL), 1);
}
