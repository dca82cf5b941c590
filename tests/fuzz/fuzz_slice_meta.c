/* Fuzz target: what isthmusd keeps of a ResourceSlice it watches
 * (bridge/slices.c: slices_shrink, slices_annotation_parse), whole or by
 * its metadata alone.  The input is any JSON document; the kept object
 * must have the shape the reconciler reads: metadata, spec.pool with a
 * string or null name and an integer generation, a digest that is "" or
 * 64 hex digits, and a spec digest only beside a digest. */
#include <config.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "bridge/slices.h"

static bool hex64(const char *s)
{
    return s && strlen(s) == ISM_DIGEST_LEN - 1 && strspn(s, "0123456789abcdef") == strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = json_loadb((const char *)data, size, 0, NULL);
    json_t *pool, *name;
    const char *digest, *spec, *v;
    json_int_t m, g;
    char sp[ISM_DIGEST_LEN];

    if (!json_is_object(obj)) {
        json_decref(obj);
        return 0;
    }
    v = json_string_value(json_object_get(
        json_object_get(json_object_get(obj, "metadata"), "annotations"), SLICES_ANNOTATION));
    if (slices_annotation_parse(v, &m, &g, sp, &v) == 0 && (!hex64(sp) || m < 1 || g < 0 || !v))
        abort();
    slices_shrink(NULL, obj);
    pool = json_object_get(json_object_get(obj, "spec"), "pool");
    name = json_object_get(pool, "name");
    digest = json_string_value(json_object_get(obj, SLICES_DIGEST_KEY));
    spec = json_string_value(json_object_get(obj, SLICES_SPEC_KEY));
    if (!json_is_object(json_object_get(obj, "metadata")) || !json_is_object(pool) ||
        !(json_is_string(name) || json_is_null(name)) ||
        !json_is_integer(json_object_get(pool, "generation")) || !digest ||
        (*digest && !hex64(digest)) || (spec && (!hex64(spec) || !*digest)))
        abort();
    json_decref(obj);
    return 0;
}
