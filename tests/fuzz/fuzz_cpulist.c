/* Fuzz target: the cpu-list parser.  A list that parses must format to a
 * canonical list that parses back to the same set. */
#include <config.h>
#include <stdlib.h>

#include "fuzz.h"
#include "lib/util/bitmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    ism_bitmap_t *b, *again;
    char *list;

    if (!text)
        return 0;
    if ((b = ism_bitmap_parse_list(text, NULL))) {
        if (!(list = ism_bitmap_format_list(b)) || !(again = ism_bitmap_parse_list(list, NULL)) ||
            !ism_bitmap_equal(b, again))
            abort();
        ism_bitmap_destroy(again);
        free(list);
        ism_bitmap_destroy(b);
    }
    free(text);
    return 0;
}
