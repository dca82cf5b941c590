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

/* The shared topologies (ISTHMUS_TOPOLOGIES, else TOPOLOGIES_DIR) that
 * tests run over. */
static const char *const machines[] = {
    "16-2gr2gr2n2c+misc.xml",
    "16amd64-8n2c-cpusets.xml",
    "16em64t-4s2c2t-offlines.xml",
    "16em64t-4s2c2t.xml",
    "192em64t-12gr2n8c2t.xml",
    "28intel64-2p2g7c-CoDgroups.v1tov2.xml",
    "32em64t-2n8c2t-pci-normalio.xml",
    "64intel64-fakeKNL-SNC4-hybrid.xml",
    "8intel64-fakeKNL-A2A-hybrid.rootattachednumas.xml",
    "8intel64-4n2t-memattrs.xml",
    "96em64t-4n4d3ca2co-pci.xml",
    "corona.xml",
    "fakecpukinds.xml",
    "power8gpudistances.xml",
    "sierra.xml",
    "tuo.SPX.xml",
    "xeonmax-2p4g-hbmflat.xml",
};

#define ARRAY_SIZE(a) ((int)(sizeof(a) / sizeof((a)[0])))

#ifdef ISTHMUS_TOPOLOGY_H
#include <stdio.h>

/* A shared machine by file name, or an hwloc synthetic machine; the test
 * fails when it does not load.  Caller destroys. */
static inline ism_topo_t *load_xml(const char *name)
{
    const char *dir = getenv("ISTHMUS_TOPOLOGIES");
    ism_error_t err = ISM_ERROR_INIT;
    char path[1024];
    ism_topo_t *topo;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : TOPOLOGIES_DIR, name);
    topo = ism_topo_from_xml(path, &err);
    ck_assert_msg(topo != NULL, "%s: %s", name, err.text);
    return topo;
}

static inline ism_topo_t *load_synth(const char *desc)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_topo_t *topo = ism_topo_from_synthetic(desc, &err);

    ck_assert_msg(topo != NULL, "%s: %s", desc, err.text);
    return topo;
}
#endif

#endif
