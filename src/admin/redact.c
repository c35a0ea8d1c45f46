/* redact.c — the running config as the admin API shows it (admin.h: admin_config_redact): the
 * file's text with secrets masked, so GET /admin/config can show what runs without showing a key.
 *
 * Plain text work, two passes. The first finds YAML mapping keys (block or flow style) whose
 * name has a secret's word in it and masks their values, unless a value is an ${ENV}
 * reference. The second masks the password inside any URL (user:PASSWORD@) or libpq keyword
 * string (password=…), whatever the setting. Both are linear in the text: a run of name
 * characters is copied at once, never scanned again from each position. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin.h"
#include "util/alloc.h"

/* Whether a mapping key names a secret (its value is hidden): one of its words, split at '_'
 * and '-', is one of these. virtual_key is a name, not a secret. */
static bool secret_name(const char *name, size_t len)
{
    static const char *const words[] = {"key",   "apikey",        "secret",     "password",   "passwd",
                                        "token", "authorization", "credential", "credentials"};
    if (len == 11 && !strncasecmp(name, "virtual_key", 11)) return false;
    for (size_t at = 0; at < len;) {
        size_t w = 0;
        while (at + w < len && name[at + w] != '_' && name[at + w] != '-')
            w++;
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
            if (strlen(words[i]) == w && !strncasecmp(name + at, words[i], w)) return true;
        at += w + 1;
    }
    return false;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Where the password a URL carries (scheme://user:PASSWORD@host) or a libpq keyword string's
 * password=VALUE ends, when one starts at p; NULL when none does. */
static const char *password_at(const char *p, const char *end, const char **stop)
{
    static const char delims[] = " \t\r\n\"',}/?#";
    if (end - p >= 9 && !strncmp(p, "password=", 9)) {
        const char *v = p + 9, *q = v;
        while (q < end && !strchr(" \t\r\n\"',}", *q))
            q++;
        *stop = q;
        return q > v ? v : NULL;
    }
    if (end - p < 3 || strncmp(p, "://", 3)) return NULL;
    const char *auth = p + 3, *at = NULL, *colon = NULL;
    for (const char *q = auth; q < end && !strchr(delims, *q); q++) {
        if (*q == '@') at = q;
        if (*q == ':' && !colon && !at) colon = q;
    }
    if (!at || !colon || colon > at) return NULL;
    *stop = at;
    return colon + 1;
}

/* The passwords inside values — URLs' and libpq keyword strings' — replaced by the mark, under
 * any setting's name (auth.store, a Redis URL, a webhook). */
static char *mask_passwords(char *text, size_t len, size_t *out_len)
{
    size_t cap = len + 64, n = 0;
    char *out = xmalloc(cap);
    const char *end = text + len;
    for (const char *p = text; p < end;) {
        const char *stop, *pw = password_at(p, end, &stop);
        const char *copy_to = pw ? pw : p + 1;
        while (n + (size_t)(copy_to - p) + sizeof ADMIN_REDACTED_MARK > cap)
            out = xrealloc(out, cap *= 2);
        memcpy(out + n, p, (size_t)(copy_to - p));
        n += (size_t)(copy_to - p);
        if (!pw) {
            p = copy_to;
            continue;
        }
        memcpy(out + n, ADMIN_REDACTED_MARK, sizeof ADMIN_REDACTED_MARK - 1);
        n += sizeof ADMIN_REDACTED_MARK - 1;
        p = stop;
    }
    free(text);
    *out_len = n;
    out[n] = '\0';
    return out;
}

char *admin_config_redact(const char *src, size_t len, size_t *out_len)
{
    size_t cap = len + 64, n = 0;
    char *out = xmalloc(cap);
    size_t i = 0;
    while (i < len) {
        /* a mapping key: a run of name characters (maybe quoted) at the start of a line (after
         * indentation and "- "), or after '{' or ',' — then ':' and a space */
        size_t start = i;
        bool at_key = start == 0 || src[start - 1] == '\n' || src[start - 1] == '{' ||
                      src[start - 1] == ',' || src[start - 1] == ' ' || src[start - 1] == '\t';
        size_t name = i, name_end = i;
        if (at_key) {
            if (src[i] == '"' || src[i] == '\'') name = ++i;
            while (i < len && name_char(src[i]))
                i++;
            name_end = i;
            if (i < len && (src[i] == '"' || src[i] == '\'') && name > start) i++;
        }
        if (!at_key || name_end == name || i + 1 >= len || src[i] != ':' ||
            (src[i + 1] != ' ' && src[i + 1] != '\t') || !secret_name(src + name, name_end - name)) {
            /* the name's characters cannot start a key either: copied at once, so the scan is linear */
            i = name_end > start + 1 ? name_end : start + 1;
            while (n + (i - start) > cap)
                out = xrealloc(out, cap *= 2);
            memcpy(out + n, src + start, i - start);
            n += i - start;
            continue;
        }
        i++; /* ':' */
        while (i < len && (src[i] == ' ' || src[i] == '\t'))
            i++;
        /* the value: quoted, or to the end of the line (and, in a flow mapping, to ',' or '}') */
        bool flow =
            start > 0 &&
            (src[start - 1] == '{' || src[start - 1] == ',' ||
             (src[start - 1] == ' ' && start > 1 && (src[start - 2] == '{' || src[start - 2] == ',')));
        size_t v = i;
        if (i < len && (src[i] == '"' || src[i] == '\'')) {
            char q = src[i++];
            while (i < len && src[i] != q && src[i] != '\n')
                i += src[i] == '\\' && q == '"' ? 2 : 1;
            if (i < len && src[i] == q) i++;
        } else {
            while (i < len && src[i] != '\n' && !(flow && (src[i] == ',' || src[i] == '}')) &&
                   !(src[i] == '#' && src[i - 1] == ' '))
                i++;
        }
        size_t v_end = i;
        while (v_end > v && (src[v_end - 1] == ' ' || src[v_end - 1] == '\t'))
            v_end--;
        const char *val = src + v;
        size_t vlen = v_end - v;
        if (vlen && (val[0] == '"' || val[0] == '\'')) {
            val++;
            vlen = vlen >= 2 ? vlen - 2 : 0;
        }
        /* nothing (a nested mapping follows), an ${ENV} reference or `off` stays as written */
        bool keep = vlen == 0 ||
                    (vlen >= 3 && val[0] == '$' && val[1] == '{' && val[vlen - 1] == '}' &&
                     !memchr(val, ' ', vlen)) ||
                    (vlen == 3 && !strncmp(val, "off", 3));
        size_t need = (v - start) + (keep ? v_end - v : sizeof ADMIN_REDACTED - 1) + 1;
        while (n + need > cap)
            out = xrealloc(out, cap *= 2);
        memcpy(out + n, src + start, v - start);
        n += v - start;
        if (keep) {
            memcpy(out + n, src + v, v_end - v);
            n += v_end - v;
        } else {
            memcpy(out + n, ADMIN_REDACTED, sizeof ADMIN_REDACTED - 1);
            n += sizeof ADMIN_REDACTED - 1;
        }
        i = v_end;
    }
    return mask_passwords(out, n, out_len);
}
