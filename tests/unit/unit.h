/* unit.h - what every unit test program shares.
 *
 * Tests print TAP (one line per test case, loop iterations included) so
 * that automake's tap-driver counts every case, and exit non-zero when one
 * failed.  Set CK_FORK=no to run them under valgrind.
 */
#ifndef ISTHMUS_TEST_UNIT_H
#define ISTHMUS_TEST_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_set_tap(sr, "-");
    srunner_run_all(sr, CK_SILENT);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define ARRAY_SIZE(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
