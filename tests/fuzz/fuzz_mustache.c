/* fuzz_mustache.c — libFuzzer target for the prompt template renderer (src/prompts/mustache.c),
 * which reads an admin's template and a client's variables. The input is a template, then
 * (after the first NUL byte, if any) the variables as JSON. The template is also its own
 * partial "self" and the parent "p", so recursion, inheritance and dynamic names are reached.
 * Every input must render or be refused with a message that names the template and a line,
 * inside the bounds: the output never passes max_output, a refusal always has a status. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prompts/mustache.h"

typedef struct {
    const char *text;
    size_t len;
} self_partial;

static bool partial(void *ctx, const char *name, size_t len, const char **text, size_t *out_len)
{
    self_partial *s = ctx;
    if ((len == 4 && memcmp(name, "self", 4) == 0) || (len == 1 && name[0] == 'p')) {
        *text = s->text;
        *out_len = s->len;
        return true;
    }
    if (len == 1 && name[0] == 'q') {
        *text = "{{$b}}q-default {{x}}{{/b}}\n  {{>self}}";
        *out_len = strlen(*text);
        return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - text) : size;
    json_t *vars = NULL;
    if (nul) vars = json_loadb(nul + 1, size - len - 1, JSON_DECODE_ANY, NULL);
    self_partial s = {text, len};
    mustache_options opt;
    mustache_options_init(&opt);
    opt.name = "fuzz";
    opt.partial = partial;
    opt.partial_ctx = &s;
    opt.max_output = 1 << 16;
    opt.max_steps = 200000;
    opt.escape_html = size % 2;
    opt.strict = size % 3 == 0;
    buf out;
    buf_init(&out, 1 << 20);
    mustache_error err;
    mustache_status st = mustache_render(text, len, vars, &opt, &out, &err);
    if (st == MUSTACHE_OK && out.len > opt.max_output) abort();
    if (st != MUSTACHE_OK && (strncmp(err.message, "template '", 10) != 0 || !strstr(err.message, " line ")))
        abort();
    mustache_error cerr;
    if (mustache_check(text, len, "fuzz", &cerr) != MUSTACHE_OK && cerr.message[0] == '\0') abort();
    buf_free(&out);
    json_decref(vars);
    return 0;
}
