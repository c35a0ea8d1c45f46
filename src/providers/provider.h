/* provider.h — turning a canonical request into a provider's HTTP request.
 *
 * One file per wire format behind this face (openai.c today; anthropic.c and gemini.c come
 * with their issue). The canonical form is OpenAI's chat format, so for an OpenAI-compatible
 * provider encoding is the fast path: the client's body is forwarded byte for byte with only
 * `model` replaced when an alias maps it to another upstream name; headers are the provider's
 * prepared list plus the request id and, for a keyless provider, the client's own key. */
#ifndef AIGW_PROVIDERS_PROVIDER_H
#define AIGW_PROVIDERS_PROVIDER_H

#include <stddef.h>

#include "config/config.h"
#include "server/request.h"

struct curl_slist;

typedef struct provider_request {
    const char *url;
    const char *body;
    size_t body_len;
    struct curl_slist *headers;
} provider_request;

/* Builds the upstream request for req (endpoint, route and the model's span in the body
 * already known). Everything it allocates comes from the request's arena. model_start and
 * model_end delimit the JSON string of `model` in req->body. */
void provider_encode(request *req, endpoint_kind endpoint, size_t model_start, size_t model_end,
                     provider_request *out);

#endif
