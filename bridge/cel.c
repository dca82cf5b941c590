/* cel.c - the CEL subset of device selectors (cel.h).
 *
 * A recursive-descent parser with CEL's precedence (|| < && < relations <
 * unary < member) builds a small typed tree; evaluation walks it with
 * CEL's values, errors included, because an error is a value in CEL: it
 * travels up until && or || absorbs it, or it reaches the top.
 *
 * Where the reference decides something the CEL specification leaves
 * open, the comment says what the DRA allocator (cel-go with the DRA
 * environment) does; tests/cel/ checks it differentially.
 */
#include <config.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/cel.h"

/* Static types: what the checker knows before any device is seen.  DYN is
 * an attribute's value, whose type only the device knows. */
enum type { TY_BOOL, TY_INT, TY_STRING, TY_DYN, TY_LIST, TY_MAP };

enum kind {
    N_LIT,    /* int, string or bool literal */
    N_DRIVER, /* device.driver */
    N_ATTR,   /* device.attributes[domain].name */
    N_MAP,    /* device.attributes[domain]: only right of `in` */
    N_LIST,   /* [literal, ...]: only right of `in` */
    N_HAS,    /* "name" in device.attributes[domain] */
    N_IN,     /* x in [literal, ...] */
    N_NOT,
    N_AND,
    N_OR,
    N_CMP,
};

enum tok {
    T_EOF,
    T_INT,
    T_STR,
    T_TRUE,
    T_FALSE,
    T_IDENT,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_DOT,
    T_COMMA,
    T_NOT,
    T_AND,
    T_OR,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_IN,
    T_MINUS,
    T_ARITH, /* + * / % */
    T_QUESTION,
    T_COLON,
    T_LBRACE,
    T_RBRACE,
};

/* A runtime value.  Strings point into the tree or the attributes. */
enum vkind { V_ERR, V_BOOL, V_INT, V_STR, V_VER, V_LIST };

struct val {
    enum vkind kind;
    bool b;
    int64_t i;
    const char *s;     /* V_STR, V_VER */
    size_t len;        /* V_STR, V_VER */
    const json_t *arr; /* V_LIST: the attribute's JSON array */
    enum vkind elem;   /* V_LIST: its elements' kind */
    int errnum;        /* V_ERR */
    bool fatal;        /* V_ERR that nothing absorbs */
    char msg[200];     /* V_ERR */
};

struct node {
    enum kind kind;
    enum type type;
    enum type elem; /* N_LIST: element type (TY_DYN while empty) */
    enum tok op;    /* N_CMP */
    size_t pos;     /* byte offset in the expression */
    struct val lit; /* N_LIT; a string literal's bytes are in str */
    char *str;      /* N_LIT string; N_HAS name */
    char *domain;   /* N_ATTR, N_MAP, N_HAS */
    char *name;     /* N_ATTR */
    struct node **kid;
    size_t nkid;
};

struct ism_cel {
    char *expr;
    struct node *root;
};

struct token {
    enum tok kind;
    size_t pos;
    uint64_t u;  /* T_INT magnitude */
    char *s;     /* T_STR decoded, T_IDENT */
    size_t slen; /* T_STR */
};

struct parser {
    const char *src;
    size_t at; /* scanning position */
    struct token tok;
    int depth;
    ism_error_t *err;
};

static const char *const reserved[] = {
    "as",     "break",   "const",     "continue", "else", "for",  "function", "if",   "import",
    "let",    "loop",    "package",   "namespace", "return", "var", "void",   "while", NULL,
};

static const char *type_name(enum type t)
{
    static const char *const names[] = { "bool", "int", "string", "dyn", "list", "map" };
    return names[t];
}

static const char *vkind_name(enum vkind k)
{
    static const char *const names[] = { "error", "bool", "int", "string", "version", "list" };
    return names[k];
}

/* The expression for a message: at most 60 bytes, cut at a UTF-8
 * boundary, control characters as spaces. */
static void excerpt(const char *expr, char *buf, size_t size)
{
    size_t len = strlen(expr), n = len < 60 ? len : 60;

    while (n < len && n > 0 && ((unsigned char)expr[n] & 0xc0) == 0x80)
        n--;
    if (n >= size - 4)
        n = size - 4;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)expr[i] < 0x20 || expr[i] == 0x7f ? ' ' : expr[i];
    strcpy(buf + n, n < len ? "..." : "");
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkid; i++)
        node_free(n->kid[i]);
    free(n->kid);
    free(n->str);
    free(n->domain);
    free(n->name);
    free(n);
}

/* Errors of compilation: one line naming the expression and the column. */
static void *perr(struct parser *p, int errnum, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void *perr(struct parser *p, int errnum, size_t pos, const char *fmt, ...)
{
    char what[256], ex[80];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    excerpt(p->src, ex, sizeof(ex));
    ism_err(p->err, errnum, "CEL selector \"%s\": column %zu: %s", ex, pos + 1, what);
    return NULL;
}

static struct node *node_new(struct parser *p, enum kind kind, enum type type, size_t pos)
{
    struct node *n = calloc(1, sizeof(*n));

    if (!n)
        return perr(p, ENOMEM, pos, "out of memory");
    n->kind = kind;
    n->type = type;
    n->pos = pos;
    return n;
}

/* Append k to n's children; frees both on failure. */
static struct node *node_add(struct parser *p, struct node *n, struct node *k)
{
    struct node **kid;

    if (!n || !k)
        goto error;
    if (!(kid = realloc(n->kid, (n->nkid + 1) * sizeof(*kid)))) {
        perr(p, ENOMEM, k->pos, "out of memory");
        goto error;
    }
    n->kid = kid;
    n->kid[n->nkid++] = k;
    return n;
error:
    node_free(n);
    node_free(k);
    return NULL;
}

/* Lexer. */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || is_digit(c);
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0; /* overlong, surrogate */
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* A quoted string at p->at (the opening quote). */
static int lex_string(struct parser *p, struct token *t)
{
    const char *s = p->src;
    char quote = s[p->at];
    size_t i = p->at + 1, n = 0;
    char *out;

    if (s[i] == quote && s[i + 1] == quote) {
        perr(p, ENOTSUP, t->pos, "triple-quoted strings are not supported");
        return -1;
    }
    if (!(out = malloc(strlen(s + i) + 1))) {
        perr(p, ENOMEM, t->pos, "out of memory");
        return -1;
    }
    for (;;) {
        char c = s[i];
        size_t u;

        if (c == '\0' || c == '\n' || c == '\r') {
            perr(p, EINVAL, t->pos, "unterminated string");
            goto error;
        }
        if (c == quote)
            break;
        if (c == '\\') {
            char e = s[i + 1];
            const char *from = "\\\"'nrt", *to = "\\\"'\n\r\t";
            const char *hit = e ? strchr(from, e) : NULL;

            if (hit) {
                out[n++] = to[hit - from];
                i += 2;
                continue;
            }
            if (e && strchr("xXuU01234567abfv?`", e)) {
                perr(p, ENOTSUP, i, "the string escape \\%c is not supported", e);
                goto error;
            }
            perr(p, EINVAL, i, "invalid escape sequence in a string");
            goto error;
        }
        if (!(u = utf8_len((const unsigned char *)s + i))) {
            perr(p, ENOTSUP, i, "a string that is not valid UTF-8 is not supported");
            goto error;
        }
        memcpy(out + n, s + i, u);
        n += u;
        i += u;
    }
    out[n] = '\0';
    t->kind = T_STR;
    t->s = out;
    t->slen = n;
    p->at = i + 1;
    return 0;
error:
    free(out);
    return -1;
}

static int lex_number(struct parser *p, struct token *t)
{
    const char *s = p->src;
    size_t i = p->at;
    bool hex = s[i] == '0' && s[i + 1] == 'x' && is_hex(s[i + 2]);
    uint64_t u = 0;
    bool over = false;

    if (hex)
        i += 2;
    for (; hex ? is_hex(s[i]) : is_digit(s[i]); i++) {
        unsigned d = is_digit(s[i]) ? (unsigned)(s[i] - '0') : (unsigned)((s[i] | 0x20) - 'a' + 10);
        unsigned base = hex ? 16 : 10;
        if (u > (UINT64_MAX - d) / base)
            over = true;
        u = u * base + d;
    }
    if (!hex && ((s[i] == '.' && is_digit(s[i + 1])) ||
                 ((s[i] == 'e' || s[i] == 'E') &&
                  (is_digit(s[i + 1]) ||
                   ((s[i + 1] == '+' || s[i + 1] == '-') && is_digit(s[i + 2])))))) {
        perr(p, ENOTSUP, t->pos, "double literals are not supported");
        return -1;
    }
    if (s[i] == 'u' || s[i] == 'U') {
        perr(p, ENOTSUP, t->pos, "unsigned int literals are not supported");
        return -1;
    }
    /* The sign is not known yet: allow the magnitude of INT64_MIN. */
    if (over || u > (uint64_t)INT64_MAX + 1) {
        perr(p, EINVAL, t->pos, "invalid int literal");
        return -1;
    }
    t->kind = T_INT;
    t->u = u;
    p->at = i;
    return 0;
}

/* Read the next token into p->tok.  -1 with the error set. */
static int next(struct parser *p)
{
    const char *s = p->src;
    struct token *t = &p->tok;
    static const struct {
        const char *text;
        enum tok kind;
    } punct[] = {
        { "==", T_EQ },     { "!=", T_NE },       { "<=", T_LE },       { ">=", T_GE },
        { "&&", T_AND },    { "||", T_OR },       { "<", T_LT },        { ">", T_GT },
        { "!", T_NOT },     { "(", T_LPAREN },    { ")", T_RPAREN },    { "[", T_LBRACKET },
        { "]", T_RBRACKET }, { ".", T_DOT },      { ",", T_COMMA },     { "-", T_MINUS },
        { "+", T_ARITH },   { "*", T_ARITH },     { "/", T_ARITH },     { "%", T_ARITH },
        { "?", T_QUESTION }, { ":", T_COLON },    { "{", T_LBRACE },    { "}", T_RBRACE },
    };
    size_t len;

    free(t->s);
    memset(t, 0, sizeof(*t));
    for (;;) {
        while (s[p->at] == ' ' || s[p->at] == '\t' || s[p->at] == '\n' || s[p->at] == '\r' ||
               s[p->at] == '\f')
            p->at++;
        if (s[p->at] != '/' || s[p->at + 1] != '/')
            break;
        while (s[p->at] && s[p->at] != '\n')
            p->at++;
    }
    t->pos = p->at;
    if (s[p->at] == '\0') {
        t->kind = T_EOF;
        return 0;
    }
    if (s[p->at] == '"' || s[p->at] == '\'')
        return lex_string(p, t);
    if (is_digit(s[p->at]))
        return lex_number(p, t);
    if (s[p->at] == '.' && is_digit(s[p->at + 1])) {
        perr(p, ENOTSUP, t->pos, "double literals are not supported");
        return -1;
    }
    if (is_ident_start(s[p->at])) {
        size_t start = p->at;
        while (is_ident(s[p->at]))
            p->at++;
        len = p->at - start;
        if ((s[p->at] == '"' || s[p->at] == '\'') && len <= 2 &&
            strspn(s + start, "rRbB") >= len) {
            perr(p, ENOTSUP, t->pos, "raw and bytes literals are not supported");
            return -1;
        }
        if (len == 4 && !strncmp(s + start, "true", 4))
            t->kind = T_TRUE;
        else if (len == 5 && !strncmp(s + start, "false", 5))
            t->kind = T_FALSE;
        else if (len == 2 && !strncmp(s + start, "in", 2))
            t->kind = T_IN;
        else {
            t->kind = T_IDENT;
            if (!(t->s = strndup(s + start, len))) {
                perr(p, ENOMEM, t->pos, "out of memory");
                return -1;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++) {
        len = strlen(punct[i].text);
        if (!strncmp(s + p->at, punct[i].text, len)) {
            t->kind = punct[i].kind;
            p->at += len;
            return 0;
        }
    }
    if (s[p->at] == '`') {
        perr(p, ENOTSUP, t->pos, "quoted identifiers are not supported");
        return -1;
    }
    perr(p, EINVAL, t->pos, "syntax error: unexpected character '%s%c'",
         (unsigned char)s[p->at] >= 0x80 ? "\\x" : "", s[p->at] & 0x7f ? s[p->at] : '?');
    return -1;
}

/* Parser. */

static struct node *parse_expr(struct parser *p);

static const char *op_text(enum tok op)
{
    static const char *const texts[] = {
        [T_EOF] = "the end",  [T_INT] = "a number", [T_STR] = "a string", [T_TRUE] = "true",
        [T_FALSE] = "false", [T_IDENT] = "a name", [T_LPAREN] = "(",     [T_RPAREN] = ")",
        [T_LBRACKET] = "[",  [T_RBRACKET] = "]",  [T_DOT] = ".",        [T_COMMA] = ",",
        [T_NOT] = "!",       [T_AND] = "&&",      [T_OR] = "||",        [T_EQ] = "==",
        [T_NE] = "!=",       [T_LT] = "<",        [T_LE] = "<=",        [T_GT] = ">",
        [T_GE] = ">=",       [T_IN] = "in",       [T_MINUS] = "-",      [T_ARITH] = "+ * / %",
        [T_QUESTION] = "?",  [T_COLON] = ":",     [T_LBRACE] = "{",     [T_RBRACE] = "}",
    };
    return texts[op];
}

static void *syntax(struct parser *p)
{
    return perr(p, EINVAL, p->tok.pos, "syntax error at %s", op_text(p->tok.kind));
}

/* A literal at the current token (int, -int, string, bool), or NULL
 * without an error when there is none. */
static struct node *parse_literal(struct parser *p, bool *none)
{
    struct token *t = &p->tok;
    size_t pos = t->pos;
    struct node *n;
    bool neg = false;

    *none = false;
    if (t->kind == T_MINUS) {
        /* CEL's grammar makes "-" directly before a number part of the
         * literal (so -9223372036854775808 is an int); any other "-" is
         * arithmetic. */
        if (!is_digit(p->src[t->pos + 1]))
            return perr(p, ENOTSUP, pos, "arithmetic negation is not supported");
        if (next(p) < 0)
            return NULL;
        neg = true;
    }
    switch (t->kind) {
    case T_INT:
        if (!neg && t->u > (uint64_t)INT64_MAX)
            return perr(p, EINVAL, pos, "invalid int literal");
        if (!(n = node_new(p, N_LIT, TY_INT, pos)))
            return NULL;
        n->lit.kind = V_INT;
        n->lit.i = neg ? (int64_t)(0 - t->u) : (int64_t)t->u;
        break;
    case T_STR:
        if (!(n = node_new(p, N_LIT, TY_STRING, pos)))
            return NULL;
        n->lit.kind = V_STR;
        n->str = t->s;
        n->lit.s = t->s;
        n->lit.len = t->slen;
        t->s = NULL;
        break;
    case T_TRUE:
    case T_FALSE:
        if (!(n = node_new(p, N_LIT, TY_BOOL, pos)))
            return NULL;
        n->lit.kind = V_BOOL;
        n->lit.b = t->kind == T_TRUE;
        break;
    default:
        *none = true;
        return NULL;
    }
    if (next(p) < 0) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* [literal, ...] at "[". */
static struct node *parse_list(struct parser *p)
{
    struct node *list = node_new(p, N_LIST, TY_LIST, p->tok.pos);
    bool none;

    if (!list || next(p) < 0)
        goto error;
    list->elem = TY_DYN;
    while (p->tok.kind != T_RBRACKET) {
        size_t pos = p->tok.pos;
        struct node *e;

        if (p->tok.kind == T_QUESTION) {
            perr(p, ENOTSUP, pos, "optional list elements are not supported");
            goto error;
        }
        if (!(e = parse_literal(p, &none))) {
            if (none && p->tok.kind == T_COMMA)
                syntax(p);
            else if (none)
                perr(p, ENOTSUP, pos, "list elements must be literals");
            goto error;
        }
        if (list->nkid == ISM_CEL_MAX_LIST) {
            node_free(e);
            perr(p, E2BIG, pos, "a list is longer than %d elements", ISM_CEL_MAX_LIST);
            goto error;
        }
        /* The Kubernetes environment makes list literals homogeneous. */
        if (list->nkid > 0 && e->type != list->elem) {
            perr(p, EINVAL, pos, "list element of type %s in a list of %s", type_name(e->type),
                 type_name(list->elem));
            node_free(e);
            goto error;
        }
        list->elem = e->type;
        if (!(list = node_add(p, list, e)))
            return NULL;
        if (p->tok.kind == T_COMMA) {
            if (next(p) < 0)
                goto error;
        } else if (p->tok.kind != T_RBRACKET) {
            perr(p, ENOTSUP, p->tok.pos, "list elements must be literals");
            goto error;
        }
    }
    if (next(p) < 0)
        goto error;
    return list;
error:
    node_free(list);
    return NULL;
}

static bool is_reserved(const char *id)
{
    for (int i = 0; reserved[i]; i++)
        if (!strcmp(id, reserved[i]))
            return true;
    return false;
}

/* A field name after ".": the current token must be one.  Returns a copy. */
static char *field_name(struct parser *p)
{
    char *name;

    if (p->tok.kind == T_QUESTION)
        return perr(p, ENOTSUP, p->tok.pos, "optional field selection (.?) is not supported");
    if (p->tok.kind != T_IDENT)
        return p->tok.kind == T_TRUE || p->tok.kind == T_FALSE || p->tok.kind == T_IN
                   ? perr(p, ENOTSUP, p->tok.pos, "a keyword as a field name is not supported")
                   : syntax(p);
    if (is_reserved(p->tok.s))
        return perr(p, ENOTSUP, p->tok.pos, "the reserved word '%s' is not supported",
                    p->tok.s);
    name = p->tok.s;
    p->tok.s = NULL;
    if (next(p) < 0) {
        free(name);
        return NULL;
    }
    return name;
}

/* ["string literal"] at "[": a copy of the string. */
static char *string_index(struct parser *p)
{
    size_t pos = p->tok.pos;
    char *s;

    if (next(p) < 0)
        return NULL;
    if (p->tok.kind == T_QUESTION)
        return perr(p, ENOTSUP, p->tok.pos, "optional indexing ([?) is not supported");
    if (p->tok.kind != T_STR)
        return perr(p, ENOTSUP, pos, "an index must be a string literal");
    s = p->tok.s;
    p->tok.s = NULL;
    if (next(p) < 0)
        goto error;
    if (p->tok.kind != T_RBRACKET) {
        perr(p, ENOTSUP, pos, "an index must be a string literal");
        goto error;
    }
    if (next(p) < 0)
        goto error;
    return s;
error:
    free(s);
    return NULL;
}

/* Refuse ".", "[" or "(" after something that takes none in the subset. */
static struct node *no_suffix(struct parser *p, struct node *n)
{
    const char *what = NULL;

    if (!n)
        return NULL;
    if (p->tok.kind == T_LPAREN)
        what = "a function call";
    else if (p->tok.kind == T_DOT)
        what = "a field selection or method call here";
    else if (p->tok.kind == T_LBRACKET)
        what = "indexing here";
    if (what) {
        perr(p, ENOTSUP, p->tok.pos, "%s is not supported", what);
        node_free(n);
        return NULL;
    }
    return n;
}

/* device.driver, device.attributes["D"], device.attributes["D"].N,
 * device.attributes["D"]["N"], at the "." after "device". */
static struct node *parse_device(struct parser *p, size_t pos)
{
    char *field = NULL, *domain = NULL, *name = NULL;
    struct node *n = NULL;

    if (p->tok.kind != T_DOT)
        return perr(p, ENOTSUP, pos,
                    "'device' alone is not supported (only device.driver and "
                    "device.attributes[\"DOMAIN\"])");
    if (next(p) < 0 || !(field = field_name(p)))
        return NULL;
    if (p->tok.kind == T_LPAREN) {
        perr(p, ENOTSUP, p->tok.pos, "method calls (%s()) are not supported", field);
        goto done;
    }
    if (!strcmp(field, "driver")) {
        n = no_suffix(p, node_new(p, N_DRIVER, TY_STRING, pos));
        goto done;
    }
    if (!strcmp(field, "capacity") || !strcmp(field, "allowMultipleAllocations")) {
        perr(p, ENOTSUP, pos, "device.%s is not supported", field);
        goto done;
    }
    if (strcmp(field, "attributes") != 0) {
        perr(p, EINVAL, pos, "undefined field '%s' of device", field);
        goto done;
    }
    if (p->tok.kind != T_LBRACKET) {
        perr(p, ENOTSUP, p->tok.pos,
             "device.attributes must be indexed by a domain: device.attributes[\"DOMAIN\"]");
        goto done;
    }
    if (!(domain = string_index(p)))
        goto done;
    if (p->tok.kind == T_DOT) {
        if (next(p) < 0 || !(name = field_name(p)))
            goto done;
    } else if (p->tok.kind == T_LBRACKET) {
        if (!(name = string_index(p)))
            goto done;
    } else if (p->tok.kind == T_LPAREN) {
        perr(p, ENOTSUP, p->tok.pos, "a function call is not supported");
        goto done;
    } else {
        if ((n = node_new(p, N_MAP, TY_MAP, pos))) {
            n->domain = domain;
            domain = NULL;
        }
        goto done;
    }
    if ((n = node_new(p, N_ATTR, TY_DYN, pos))) {
        n->domain = domain;
        n->name = name;
        domain = name = NULL;
        n = no_suffix(p, n);
    }
done:
    free(field);
    free(domain);
    free(name);
    return n;
}

static struct node *parse_member(struct parser *p)
{
    struct token *t = &p->tok;
    size_t pos = t->pos;
    struct node *n;
    bool none;

    if (t->kind == T_IDENT) {
        char *id = t->s;

        t->s = NULL;
        if (next(p) < 0)
            n = NULL;
        else if (t->kind == T_LPAREN)
            n = perr(p, ENOTSUP, pos, "function calls and macros (%s()) are not supported", id);
        else if (is_reserved(id))
            n = perr(p, ENOTSUP, pos, "the reserved word '%s' is not supported", id);
        else if (!strcmp(id, "device"))
            n = parse_device(p, pos);
        else
            n = perr(p, ENOTSUP, pos, "the name '%s' is not supported (only 'device')", id);
        free(id);
        return n;
    }
    if (t->kind == T_LPAREN) {
        if (next(p) < 0 || !(n = parse_expr(p)))
            return NULL;
        if (t->kind != T_RPAREN) {
            node_free(n);
            return syntax(p);
        }
        if (next(p) < 0) {
            node_free(n);
            return NULL;
        }
        return no_suffix(p, n);
    }
    if (t->kind == T_LBRACKET) {
        if (++p->depth > ISM_CEL_MAX_DEPTH)
            return perr(p, E2BIG, pos, "nested deeper than %d", ISM_CEL_MAX_DEPTH);
        n = parse_list(p);
        p->depth--;
        return no_suffix(p, n);
    }
    if (t->kind == T_LBRACE)
        return perr(p, ENOTSUP, pos, "map and message literals are not supported");
    if (t->kind == T_DOT)
        return perr(p, ENOTSUP, pos, "names with a leading '.' are not supported");
    if ((n = parse_literal(p, &none)))
        return no_suffix(p, n);
    return none ? syntax(p) : NULL;
}

static bool is_value(const struct node *n)
{
    return n->type != TY_LIST && n->type != TY_MAP;
}

/* Refuse a list or map where a value is needed. */
static struct node *need_value(struct parser *p, struct node *n)
{
    if (n && !is_value(n)) {
        perr(p, ENOTSUP, n->pos, "a %s is only supported right of 'in'", type_name(n->type));
        node_free(n);
        return NULL;
    }
    return n;
}

static bool boolish(const struct node *n)
{
    return n->type == TY_BOOL || n->type == TY_DYN;
}

/* ! and the refused unary "-".  CEL's parser drops an even run of "!"
 * altogether (!!x is x, whatever x's type); an odd run is one "!". */
static struct node *parse_unary(struct parser *p)
{
    size_t pos = p->tok.pos;
    int nots = 0;
    struct node *n, *not;

    while (p->tok.kind == T_NOT) {
        nots++;
        if (next(p) < 0)
            return NULL;
    }
    if (!(n = parse_member(p)))
        return NULL;
    if (p->tok.kind == T_ARITH || p->tok.kind == T_MINUS) {
        node_free(n);
        return perr(p, ENOTSUP, p->tok.pos, "arithmetic is not supported");
    }
    if (nots % 2 == 0)
        return n;
    if (!(n = need_value(p, n)))
        return NULL;
    if (!boolish(n)) {
        perr(p, EINVAL, pos, "no matching overload for '!' applied to %s", type_name(n->type));
        node_free(n);
        return NULL;
    }
    if (!(not = node_new(p, N_NOT, TY_BOOL, pos))) {
        node_free(n);
        return NULL;
    }
    return node_add(p, not, n);
}

static bool is_relop(enum tok t)
{
    return t == T_EQ || t == T_NE || t == T_LT || t == T_LE || t == T_GT || t == T_GE || t == T_IN;
}

static struct node *fail2(struct node *a, struct node *b)
{
    node_free(a);
    node_free(b);
    return NULL;
}

/* x in [list] or "name" in device.attributes["domain"]. */
static struct node *make_in(struct parser *p, size_t pos, struct node *l, struct node *r)
{
    struct node *n;

    if (!(l = need_value(p, l)))
        return fail2(NULL, r);
    if (r->kind == N_MAP) {
        if (l->type == TY_DYN || (l->type == TY_STRING && l->kind != N_LIT)) {
            perr(p, ENOTSUP, pos, "a presence test takes a string literal");
            return fail2(l, r);
        }
        if (l->type != TY_STRING) {
            perr(p, EINVAL, pos, "no matching overload for 'in' applied to (%s, map)",
                 type_name(l->type));
            return fail2(l, r);
        }
        r->kind = N_HAS;
        r->type = TY_BOOL;
        r->pos = pos;
        r->str = l->str;
        l->str = NULL;
        node_free(l);
        return r;
    }
    if (r->kind != N_LIST) {
        perr(p, ENOTSUP, pos, "'in' is only supported with a list literal or "
                              "device.attributes[\"DOMAIN\"]");
        return fail2(l, r);
    }
    if (l->type != TY_DYN && r->nkid > 0 && l->type != r->elem) {
        perr(p, EINVAL, pos, "no matching overload for 'in' applied to (%s, list(%s))",
             type_name(l->type), type_name(r->elem));
        return fail2(l, r);
    }
    if (!(n = node_new(p, N_IN, TY_BOOL, pos)))
        return fail2(l, r);
    return node_add(p, node_add(p, n, l), r);
}

static struct node *parse_relation(struct parser *p)
{
    struct node *l = parse_unary(p);

    while (l && is_relop(p->tok.kind)) {
        enum tok op = p->tok.kind;
        size_t pos = p->tok.pos;
        struct node *r, *n;

        if (next(p) < 0 || !(r = parse_unary(p)))
            return fail2(l, NULL);
        if (op == T_IN) {
            l = make_in(p, pos, l, r);
            continue;
        }
        if (!(l = need_value(p, l)) || !(r = need_value(p, r)))
            return fail2(l, r);
        if (l->type != r->type && l->type != TY_DYN && r->type != TY_DYN) {
            perr(p, EINVAL, pos, "no matching overload for '%s' applied to (%s, %s)",
                 op_text(op), type_name(l->type), type_name(r->type));
            return fail2(l, r);
        }
        if (!(n = node_new(p, N_CMP, TY_BOOL, pos)))
            return fail2(l, r);
        n->op = op;
        l = node_add(p, node_add(p, n, l), r);
    }
    return l;
}

/* One level of && or ||: a flat list of operands, so a long chain is not
 * a deep tree. */
static struct node *parse_logic(struct parser *p, enum tok op)
{
    struct node *first = op == T_OR ? parse_logic(p, T_AND) : parse_relation(p), *n;

    if (!first || p->tok.kind != op)
        return first;
    if (!(n = node_new(p, op == T_OR ? N_OR : N_AND, TY_BOOL, first->pos)))
        return fail2(first, NULL);
    for (struct node *k = first;;) {
        if (!(k = need_value(p, k)))
            return fail2(n, NULL);
        if (!boolish(k)) {
            perr(p, EINVAL, k->pos, "no matching overload for '%s' applied to %s", op_text(op),
                 type_name(k->type));
            return fail2(n, k);
        }
        if (!(n = node_add(p, n, k)))
            return NULL;
        if (p->tok.kind != op)
            return n;
        if (next(p) < 0 || !(k = op == T_OR ? parse_logic(p, T_AND) : parse_relation(p)))
            return fail2(n, NULL);
    }
}

static struct node *parse_expr(struct parser *p)
{
    struct node *n;

    if (++p->depth > ISM_CEL_MAX_DEPTH)
        return perr(p, E2BIG, p->tok.pos, "nested deeper than %d", ISM_CEL_MAX_DEPTH);
    n = parse_logic(p, T_OR);
    if (n && p->tok.kind == T_QUESTION) {
        perr(p, ENOTSUP, p->tok.pos, "the conditional operator ?: is not supported");
        node_free(n);
        n = NULL;
    }
    p->depth--;
    return n;
}

/* Depth of the tree (relations chain without recursion in the parser). */
static int tree_depth(const struct node *n)
{
    int d = 0;

    for (size_t i = 0; i < n->nkid; i++) {
        int k = tree_depth(n->kid[i]);
        if (k > d)
            d = k;
        if (d > ISM_CEL_MAX_DEPTH)
            break;
    }
    return d + 1;
}

ism_cel_t *ism_cel_compile(const char *expr, ism_error_t *err)
{
    struct parser p = { .src = expr, .err = err };
    ism_cel_t *c;
    struct node *n;

    if (!expr) {
        ism_err(err, EINVAL, "CEL selector: no expression");
        return NULL;
    }
    if (strlen(expr) > ISM_CEL_MAX_LENGTH)
        return perr(&p, E2BIG, 0, "longer than %d bytes", ISM_CEL_MAX_LENGTH);
    if (next(&p) < 0)
        return NULL;
    n = parse_expr(&p);
    if (n && p.tok.kind != T_EOF) {
        syntax(&p);
        node_free(n);
        n = NULL;
    }
    free(p.tok.s);
    if (!n)
        return NULL;
    if (!is_value(n)) {
        perr(&p, ENOTSUP, n->pos, "a %s is only supported right of 'in'", type_name(n->type));
        goto error;
    }
    if (!boolish(n)) {
        perr(&p, EINVAL, 0, "the expression must evaluate to bool, not %s", type_name(n->type));
        goto error;
    }
    if (tree_depth(n) > ISM_CEL_MAX_DEPTH) {
        perr(&p, E2BIG, 0, "nested deeper than %d", ISM_CEL_MAX_DEPTH);
        goto error;
    }
    if (!(c = calloc(1, sizeof(*c))) || !(c->expr = strdup(expr))) {
        free(c);
        perr(&p, ENOMEM, 0, "out of memory");
        goto error;
    }
    c->root = n;
    return c;
error:
    node_free(n);
    return NULL;
}

void ism_cel_destroy(ism_cel_t *c)
{
    int saved = errno;

    if (c) {
        node_free(c->root);
        free(c->expr);
        free(c);
    }
    errno = saved;
}

const char *ism_cel_expression(const ism_cel_t *c)
{
    return c ? c->expr : NULL;
}

/* Evaluation. */

struct device {
    const char *driver;
    const json_t *attrs;
};

static void verr(struct val *v, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void verr(struct val *v, int errnum, const char *fmt, ...)
{
    va_list ap;

    v->kind = V_ERR;
    v->errnum = errnum;
    v->fatal = false;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
}

static void vbool(struct val *v, bool b)
{
    v->kind = V_BOOL;
    v->b = b;
}

static bool all_of(const char *s, size_t len, const char *set)
{
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(set, s[i]))
            return false;
    return true;
}

#define DIGITS "0123456789"
#define ALNUM DIGITS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"

/* A decimal that fits uint64 without a leading zero (semver's numbers). */
static bool semver_number(const char *s, size_t len)
{
    uint64_t u = 0;

    if (len == 0 || !all_of(s, len, DIGITS) || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (UINT64_MAX - d) / 10)
            return false;
        u = u * 10 + d;
    }
    return true;
}

/* Dot-separated identifiers of a pre-release (numeric or not) or of build
 * metadata. */
static bool semver_idents(const char *s, size_t len, bool pre)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (i == start || !all_of(s + start, i - start, ALNUM))
            return false;
        if (pre && all_of(s + start, i - start, DIGITS) && !semver_number(s + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

/* Semantic Versioning 2.0.0, strictly (no "v", no leading zeros), as the
 * reference parses a version attribute. */
static bool semver_valid(const char *s, size_t len)
{
    const char *dot1 = memchr(s, '.', len), *dot2, *end = s + len, *plus, *dash;

    if (!dot1 || !(dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1))))
        return false;
    if (!semver_number(s, (size_t)(dot1 - s)) ||
        !semver_number(dot1 + 1, (size_t)(dot2 - dot1 - 1)))
        return false;
    if ((plus = memchr(dot2 + 1, '+', (size_t)(end - dot2 - 1)))) {
        if (!semver_idents(plus + 1, (size_t)(end - plus - 1), false))
            return false;
        end = plus;
    }
    if ((dash = memchr(dot2 + 1, '-', (size_t)(end - dot2 - 1)))) {
        if (!semver_idents(dash + 1, (size_t)(end - dash - 1), true))
            return false;
        end = dash;
    }
    return semver_number(dot2 + 1, (size_t)(end - dot2 - 1));
}

/* Versions are equal when they are without their build metadata (valid
 * versions have no leading zeros, so text equality is numeric equality). */
static bool semver_equal(const struct val *a, const struct val *b)
{
    const char *pa = memchr(a->s, '+', a->len), *pb = memchr(b->s, '+', b->len);
    size_t la = pa ? (size_t)(pa - a->s) : a->len, lb = pb ? (size_t)(pb - b->s) : b->len;

    return la == lb && memcmp(a->s, b->s, la) == 0;
}

/* One scalar of an attribute, of the kind the field says. */
static int scalar(const json_t *j, enum vkind kind, struct val *v)
{
    v->kind = kind;
    switch (kind) {
    case V_INT:
        v->i = json_integer_value(j);
        return json_is_integer(j) ? 0 : -1;
    case V_BOOL:
        v->b = json_is_true(j);
        return json_is_boolean(j) ? 0 : -1;
    case V_STR:
    case V_VER:
        v->s = json_string_value(j);
        v->len = json_string_length(j);
        if (!v->s)
            return -1;
        return kind == V_VER && !semver_valid(v->s, v->len) ? -1 : 0;
    default:
        return -1;
    }
}

/* The value of attribute `key` (its API object a), as the reference loads
 * it: the first field present of ints, bools, strings, versions, int,
 * bool, string, version.  A V_ERR when it has none or a bad one. */
static void attr_value(const char *key, const json_t *a, struct val *v)
{
    static const struct {
        const char *field;
        enum vkind kind;
        bool list;
    } fields[] = {
        { "ints", V_INT, true },    { "bools", V_BOOL, true }, { "strings", V_STR, true },
        { "versions", V_VER, true }, { "int", V_INT, false },  { "bool", V_BOOL, false },
        { "string", V_STR, false }, { "version", V_VER, false },
    };

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *f = json_object_get(a, fields[i].field), *e;
        size_t idx;

        if (!f || json_is_null(f))
            continue;
        if (!fields[i].list) {
            if (scalar(f, fields[i].kind, v) < 0)
                verr(v, EINVAL, "attribute %s: bad %s value", key, fields[i].field);
            return;
        }
        if (!json_is_array(f)) {
            verr(v, EINVAL, "attribute %s: %s is not a list", key, fields[i].field);
            return;
        }
        json_array_foreach(f, idx, e) {
            struct val ev;
            if (scalar(e, fields[i].kind, &ev) < 0) {
                verr(v, EINVAL, "attribute %s: bad value in %s", key, fields[i].field);
                return;
            }
        }
        v->kind = V_LIST;
        v->arr = f;
        v->elem = fields[i].kind;
        return;
    }
    verr(v, EINVAL, "attribute %s: unsupported attribute value", key);
}

/* The attribute domain/name of the device: a qualified key "domain/name",
 * or an unqualified "name" when domain is the driver's.  A name splits at
 * its first "/", so a domain with a "/" holds nothing. */
static const json_t *attr_find(const struct device *d, const char *domain, const char *name,
                               char **key)
{
    const json_t *a = NULL;
    char *k;

    *key = NULL;
    if (strchr(domain, '/') || asprintf(&k, "%s/%s", domain, name) < 0)
        return NULL;
    if (!(a = json_object_get(d->attrs, k)) && !strcmp(domain, d->driver) &&
        !strchr(name, '/') && (a = json_object_get(d->attrs, name))) {
        free(k);
        if (!(k = strdup(name)))
            return NULL;
    }
    if (a)
        *key = k;
    else
        free(k);
    return a;
}

/* CEL's ==, as each type's Equal does it: a value of another type is
 * simply unequal, except that a version compared with anything but a
 * version is an error (the reference's Semver type says "no such
 * overload"), and a list compares element by element, where only a false
 * element makes it unequal. */
static void equal(const struct val *a, const struct val *b, struct val *out)
{
    size_t n;

    if (a->kind == V_VER && b->kind != V_VER) {
        verr(out, EINVAL, "no such overload: version == %s", vkind_name(b->kind));
        return;
    }
    if (a->kind != b->kind) {
        vbool(out, false);
        return;
    }
    switch (a->kind) {
    case V_BOOL:
        vbool(out, a->b == b->b);
        return;
    case V_INT:
        vbool(out, a->i == b->i);
        return;
    case V_STR:
        vbool(out, a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
        return;
    case V_VER:
        vbool(out, semver_equal(a, b));
        return;
    case V_LIST:
        if ((n = json_array_size(a->arr)) != json_array_size(b->arr)) {
            vbool(out, false);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            struct val ea, eb, eq;
            scalar(json_array_get(a->arr, i), a->elem, &ea);
            scalar(json_array_get(b->arr, i), b->elem, &eb);
            equal(&ea, &eb, &eq);
            if (eq.kind == V_BOOL && !eq.b) {
                vbool(out, false);
                return;
            }
        }
        vbool(out, true);
        return;
    default:
        vbool(out, false);
        return;
    }
}

/* CEL's ordering: int, string (bytewise) and bool (false < true) against
 * their own type; anything else is "no such overload". */
static void order(enum tok op, const struct val *a, const struct val *b, struct val *out)
{
    int c;

    if (a->kind != b->kind || a->kind == V_VER || a->kind == V_LIST) {
        verr(out, EINVAL, "no such overload: %s %s %s", vkind_name(a->kind),
             op_text(op), vkind_name(b->kind));
        return;
    }
    if (a->kind == V_INT)
        c = (a->i > b->i) - (a->i < b->i);
    else if (a->kind == V_BOOL)
        c = (int)a->b - (int)b->b;
    else {
        size_t n = a->len < b->len ? a->len : b->len;
        c = memcmp(a->s, b->s, n);
        if (c == 0)
            c = (a->len > b->len) - (a->len < b->len);
    }
    vbool(out, op == T_LT ? c < 0 : op == T_LE ? c <= 0 : op == T_GT ? c > 0 : c >= 0);
}

static void eval(const struct node *n, const struct device *d, struct val *v);

/* && and ||: the first operand equal to `absorb` decides; else the first
 * error (or non-bool) is the result; else !absorb.  Operands are evaluated
 * from the left and no further than the deciding one, which matters for a
 * fatal error only. */
static void eval_logic(const struct node *n, const struct device *d, bool absorb, struct val *v)
{
    bool failed = false;

    for (size_t i = 0; i < n->nkid; i++) {
        struct val k;

        eval(n->kid[i], d, &k);
        if (k.kind == V_ERR && k.fatal) {
            *v = k;
            return;
        }
        if (k.kind == V_BOOL && k.b == absorb) {
            vbool(v, absorb);
            return;
        }
        if (k.kind != V_BOOL && !failed) {
            failed = true;
            if (k.kind == V_ERR)
                *v = k;
            else
                verr(v, EINVAL, "no such overload: %s %s ...", vkind_name(k.kind),
                     absorb ? "||" : "&&");
        }
    }
    if (!failed)
        vbool(v, !absorb);
}

static void eval(const struct node *n, const struct device *d, struct val *v)
{
    struct val l, r;
    const json_t *a;
    char *key;

    switch (n->kind) {
    case N_LIT:
        *v = n->lit;
        return;
    case N_DRIVER:
        v->kind = V_STR;
        v->s = d->driver;
        v->len = strlen(d->driver);
        return;
    case N_ATTR:
        if (!(a = attr_find(d, n->domain, n->name, &key))) {
            verr(v, ENOENT, "device.attributes[\"%s\"].%s: no such key: %s", n->domain, n->name,
                 n->name);
            return;
        }
        attr_value(key, a, v);
        free(key);
        return;
    case N_HAS:
        a = attr_find(d, n->domain, n->str, &key);
        free(key);
        vbool(v, a != NULL);
        return;
    case N_NOT:
        eval(n->kid[0], d, v);
        if (v->kind == V_BOOL)
            v->b = !v->b;
        else if (v->kind != V_ERR)
            verr(v, EINVAL, "no such overload: !%s", vkind_name(v->kind));
        return;
    case N_AND:
    case N_OR:
        eval_logic(n, d, n->kind == N_OR, v);
        return;
    case N_IN:
        /* The reference turns `x in [constants]` into a set lookup: an
         * empty list is false without looking at x, and a version, which
         * its set cannot hold, fails the whole evaluation (a Go panic that
         * the program recovers from): || and && do not absorb it. */
        if (n->kid[1]->nkid == 0) {
            vbool(v, false);
            return;
        }
        eval(n->kid[0], d, v);
        if (v->kind == V_ERR)
            return;
        if (v->kind == V_VER) {
            verr(v, EINVAL, "a version cannot be looked up in a list");
            v->fatal = true;
            return;
        }
        for (size_t i = 0; i < n->kid[1]->nkid; i++) {
            equal(v, &n->kid[1]->kid[i]->lit, &r);
            if (r.kind == V_BOOL && r.b) {
                vbool(v, true);
                return;
            }
        }
        vbool(v, false);
        return;
    case N_CMP:
        eval(n->kid[0], d, &l);
        eval(n->kid[1], d, &r);
        if (l.kind == V_ERR)
            *v = l;
        else if (r.kind == V_ERR)
            *v = r;
        else if (n->op == T_EQ || n->op == T_NE) {
            equal(&l, &r, v);
            if (n->op == T_NE)
                vbool(v, !(v->kind == V_BOOL && v->b));
        } else
            order(n->op, &l, &r, v);
        return;
    case N_MAP:
    case N_LIST:
        break;
    }
    verr(v, EINVAL, "internal error: cannot evaluate a %s", type_name(n->type));
}

int ism_cel_eval(const ism_cel_t *c, const char *driver, const json_t *attributes, bool *match,
                 ism_error_t *err)
{
    struct device d = { .driver = driver, .attrs = attributes };
    char ex[80];
    const char *key;
    json_t *a;
    struct val v;

    if (!c || !driver || !match || (attributes && !json_is_object(attributes)))
        return ism_err(err, EINVAL, "CEL selector: invalid arguments");
    excerpt(c->expr, ex, sizeof(ex));
    /* The reference loads every attribute before it evaluates anything. */
    json_object_foreach((json_t *)attributes, key, a) {
        attr_value(key, a, &v);
        if (v.kind == V_ERR)
            return ism_err(err, v.errnum, "CEL selector \"%s\": %s", ex, v.msg);
    }
    eval(c->root, &d, &v);
    if (v.kind == V_ERR)
        return ism_err(err, v.errnum, "CEL selector \"%s\": %s", ex, v.msg);
    if (v.kind != V_BOOL)
        return ism_err(err, EINVAL, "CEL selector \"%s\": the result is of type %s, not bool", ex,
                       vkind_name(v.kind));
    *match = v.b;
    return 0;
}
