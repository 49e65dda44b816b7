#include "test.h"
TEST(placeholder) { ASSERT_TRUE(1); }
