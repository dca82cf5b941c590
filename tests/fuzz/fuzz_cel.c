/* Fuzz target: the CEL subset of device selectors (bridge/cel.c).  Any
 * input compiles or fails with a message; what compiles evaluates over a
 * fixed core of ours to a bool or an error with a message, the same twice
 * over. */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "bridge/cel.h"

static const char *const core_json =
    "{\"resource.kubernetes.io/numaNode\": {\"int\": 1}, \"socket\": {\"int\": 0},"
    " \"l3cache\": {\"int\": 3}, \"cpu.isthmus.io/core\": {\"int\": 50},"
    " \"cpus\": {\"string\": \"50,242\"}, \"threads\": {\"int\": 2},"
    " \"coreType\": {\"string\": \"performance\"}, \"smt\": {\"bool\": true},"
    " \"other.example.com/fw\": {\"version\": \"1.2.3\"},"
    " \"other.example.com/ids\": {\"ints\": [1, 2]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *attrs;
    ism_error_t err = ISM_ERROR_INIT, again = ISM_ERROR_INIT;
    char *text = fuzz_text(data, size);
    ism_cel_t *c;
    bool m1 = false, m2 = false;
    int r1, r2;

    if (!attrs && !(attrs = json_loads(core_json, 0, NULL)))
        abort();
    if (!text)
        return 0;
    if (!(c = ism_cel_compile(text, &err))) {
        if (err.text[0] == '\0' || (errno != EINVAL && errno != ENOTSUP && errno != E2BIG))
            abort();
    } else {
        r1 = ism_cel_eval(c, "cpu.isthmus.io", attrs, &m1, &err);
        r2 = ism_cel_eval(c, "cpu.isthmus.io", attrs, &m2, &again);
        if (r1 != r2 || m1 != m2 || (r1 < 0 && err.text[0] == '\0'))
            abort();
        ism_cel_destroy(c);
    }
    free(text);
    return 0;
}
