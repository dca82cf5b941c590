/* Fuzz target: the kubelet plugin's checkpoint reader, fed a file that a
 * crash, a full disk or a hand edit may have left.  Whatever decodes must
 * encode, decode again and encode to the same bytes. */
#include <config.h>
#include <string.h>

#include "dra/checkpoint.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ism_error_t err = ISM_ERROR_INIT;
    ism_ckpt_t *c = ism_ckpt_decode((const char *)data, size, &err), *again;
    char *a, *b;

    if (!c) {
        if (!err.text[0])
            abort();
        return 0;
    }
    if (!(a = ism_ckpt_encode(c, NULL)) || !(again = ism_ckpt_decode(a, strlen(a), NULL)))
        abort();
    if (!(b = ism_ckpt_encode(again, NULL)) || strcmp(a, b) != 0 ||
        ism_ckpt_count(c) != ism_ckpt_count(again))
        abort();
    free(a);
    free(b);
    ism_ckpt_destroy(again);
    ism_ckpt_destroy(c);
    return 0;
}
