/* cel_eval: the CEL subset (bridge/cel.c) over cases, for the differential
 * test (tests/cel/run.sh).  Reads one JSON object a line,
 *     {"expr": "...", "driver": "...", "attributes": {...}}
 * and prints one line for each, the result word, a tab and the message:
 *     true | false | error | compile-error | refused
 * (refused: ENOTSUP or E2BIG, outside the subset; compile-error: EINVAL). */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/cel.h"

int main(void)
{
    char *line = NULL;
    size_t size = 0;
    long lineno = 0;

    while (getline(&line, &size, stdin) >= 0) {
        json_error_t jerr;
        json_t *c = json_loads(line, 0, &jerr);
        const char *expr = NULL, *driver = NULL;
        json_t *attrs = NULL;
        ism_error_t err = ISM_ERROR_INIT;
        ism_cel_t *sel;
        bool match;

        lineno++;
        if (!c || json_unpack(c, "{s:s, s:s, s?o}", "expr", &expr, "driver", &driver,
                              "attributes", &attrs) < 0) {
            fprintf(stderr, "cel_eval: line %ld: not a case\n", lineno);
            return 1;
        }
        if (!(sel = ism_cel_compile(expr, &err)))
            printf("%s\t%s\n", errno == EINVAL ? "compile-error" : "refused", err.text);
        else if (ism_cel_eval(sel, driver, attrs, &match, &err) < 0)
            printf("error\t%s\n", err.text);
        else
            printf("%s\n", match ? "true" : "false");
        ism_cel_destroy(sel);
        json_decref(c);
    }
    free(line);
    return 0;
}
