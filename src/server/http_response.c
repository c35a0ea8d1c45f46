/* http_response.c — writing responses onto a client connection: the status line and our
 * headers, whole responses (http_respond) and chunked streams (http_stream_*); see
 * http_conn.h for the contract.
 *
 * Split from the connection's state machine (http_conn.c), which owns the socket, the write
 * queue and what happens after a response: this file only shapes the bytes of a response and
 * counts them for the access log. Every response says its length (Content-Length or chunked)
 * so the connection can be kept alive; HEAD gets the head of the response it would have had.
 * Connection: close is said whenever the connection will close after this response (the
 * client asked, the server is draining, or the request was refused as malformed). */
#include <stdio.h>

#include "server/http_conn_internal.h"
#include "server/worker.h"
#include "util/timeutil.h"

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* Writes the status line and common headers into out (size HEAD_MAX). */
#define HEAD_MAX 512 /* status line + our headers; the Content-Type is clamped to 200 bytes */
static size_t format_head(client_conn *c, int status, const char *content_type, bool chunked,
                          size_t content_length, char *out)
{
    http_request *req = &c->req;
    bool keep = c->keepalive && !c->w->draining && !c->error_status;
    int n;
    if (chunked)
        n = snprintf(out, HEAD_MAX,
                     "HTTP/1.1 %d %s\r\nContent-Type: %.200s\r\nTransfer-Encoding: chunked\r\n"
                     "Cache-Control: no-cache\r\nx-request-id: %s\r\n%s",
                     status, reason_phrase(status), content_type, req->id,
                     keep ? "" : "Connection: close\r\n");
    else
        n = snprintf(
            out, HEAD_MAX,
            "HTTP/1.1 %d %s\r\nContent-Type: %.200s\r\nContent-Length: %zu\r\nx-request-id: %s\r\n%s", status,
            reason_phrase(status), content_type, content_length, req->id,
            keep ? "" : "Connection: close\r\n");
    /* HTTP/1.0 closes by default: a connection kept open must say so. */
    if (keep && c->http10 && n > 0 && n < HEAD_MAX)
        n += snprintf(out + n, HEAD_MAX - (size_t)n, "Connection: keep-alive\r\n");
    if (!keep) c->keepalive = false;
    return n < 0 ? 0 : (size_t)n >= HEAD_MAX ? HEAD_MAX - 1 : (size_t)n;
}

void http_respond(http_request *req, int status, const char *content_type, const char *extra_headers,
                  size_t extra_len, const char *body, size_t body_len)
{
    client_conn *c = conn_of(req);
    char head[HEAD_MAX];
    size_t hlen = format_head(c, status, content_type, false, body_len, head);
    uv_buf_t bufs[5] = {
        uv_buf_init(head, (unsigned)hlen),
        uv_buf_init((char *)(extra_headers ? extra_headers : ""), (unsigned)(extra_headers ? extra_len : 0)),
        uv_buf_init((char *)(req->head_extra ? req->head_extra : ""), (unsigned)req->head_extra_len),
        uv_buf_init("\r\n", 2),
        uv_buf_init((char *)body, req->method == HTTP_HEAD ? 0 : (unsigned)body_len),
    };
    if (req->method == HTTP_HEAD) body_len = 0; /* the head says how long the body would be */
    req->status = status;
    req->response_started = true;
    if (!req->first_byte_ns) req->first_byte_ns = time_now_ns();
    req->bytes_out += hlen + extra_len + req->head_extra_len + 2 + body_len;
    http_conn__write(c, bufs, 5);
    http_conn__request_finished(c);
}

void http_stream_begin(http_request *req, int status, const char *content_type, const char *extra_headers,
                       size_t extra_len)
{
    client_conn *c = conn_of(req);
    char head[HEAD_MAX];
    size_t hlen = format_head(c, status, content_type, true, 0, head);
    uv_buf_t bufs[4] = {
        uv_buf_init(head, (unsigned)hlen),
        uv_buf_init((char *)(extra_headers ? extra_headers : ""), (unsigned)(extra_headers ? extra_len : 0)),
        uv_buf_init((char *)(req->head_extra ? req->head_extra : ""), (unsigned)req->head_extra_len),
        uv_buf_init("\r\n", 2),
    };
    req->status = status;
    req->response_started = true;
    req->chunked = true;
    if (!req->first_byte_ns) req->first_byte_ns = time_now_ns();
    req->bytes_out += hlen + extra_len + req->head_extra_len + 2;
    http_conn__write(c, bufs, 4);
}

bool http_stream_write(http_request *req, const char *data, size_t len)
{
    client_conn *c = conn_of(req);
    if (!len) return c->write_pending >= HTTP_OUTPUT_HIGH_WATER;
    char size_line[24];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    uv_buf_t bufs[3] = {
        uv_buf_init(size_line, (unsigned)n),
        uv_buf_init((char *)data, (unsigned)len),
        uv_buf_init("\r\n", 2),
    };
    req->bytes_out += (size_t)n + len + 2;
    http_conn__write(c, bufs, 3);
    if (c->write_pending >= HTTP_OUTPUT_HIGH_WATER) {
        c->want_writable = true;
        http_conn__watch_stall(c);
        return true;
    }
    return false;
}

void http_stream_end(http_request *req, const char *data, size_t len)
{
    client_conn *c = conn_of(req);
    char size_line[24];
    int n = len ? snprintf(size_line, sizeof size_line, "%zx\r\n", len) : 0;
    uv_buf_t bufs[4] = {
        uv_buf_init(size_line, (unsigned)n),
        uv_buf_init((char *)data, (unsigned)len),
        uv_buf_init("\r\n", len ? 2 : 0),
        uv_buf_init("0\r\n\r\n", 5),
    };
    req->bytes_out += (size_t)n + len + (len ? 2 : 0) + 5;
    http_conn__write(c, bufs, 4);
    http_conn__request_finished(c);
}
