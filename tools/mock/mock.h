/* mock.h — aigw-mock's shared types and the functions its files call in one another.
 *
 * aigw-mock imitates four wire formats of three providers (OpenAI's chat completions and
 * Responses API, Anthropic, Gemini). The layout:
 *   sbuf.c       growable strings, JSON string escaping, base64, hashing
 *   stats.c      /__stats counters shared by all workers
 *   faults.c     [[mock:...]] directives and x-mock-* headers
 *   server.c     listeners, connections, HTTP parsing, response heads, stream events, routing
 *   reply.c      the format-independent rules: a canonical view of a request → a canonical reply
 *   openai.c     /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models
 *   responses.c  /v1/responses (OpenAI's Responses API)
 *   anthropic.c  /v1/messages, /v1/messages/count_tokens
 *   gemini.c     /v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens
 *   inspect.c    strict checks beyond the required fields: tool results must answer a call,
 *                image bytes must decode (their SHA-256 is echoed)
 *   record.c     the last requests received (method, URL, headers, body), GET /__requests
 *   select.c     POST /v2/modelRouter/modelSelect: a model-select service (Not Diamond's shape)
 * The contract is tools/mock/README.md. Each format file only reads its request into a
 * mock_view and writes a mock_reply in its own shape, so a gateway that translates between
 * formats can be checked against the mock's native answer.
 *
 * One header rather than one per file: the files are one small program, and the connection
 * type is shared by all of them. */
#ifndef AIGW_MOCK_H
#define AIGW_MOCK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#define MAX_BODY (32u * 1024 * 1024)
#define MAX_HEAD 65536
#define MAX_DELAY_MS 600000
#define MAX_WORDS 1000000
#define MAX_TOOL_CALLS 1100 /* above a gateway's cap of 1024 per translated stream */
#define MAX_TOOLS 128
#define MAX_STOPS 16
#define MAX_SCOPES 1024
#define MAX_MODELS 128
#define MAX_RL_WINDOW_MS 86400000L /* one day */

/* ---- sbuf.c: a growable string (always NUL-terminated once reserved) -------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

void sb_reserve(sbuf *b, size_t extra);
void sb_add(sbuf *b, const char *s, size_t n);
void sb_str(sbuf *b, const char *s);
void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string, escaped as JavaScript's JSON.stringify does (\n, \", \u0001). */
void sb_json(sbuf *b, const char *s, size_t n);
void sb_json_str(sbuf *b, const char *s); /* NUL-terminated s; NULL gives null */
void sb_base64(sbuf *out, const unsigned char *p, size_t n);
uint64_t fnv1a(const void *data, size_t len, uint64_t h);
#define FNV_OFFSET 0xcbf29ce484222325ULL

/* ---- stats.c ------------------------------------------------------------------------------ */

typedef enum mock_path {
    P_CHAT,
    P_RESPONSES,
    P_COMPLETIONS,
    P_EMBEDDINGS,
    P_MODELS,
    P_MESSAGES,
    P_COUNT_TOKENS,
    P_GEMINI_GENERATE,
    P_GEMINI_STREAM,
    P_GEMINI_COUNT,
    P_GEMINI_V1_GENERATE, /* the same three under /v1/models/ (the stable version) */
    P_GEMINI_V1_STREAM,
    P_GEMINI_V1_COUNT,
    P_MODEL_SELECT, /* Not Diamond's model_select (select.c) */
    P_OTHER,
    P__COUNT
} mock_path;

void stats_request(mock_path path, const char *model);
void stats_status(int status);
void stats_uncount_status(int status); /* /__stats and /__reset are not counted */
void stats_stream_started(void);
void stats_stream_ended(bool completed); /* completed, or aborted by the client */
void stats_in_flight(int delta);
uint64_t stats_scope_hit(const char *scope); /* how many requests of the scope came before */
/* Adds one reply's usage to the totals /__stats shows (usage.prompt_tokens, …). */
void stats_usage(size_t prompt, size_t completion);
/* Counts one request against the scope's rate limit: `limit` requests per fixed window of
 * `window_ms`, the first window starting at the scope's first request, the next ones right
 * after (start + k·window). Returns false, and counts it as rate_limited, when the window's
 * budget was already used (the request consumes none). Sets the budget left after this request
 * and the ms until the window ends. */
bool stats_rate_limit(const char *scope, long limit, long window_ms, long *remaining, long *reset_ms);
void stats_json(sbuf *b);
void stats_reset(void);

/* ---- faults.c ----------------------------------------------------------------------------- */

typedef struct faults {
    int status;      /* 0: none */
    int retry_after; /* seconds, for 429 (and Anthropic 529) */
    long fail_first; /* 0: none */
    char scope[128];
    long ttfb_ms, chunk_delay_ms, drop_after, words;
    long stream_error;        /* after N events an in-band error ends the stream; 0: none */
    long tool_calls;          /* rule 2: N tool calls when tools are offered */
    long cached, cache_write; /* usage: prompt tokens read from / written to a cache */
    long reasoning;           /* usage: reasoning (thinking) tokens */
    long rl_requests;         /* rate limit: requests per window of the scope; 0: none */
    long rl_window_ms;        /* the window, default 60000 */
    bool reset, hang;
    /* the upstream misbehaving (2xx replies and streams only) */
    bool header_cr;  /* a rate-limit header whose value holds a bare CR and another "header" */
    bool gzip_label; /* Content-Encoding: gzip on a body that is sent as it is */
    bool bad_shape;  /* a JSON reply of the wrong shape for every format */
    long trickle_ms; /* a JSON reply sent one byte every N ms */
    char pick[128];  /* rule 3's text: one of these '|'-separated answers, in turn per scope */
    /* the model-select imitation (select.c): which answer, after how long, with what status */
    char select[128];
    long select_ms;
    int select_status;
} faults;

/* Sets one directive (key and value need no NUL). Unknown keys are ignored. */
void faults_set(faults *f, const char *key, size_t klen, const char *val, size_t vlen);
/* Header directives win over body directives: fills what `f` (from headers) left unset from
 * every [[mock:...]] in the raw body, then bounds every value. */
void faults_merge_body(faults *f, const char *body, size_t len);

/* ---- server.c: connections and responses ------------------------------------------------- */

typedef struct worker worker;
typedef struct conn conn;

typedef struct chunk {
    char *data;
    size_t len;
} chunk;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    worker *w;
    http_parser parser;
    sbuf url, hfield, hvalue, body;
    bool in_value;
    faults hdr_faults;
    /* request headers the formats check (presence only) */
    bool hdr_api_key, hdr_authorization, hdr_anthropic_version, hdr_goog_api_key;
    char req_id[48];
    char rl_headers[256]; /* the rate-limit headers of the request being answered, or "" */
    long rl_retry_ms;     /* a rate limit's 429: the exact wait (OpenAI's retry-after-ms); 0: none */
    bool keepalive, busy, closing, message_done;
    sbuf pending; /* bytes after the current request (pipelining) */
    /* the response being sent */
    sbuf head; /* status line + headers (+ a whole body), sent after ttfb */
    chunk *events;
    size_t nevents, next_event, events_cap;
    bool streaming, stream_open;
    long chunk_delay_ms, drop_after;
    conn *next_conn, *prev_conn;
    int handles;
    /* record.c: the request's headers as JSON pairs, bounded (RECORD_HEADER_BYTES) */
    sbuf rec_headers;
    bool rec_headers_truncated;
    /* inspect.c: header lines every response to the request carries (x-mock-image-sha256) */
    sbuf extra_head;
};

/* A number unique within the process, for response ids. */
uint64_t conn_next_id(conn *c);
int conn_worker_id(const conn *c);

/* Starts a response head into c->head: status line, Content-Type, x-request-id, the
 * rate-limit headers, and either Content-Length or chunked encoding; counts the status. The caller may append
 * headers, then must append the blank line. */
void head_begin(conn *c, int status, const char *content_type, size_t content_length, bool chunked);
/* A whole JSON response (status, optional extra header lines ending in CRLF, body). */
void respond_body(conn *c, int status, const char *extra_headers, const char *body, size_t len, long ttfb);
/* A successful JSON reply that honours drop_after (half the body, then close) and ttfb. */
void respond_reply(conn *c, const char *extra_headers, const char *body, size_t len, const faults *f);
/* Closes the connection with a TCP RST. */
void respond_reset(conn *c);

/* A stream: stream_begin sends nothing yet; stream_event queues one SSE event (already framed,
 * e.g. "data: {...}\n\n"); stream_end applies stream_error (the events after the first N are
 * replaced by `error_event`, and the response ends there), adds the chunked terminator, and
 * starts sending after ttfb_ms with chunk_delay_ms between events and drop_after. */
void stream_begin(conn *c, const char *content_type, const char *extra_headers, const faults *f);
void stream_event(conn *c, const char *data, size_t len);
void stream_end(conn *c, const faults *f, const char *error_event, size_t error_len);

/* Whether a query string (the part after '?') has name=value; value NULL: any non-empty value. */
bool query_has(const char *query, const char *name, const char *value);

/* ---- record.c: what was received ---------------------------------------------------------- */

#define RECORD_DEFAULT 64               /* requests kept */
#define RECORD_MAX 1024                 /* the most --record accepts */
#define RECORD_BODY_BYTES (1u << 20)    /* body bytes kept per request */
#define RECORD_HEADER_BYTES (16u << 10) /* header JSON kept per request */
#define RECORD_VALUE_BYTES 4096u        /* bytes kept of one header value */

/* Sets how many requests are kept (0: recording off). Call before the workers start. */
void record_configure(int keep);
/* One header of the request being read, appended to c->rec_headers within the bounds. */
void record_header(conn *c, const char *name, size_t nlen, const char *value, size_t vlen);
/* Keeps the request c has just read: method, URL, the headers gathered by record_header, the
 * body (bounded) and `images_json` (a JSON array, or NULL). Evicts the oldest past the limit. */
void record_request(conn *c, const char *method, const char *images_json);
void record_json(sbuf *out); /* {"requests":[…]}, oldest first */
void record_reset(void);

/* ---- reply.c: the format-independent rules ----------------------------------------------- */

/* The canonical view of a request. Strings in tools/stops/forced_tool point into the request's
 * JSON, which must outlive the view. */
typedef struct mock_view {
    size_t prompt_words;  /* words of the system text, every message's text and tool results */
    sbuf last_user;       /* raw text of the last user message that carries no tool results */
    int last_user_images; /* image parts of that message */
    sbuf results;         /* the trailing tool-result texts, joined with " | " */
    int nresults;
    /* the message being read */
    bool in_user, prev_had_results;
    sbuf last_assistant; /* raw text of the last assistant message (a judge's sample) */
    bool cot_format;     /* the system text asks for <output> tags (OptiLLM's cot_reflection) */
    sbuf msg_text, msg_results;
    int msg_images, msg_nresults;

    const char *tools[MAX_TOOLS];
    int ntools;
    const char *forced_tool; /* a named forced tool choice, or NULL */
    bool tool_any;           /* "required" / "any": one call to the first tool */
    bool tool_none;          /* tool choice "none": no tool calls */
    bool json_output;
    long max_tokens; /* -1: not given */
    bool thinking;
    const char *stops[MAX_STOPS];
    size_t stop_lens[MAX_STOPS];
    int nstops;
} mock_view;

typedef enum mock_finish { FINISH_STOP, FINISH_LENGTH, FINISH_STOP_SEQUENCE, FINISH_TOOL_CALLS } mock_finish;

typedef struct mock_call {
    const char *name;
    sbuf args; /* the arguments object, compact JSON */
} mock_call;

typedef struct mock_reply {
    sbuf text;     /* the text reply; empty when the reply is tool calls */
    sbuf thinking; /* empty unless thinking was asked */
    char signature[32];
    mock_call calls[MAX_TOOL_CALLS];
    int ncalls;
    mock_finish finish;
    const char *stop_sequence; /* the stop sequence that cut the text (FINISH_STOP_SEQUENCE) */
    size_t stop_sequence_len;
    size_t prompt, cached, cache_write, reasoning;
    size_t output_words; /* words of the text, or 10 per tool call */
} mock_reply;

void view_init(mock_view *v);
void view_free(mock_view *v);
void view_system(mock_view *v, const char *s, size_t n);
void view_message_begin(mock_view *v, bool user);
void view_text(mock_view *v, const char *s, size_t n); /* one text part; parts join with " " */
void view_image(mock_view *v);
void view_result(mock_view *v, const char *s, size_t n); /* one tool result's whole text */
void view_message_end(mock_view *v);
void view_tool(mock_view *v, const char *name);
void view_stop(mock_view *v, const char *s, size_t n);
void view_max_tokens(mock_view *v, json_t *n); /* an integer, or ignored */

/* Appends a content's text: a string, or an array whose elements' "text" strings join with
 * " " (an element without "text" adds nothing). */
void content_text(json_t *content, sbuf *out);

/* Applies the rules of README.md to the view and the directives. The reply owns its buffers:
 * free them with reply_free. */
void reply_build(const mock_view *v, const faults *f, mock_reply *r);
void reply_free(mock_reply *r);
size_t reply_completion_tokens(const mock_reply *r); /* output_words + reasoning */

size_t count_words(const char *s, size_t n);
/* Whitespace words of a prompt text, the [[mock:...]] directives left out. */
size_t count_prompt_words(const char *s, size_t n);
void clean_text(sbuf *s);
/* Splits text into pieces each ending after its spaces (concatenation == text). */
size_t next_word_piece(const char *s, size_t len, size_t pos);
/* Splits bytes into pieces of at most `max` bytes, never inside a UTF-8 sequence. */
size_t next_utf8_piece(const char *s, size_t len, size_t pos, size_t max);

/* ---- the formats -------------------------------------------------------------------------- */

/* API_RESPONSES: OpenAI's Responses API, whose errors and rate-limit headers are OpenAI's. */
typedef enum mock_api { API_OPENAI, API_ANTHROPIC, API_GEMINI, API_RESPONSES } mock_api;

/* ---- inspect.c: strict checks ----------------------------------------------------------------- */

/* Every tool result must answer a tool call made earlier in the conversation: OpenAI `tool`
 * messages by tool_call_id, Responses function_call_output items by call_id (an earlier
 * function_call item's), Anthropic tool_result blocks by tool_use_id, Gemini
 * functionResponse parts by name. Returns false with the provider-style message in `msg`. */
bool inspect_tool_results(mock_api api, json_t *req, char *msg, size_t size);
/* Decodes every inline image (OpenAI data URLs in chat image_url parts and Responses
 * input_image parts, Anthropic base64 sources, Gemini inlineData) in order and appends a JSON
 * array to `json`: {"mime","bytes","sha256"} per inline image, {"url"} per image given by
 * reference ({"file_id"} for a Responses image given by file id). Returns false with a message
 * in `msg` when an image's base64 is invalid; `json` is then incomplete. */
bool inspect_images(mock_api api, json_t *req, sbuf *json, char *msg, size_t size);

/* An error response in the API's shape, its type/status chosen from the HTTP status; retry
 * headers (or Google's RetryInfo) when the status asks for them. */
void api_error(conn *c, mock_api api, int status, const char *message, int retry_after, long ttfb);

void openai_error(conn *c, int status, const char *type, const char *message, int retry_after, long ttfb);
/* The same with the error's `param` and `code` (NULL: null). */
void openai_error_param(conn *c, int status, const char *type, const char *message, const char *param,
                        const char *code, int retry_after, long ttfb);
void openai_chat(conn *c, json_t *req, const char *model, const faults *f);
void openai_completion(conn *c, json_t *req, const char *model, const faults *f);
void openai_embeddings(conn *c, json_t *req, const char *model, const faults *f);
void openai_models(conn *c);

/* Body checks of the Responses API (a previous_response_id, which the stateless mock never
 * knows); answers and returns false when they fail. */
bool responses_validate(conn *c, json_t *req);
void responses_create(conn *c, json_t *req, const char *model, const faults *f);

void anthropic_error(conn *c, int status, const char *message, int retry_after, long ttfb);
/* Checks what the real API checks before reading the body (key, anthropic-version); answers
 * and returns false when the request fails them. */
bool anthropic_admit(conn *c);
/* Body checks (max_tokens, messages); answers and returns false when they fail. */
bool anthropic_validate(conn *c, json_t *req, bool count_tokens);
void anthropic_messages(conn *c, json_t *req, const char *model, const faults *f);
void anthropic_count_tokens(conn *c, json_t *req, const faults *f);

void gemini_error(conn *c, int status, const char *message, int retry_after, long ttfb);
bool gemini_admit(conn *c, const char *query); /* the API key: header or ?key= */
bool gemini_validate(conn *c, json_t *req, bool count_tokens);
/* sse: ?alt=sse (SSE events); otherwise a stream is one JSON array sent in chunks. */
void gemini_generate(conn *c, json_t *req, const char *model, bool stream, bool sse, const faults *f);
void gemini_count_tokens(conn *c, json_t *req, const faults *f);

/* ---- select.c: a model-select service ------------------------------------------------------ */

/* POST /v2/modelRouter/modelSelect: the chosen provider of req's llm_providers, as f says. */
void mock_model_select(conn *c, json_t *req, const faults *f);

#endif
