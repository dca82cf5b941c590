/* Without libFuzzer (gcc builds), a fuzz target is linked with this main:
 * it runs the target on each file named on the command line, so the seed
 * corpus and every crash found earlier stay regression tests.  Prints TAP. */
#include <config.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

int main(int argc, char **argv)
{
    printf("1..%d\n", argc - 1);
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf = NULL;
        long len;

        if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
            !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
            printf("not ok %d - %s: cannot read\n", i, argv[i]);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        printf("ok %d - %s\n", i, argv[i]);
    }
    return 0;
}
