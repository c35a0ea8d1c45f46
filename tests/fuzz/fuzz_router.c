/* fuzz_router.c — libFuzzer target for the learned router (src/router): the features of a
 * client's last user turn, and the model file's parser. The first byte picks which: even, the
 * rest is a prompt (any bytes, any length) whose features must stay inside their bounds and
 * whose score under the shipped model must be a probability; odd, the rest is a model file's
 * text, which must parse or be refused with a message — never crash, never read past it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"

extern const char aigw_router_model_text[];

static router_model *shipped;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    if (!shipped) {
        char err[256];
        shipped = router_model_parse(aigw_router_model_text, strlen(aigw_router_model_text), err, sizeof err);
        if (!shipped) abort();
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] % 2 == 0) {
        router_input in = {.text = text,
                           .len = len,
                           .turns = data[0] >> 1,
                           .tools = data[0] & 4,
                           .tool_result_last = data[0] & 8,
                           .system_bytes = len * 3};
        router_features f;
        unsigned bits = router_model_bits(shipped);
        router_features_extract(&in, bits, &f);
        if (f.nhashes > ROUTER_MAX_HASHES) abort();
        for (size_t i = 0; i < f.nhashes; i++)
            if (f.hashes[i] >= (1u << bits)) abort();
        for (size_t i = 0; i < ROUTER_DENSE; i++)
            if (!isfinite(f.dense[i])) abort();
        double score = router_model_score(shipped, &f);
        if (!(score >= 0 && score <= 1)) abort();
        return 0;
    }
    char *copy = malloc(len ? len : 1); /* exactly len bytes: the parser must not read past them */
    memcpy(copy, text, len);
    char err[256];
    router_model *m = router_model_parse(copy, len, err, sizeof err);
    if (!m && !err[0]) abort();
    if (m) {
        router_input in = {.text = "a question", .len = 10, .turns = 1};
        double score = router_model_decide(m, &in);
        if (!(score >= 0 && score <= 1)) abort();
        router_model_free(m);
    }
    free(copy);
    return 0;
}
