/* http_body.c — a request body's framing; see http_body.h for the contract.
 *
 * Split from the connection (http_conn.c) because it is the one part of reading a request that
 * is pure byte-level framing: no socket, timer or request state, so it can be read and checked
 * (and fuzzed through fuzz_conn) as a state machine on its own. The connection decides the mode
 * from the head, feeds it what it reads, and answers what it refuses. */
#include "server/http_body.h"

#include <ctype.h>
#include <string.h>

static body_result body_refuse(http_body_reader *r, int status, const char *message)
{
    r->error_status = status;
    r->error_message = message;
    return BODY_ERROR;
}

static body_result body_take(http_body_reader *r, buf *body, const char *data, size_t len)
{
    if (buf_append(body, data, len) != BUF_OK) return body_refuse(r, 413, "request body too large");
    return BODY_MORE;
}

static bool is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

body_result http_body_feed(http_body_reader *r, buf *body, size_t trailer_max, const char *data, size_t len,
                           size_t *used)
{
    size_t i = 0;
    body_result res = BODY_MORE;
    if (r->mode == BODY_LENGTH) {
        size_t take = len < r->left ? len : (size_t)r->left;
        res = body_take(r, body, data, take);
        r->left -= take;
        *used = take;
        return res == BODY_MORE && r->left == 0 ? BODY_DONE : res;
    }
    while (i < len && res == BODY_MORE) {
        unsigned char ch = (unsigned char)data[i];
        if (r->chunk == CHUNK_DATA) {
            size_t take = len - i < r->left ? len - i : (size_t)r->left;
            res = body_take(r, body, data + i, take);
            r->left -= take;
            i += take;
            if (r->left == 0) r->chunk = CHUNK_DATA_CR;
            continue;
        }
        i++;
        if (r->chunk <= CHUNK_SIZE_LF && ++r->chunk_line > CHUNK_LINE_MAX)
            return body_refuse(r, 400, "malformed chunked body: chunk size line too long");
        switch (r->chunk) {
        case CHUNK_SIZE:
            if (isxdigit(ch)) {
                if (r->left > (body->max - body->len) / 16)
                    return body_refuse(r, 413, "request body too large");
                r->left = r->left * 16 + (uint64_t)(isdigit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
            } else if (r->chunk_line > 1 && (ch == ' ' || ch == '\t')) {
                r->chunk = CHUNK_SIZE_SPACE;
            } else if (r->chunk_line > 1 && ch == ';') {
                r->chunk = CHUNK_EXTENSION;
            } else if (r->chunk_line > 1 && ch == '\r') {
                r->chunk = CHUNK_SIZE_LF;
            } else {
                return body_refuse(r, 400, "malformed chunked body: bad chunk size");
            }
            break;
        case CHUNK_SIZE_SPACE:
            if (ch == ';')
                r->chunk = CHUNK_EXTENSION;
            else if (ch != ' ' && ch != '\t')
                return body_refuse(r, 400, "malformed chunked body: bad chunk size");
            break;
        case CHUNK_EXTENSION:
            if (ch == '\r')
                r->chunk = CHUNK_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return body_refuse(r, 400, "malformed chunked body: bad chunk extension");
            break;
        case CHUNK_SIZE_LF:
            if (ch != '\n') return body_refuse(r, 400, "malformed chunked body: CR without LF");
            r->chunk_line = 0;
            r->chunk = r->left ? CHUNK_DATA : CHUNK_TRAILER_START;
            break;
        case CHUNK_DATA_CR:
            if (ch != '\r')
                return body_refuse(r, 400, "malformed chunked body: chunk data not followed by CRLF");
            r->chunk = CHUNK_DATA_LF;
            break;
        case CHUNK_DATA_LF:
            if (ch != '\n')
                return body_refuse(r, 400, "malformed chunked body: chunk data not followed by CRLF");
            r->chunk = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER_START:
            if (ch == '\r') {
                r->chunk = CHUNK_FINAL_LF;
                break;
            }
            if (!is_token_char(ch)) return body_refuse(r, 400, "malformed chunked body: bad trailer field");
            r->chunk = CHUNK_TRAILER_LINE;
            r->trailer_value = false;
            __attribute__((fallthrough)); /* the first byte counts toward the trailers' size */
        case CHUNK_TRAILER_LINE:
            if (++r->chunk_line > trailer_max) return body_refuse(r, 431, "request trailer fields too large");
            if (!r->trailer_value && ch == ':')
                r->trailer_value = true;
            else if (r->trailer_value ? (ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f
                                      : !is_token_char(ch))
                return body_refuse(r, 400, "malformed chunked body: bad trailer field");
            else if (ch == '\r')
                r->chunk = CHUNK_TRAILER_LF;
            break;
        case CHUNK_TRAILER_LF:
            if (ch != '\n') return body_refuse(r, 400, "malformed chunked body: CR without LF");
            r->chunk = CHUNK_TRAILER_START;
            break;
        case CHUNK_FINAL_LF:
            if (ch != '\n') return body_refuse(r, 400, "malformed chunked body: CR without LF");
            *used = i;
            return BODY_DONE;
        case CHUNK_DATA: break;
        }
    }
    *used = i;
    return res;
}
