/* Fuzz target: decoding the API server's answers (lib/kube_status.c).
 * The first two bytes choose the HTTP code (100-599), the rest is the
 * body.  Whatever the body, the decoded status must be sane: a known
 * reason, no line break in the message, a bounded Retry-After. */
#include <config.h>
#include <string.h>

#include "fuzz.h"
#include "lib/kube/kube_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ism_kube_status_t st;
    long code;

    if (size < 2)
        return 0;
    code = 100 + (long)((data[0] << 8 | data[1]) % 500);
    ism_kube_status_decode(code, (const char *)data + 2, size - 2, &st);
    if ((unsigned)st.reason > ISM_KUBE_NOT_LEADER || st.http_code != code ||
        strchr(st.message, '\n') || strchr(st.message, '\r') ||
        strnlen(st.message, sizeof(st.message)) == sizeof(st.message) || st.retry_after < 0 ||
        st.retry_after >= 86400 || (code >= 200 && code < 300 && st.reason != ISM_KUBE_OK) ||
        (code >= 300 && st.reason == ISM_KUBE_OK))
        abort();
    return 0;
}
