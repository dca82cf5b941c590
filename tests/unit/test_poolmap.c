/* Unit tests: the Node <-> Slurm node map (bridge/poolmap.c).
 *
 * Each row gives the Nodes (name and label, "-" for none) and what every
 * Slurm node's pool must be afterwards, then which pools moved when the
 * map is rebuilt from the row's second set of Nodes.
 */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge/model.h"
#include "bridge/poolmap.h"
#include "unit.h"


/* "name=label name name=" : Nodes; "=label" absent means unlabelled. */
static json_t *nodes_of(const char *spec)
{
    json_t *nodes = json_object();
    char *copy = strdup(spec), *save = NULL;

    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        json_t *labels = json_object();
        if (eq) {
            *eq = '\0';
            json_object_set_new(labels, ISM_LABEL_SLURM_NODE, json_string(eq + 1));
        }
        json_object_set_new(labels, "kubernetes.io/hostname", json_string(tok));
        json_object_set_new(nodes, tok,
                            json_pack("{s:{s:s, s:s, s:o}}", "metadata", "name", tok, "uid",
                                      "u-1", "labels", labels));
    }
    free(copy);
    return nodes;
}

static const struct map_case {
    const char *what;
    const char *nodes;
    const char *expect; /* "slurm:pool ..." ("slurm:-" for none) */
    const char *then;   /* Nodes of a second rebuild */
    const char *moved;  /* pools that moved then, sorted, space separated */
} cases[] = {
    { "same-name fallback", "n1 n2", "n1:n1 n2:n2 n3:-", "n1 n2", "" },
    { "label wins over the name", "k1=n1 k2=n2", "n1:k1 n2:k2 k1:- k2:-", "k1=n1 k2=n2", "" },
    { "a Node labelled for another Slurm node is not its own name's pool", "n1=n2 n2",
      "n1:- n2:n1", "n1=n2 n2", "" },
    { "labelled Node and same-named Node: the label wins", "n1 k1=n1", "n1:k1", "n1 k1=n1",
      "" },
    { "two Nodes labelled alike: the smallest name", "kb=n1 ka=n1", "n1:ka kb:- ka:-",
      "kb=n1", "ka kb" },
    { "an empty label counts as none", "n1=", "n1:n1", "n1=", "" },
    { "a label moved to another Node", "n1 n2", "n1:n1 n2:n2", "n1 n2=n1 x=n2",
      "n1 n2 x" },
    { "a Node gone", "n1 n2", "n1:n1 n2:n2", "n1", "n2" },
    { "a Node added", "n1", "n1:n1", "n1 n2", "n2" },
    { "no Nodes", "", "n1:-", "", "" },
};

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void note_moved(void *arg, const char *pool)
{
    json_object_set_new(arg, pool, json_true());
}

START_TEST(pool_map_table)
{
    const struct map_case *c = &cases[_i];
    ism_error_t err = ISM_ERROR_INIT;
    struct poolmap *pm = poolmap_create(&err);
    json_t *nodes = nodes_of(c->nodes), *then = nodes_of(c->then), *moved = json_object(), *v;
    char *copy = strdup(c->expect), *save = NULL, got[512] = "";
    const char *names[64], *key;
    size_t n = 0;

    ck_assert_ptr_nonnull(pm);
    ck_assert_int_eq(poolmap_rebuild(pm, nodes, NULL, NULL, &err), 0);
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *colon = strchr(tok, ':');
        const char *pool;
        *colon = '\0';
        pool = poolmap_pool_of(pm, tok);
        if (strcmp(colon + 1, "-") == 0) {
            ck_assert_msg(pool == NULL, "%s: %s has pool %s", c->what, tok, pool);
        } else {
            ck_assert_msg(pool && strcmp(pool, colon + 1) == 0, "%s: %s has pool %s, not %s",
                          c->what, tok, pool ? pool : "(none)", colon + 1);
            ck_assert_str_eq(poolmap_slurm_of(pm, pool), tok);
        }
    }
    ck_assert_int_eq(poolmap_rebuild(pm, then, note_moved, moved, &err), 0);
    json_object_foreach(moved, key, v) {
        names[n++] = key;
    }
    qsort(names, n, sizeof(names[0]), cmp);
    for (size_t i = 0; i < n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "", names[i]);
    ck_assert_msg(strcmp(got, c->moved) == 0, "%s: moved \"%s\", not \"%s\"", c->what, got,
                  c->moved);
    /* The inverse holds for every pair. */
    json_object_foreach(then, key, v) {
        const char *slurm = poolmap_slurm_of(pm, key);
        if (slurm)
            ck_assert_str_eq(poolmap_pool_of(pm, slurm), key);
    }
    free(copy);
    json_decref(moved);
    json_decref(nodes);
    json_decref(then);
    poolmap_destroy(pm);
}
END_TEST

START_TEST(pool_map_null)
{
    ck_assert_ptr_null(poolmap_pool_of(NULL, "n1"));
    ck_assert_ptr_null(poolmap_slurm_of(NULL, "n1"));
    ck_assert_uint_eq(poolmap_size(NULL), 0);
    ck_assert_ptr_null(poolmap_node_label(NULL));
    errno = EBADF;
    poolmap_destroy(NULL);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("poolmap");
    TCase *tc = tcase_create("map");

    tcase_add_loop_test(tc, pool_map_table, 0, ARRAY_SIZE(cases));
    tcase_add_test(tc, pool_map_null);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
