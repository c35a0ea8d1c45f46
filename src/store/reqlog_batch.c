/* reqlog_batch.c — request log entries packed into one blob and read back in place
 * (reqlog_batch.h says the layout and why). */
#include "store/reqlog_batch.h"

#include <string.h>

#define MAGIC "RLB2"
#define MAGIC_V1 "RLB1"
#define MAGIC_LEN 4
#define VARINT_MAX 10
#define NUMBERS 13 /* zigzag varints an entry carries beside its index */
#define STRINGS REQLOG_BATCH_STRINGS

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t reqlog_batch_hash(const char *s)
{
    return hash_bytes(s, strlen(s));
}

void reqlog_batch_init(reqlog_batch_writer *w)
{
    memset(w, 0, sizeof *w);
    buf_init(&w->data, (size_t)REQLOG_BATCH_BYTES_MAX * 64); /* one entry may pass the soft bound */
}

void reqlog_batch_reset(reqlog_batch_writer *w)
{
    buf_reset(&w->data);
    w->n = 0;
}

/* Whether string i of the entry being added is the last entry's (a reference is written). */
static bool same_as_last(const reqlog_batch_writer *w, int i, const char *s, size_t len)
{
    return w->n && w->last_len[i] == len && !memcmp(w->data.data + w->last_at[i], s, len);
}

void reqlog_batch_free(reqlog_batch_writer *w)
{
    buf_free(&w->data);
}

bool reqlog_batch_full(const reqlog_batch_writer *w)
{
    return w->n >= REQLOG_BATCH_ROWS_MAX || w->data.len >= REQLOG_BATCH_BYTES_MAX;
}

/* e's strings in the blob's order, the required ones given a default when NULL. */
static void entry_strings(const reqlog_entry *e, const char *s[REQLOG_BATCH_STRINGS])
{
    s[RLB_REQUEST_ID] = e->request_id ? e->request_id : "";
    s[RLB_TRACE_ID] = e->trace_id;
    s[RLB_KEY_ID] = e->key_id;
    s[RLB_KEY_ALIAS] = e->key_alias;
    s[RLB_TEAM] = e->team;
    s[RLB_METHOD] = e->method ? e->method : "-";
    s[RLB_PATH] = e->path ? e->path : "";
    s[RLB_ROUTE] = e->route;
    s[RLB_PROVIDER] = e->provider;
    s[RLB_MODEL] = e->model;
    s[RLB_UPSTREAM_MODEL] = e->upstream_model;
    s[RLB_ERROR_CLASS] = e->error_class;
    s[RLB_ERROR] = e->error;
    s[RLB_CACHE] = e->cache;
    s[RLB_ATTEMPTS] = e->attempts ? e->attempts : "[]";
    s[RLB_REQUEST_BODY] = e->request_body;
    s[RLB_PROMPT_ID] = e->prompt_id;
    s[RLB_ROUTE_REASON] = e->route_reason;
}

bool reqlog_batch_add(reqlog_batch_writer *w, const reqlog_entry *e, unsigned index)
{
    const char *strings[STRINGS];
    entry_strings(e, strings);
    size_t lens[STRINGS];
    for (int i = 0; i < STRINGS; i++)
        lens[i] = strings[i] ? strlen(strings[i]) : 0; /* the defaults' too: add_sized gives the same */
    return reqlog_batch_add_sized(w, e, lens, index);
}

bool reqlog_batch_add_sized(reqlog_batch_writer *w, const reqlog_entry *e,
                            const size_t lens[REQLOG_BATCH_STRINGS], unsigned index)
{
    if (reqlog_batch_full(w)) return false;
    const char *strings[STRINGS];
    entry_strings(e, strings);
    size_t room = MAGIC_LEN + (NUMBERS + 1) * VARINT_MAX + 9;
    for (int i = 0; i < STRINGS; i++)
        room += (strings[i] ? lens[i] : 0) + 1 + VARINT_MAX;
    char *start = buf_room(&w->data, room);
    if (!start) return false;
    uint8_t *p = (uint8_t *)start;
    if (!w->data.len) {
        memcpy(p, MAGIC, MAGIC_LEN);
        p += MAGIC_LEN;
    }
    p = put_varint(p, index);
    /* the time less the last entry's, wrapping (times may come from a damaged blob in a rewrite) */
    int64_t delta = w->n ? (int64_t)((uint64_t)e->time_us - (uint64_t)w->last_time_us) : e->time_us;
    int64_t numbers[NUMBERS] = {delta,
                                e->status,
                                e->prompt_tokens,
                                e->completion_tokens,
                                e->cached_tokens,
                                e->cache_write_tokens,
                                e->reasoning_tokens,
                                e->retries,
                                e->fallbacks,
                                e->ttfb_us,
                                e->total_us,
                                e->overhead_us,
                                e->prompt_id ? e->prompt_version : 0};
    for (int i = 0; i < NUMBERS; i++)
        p = put_varint(p, zigzag(numbers[i]));
    uint64_t cost;
    double c = e->cost_usd < 0 ? -1 : e->cost_usd;
    memcpy(&cost, &c, sizeof cost);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(cost >> (8 * i));
    *p++ = e->stream ? 1 : 0;
    for (int i = 0; i < STRINGS; i++) {
        if (!strings[i]) {
            *p++ = 0;
            w->last_len[i] = SIZE_MAX;
        } else if (same_as_last(w, i, strings[i], lens[i])) {
            *p++ = 1;
        } else {
            p = put_varint(p, lens[i] + 2);
            w->last_at[i] = (size_t)((char *)p - w->data.data);
            w->last_len[i] = lens[i];
            memcpy(p, strings[i], lens[i]);
            p += lens[i];
            *p++ = '\0';
        }
    }
    buf_commit(&w->data, (char *)p);
    w->last_time_us = e->time_us;
    if (!w->n || e->time_us < w->ts_min) w->ts_min = e->time_us;
    if (!w->n || e->time_us > w->ts_max) w->ts_max = e->time_us;
    w->id_hashes[w->n++] = hash_bytes(strings[RLB_REQUEST_ID], lens[RLB_REQUEST_ID]);
    return true;
}

/* The filter's size for n ids: 16 bits an id, at least 8 bytes. */
static size_t ids_size(size_t n)
{
    size_t bytes = n * 2;
    return bytes < 8 ? 8 : bytes > REQLOG_IDS_MAX_BYTES ? REQLOG_IDS_MAX_BYTES : bytes;
}

/* The four probes of hash h in a filter of bits bits. */
#define PROBE(h, k, bits) ((size_t)(((h) >> (16 * (k))) & 0xffff) % (bits))

size_t reqlog_batch_ids(const reqlog_batch_writer *w, uint8_t *out)
{
    size_t size = ids_size(w->n), bits = size * 8;
    memset(out, 0, size);
    for (size_t i = 0; i < w->n; i++)
        for (int k = 0; k < 4; k++) {
            size_t b = PROBE(w->id_hashes[i], k, bits);
            out[b / 8] |= (uint8_t)(1u << (b % 8));
        }
    return size;
}

bool reqlog_ids_may_hold(const void *ids, size_t len, const char *request_id)
{
    if (!ids || !len) return true; /* no filter: read the batch */
    const uint8_t *f = ids;
    uint64_t h = reqlog_batch_hash(request_id);
    size_t bits = len * 8;
    for (int k = 0; k < 4; k++) {
        size_t b = PROBE(h, k, bits);
        if (!(f[b / 8] & (1u << (b % 8)))) return false;
    }
    return true;
}

/* A varint at *p, before end; *p moves past it. False when it runs past end or past 64 bits. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p == end) return false;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* ---- attempts ---------------------------------------------------------------------------------- */

void reqlog_attempts_start(buf *out)
{
    buf_reset(out);
    buf_append(out, "\x01", 1);
}

/* A packed string: varint 1 for NULL, else length + 2 and the bytes. */
static uint8_t *put_attempt_text(uint8_t *p, const char *s, size_t len)
{
    if (!s) return put_varint(p, 1);
    p = put_varint(p, len + 2);
    memcpy(p, s, len);
    return p + len;
}

/* Thousandths of a duration in milliseconds, never negative, at most about 31 years (so the
 * value + 1 a varint carries never wraps to 0). */
static uint64_t thousandths(double ms)
{
    return !(ms > 0) ? 0 : ms < 1e12 ? (uint64_t)(ms * 1000 + 0.5) : (uint64_t)1e15;
}

bool reqlog_attempts_add(buf *out, const reqlog_attempt *a)
{
    const char *text[6] = {a->provider, a->model, a->step, a->note, a->role, a->outcome};
    size_t len[6], room = 9 * VARINT_MAX;
    for (int i = 0; i < 6; i++) {
        len[i] = text[i] ? strlen(text[i]) : 0;
        room += len[i];
    }
    uint8_t *p = (uint8_t *)buf_room(out, room);
    if (!p) return false;
    for (int i = 0; i < 6; i++)
        p = put_attempt_text(p, text[i], len[i]);
    p = put_varint(p, (uint64_t)(a->status > 0 ? a->status : 0) + 1);
    p = put_varint(p, thousandths(a->ms) + 1);
    p = put_varint(p, thousandths(a->wait_ms) + 1);
    buf_commit(out, (char *)p);
    return true;
}

/* A packed attempts list, read with every length checked against its end. */
typedef struct attempts_reader {
    const uint8_t *p, *end;
} attempts_reader;

static bool attempts_varint(attempts_reader *r, uint64_t *out)
{
    return read_varint(&r->p, r->end, out) && *out > 0; /* every value is stored + 1 */
}

static bool attempts_text(attempts_reader *r, const char **s, size_t *len)
{
    uint64_t n;
    if (!attempts_varint(r, &n)) return false;
    *s = NULL;
    *len = 0;
    if (n == 1) return true;
    if (n - 2 > (uint64_t)(r->end - r->p)) return false;
    *s = (const char *)r->p;
    *len = (size_t)(n - 2);
    r->p += n - 2;
    return true;
}

static void json_text(buf *out, const char *name, const char *s, size_t len)
{
    buf_append_str(out, name);
    buf_append_json_string(out, s ? s : "", len);
}

bool reqlog_attempts_json(const char *attempts, buf *out)
{
    buf_reset(out);
    if (!attempts || *attempts != REQLOG_ATTEMPTS_PACKED) {
        buf_append_str(out, attempts ? attempts : "[]"); /* the JSON text of an older entry */
        return !out->overflowed;
    }
    attempts_reader r = {(const uint8_t *)attempts + 1, (const uint8_t *)attempts + strlen(attempts)};
    buf_append(out, "[", 1);
    for (int i = 0; r.p < r.end; i++) {
        const char *t[6];
        size_t n[6];
        uint64_t status, ms, wait_ms;
        for (int k = 0; k < 6; k++)
            if (!attempts_text(&r, &t[k], &n[k])) return false;
        if (!attempts_varint(&r, &status) || !attempts_varint(&r, &ms) || !attempts_varint(&r, &wait_ms))
            return false;
        json_text(out, i ? ",{\"provider\":" : "{\"provider\":", t[0], n[0]);
        json_text(out, ",\"model\":", t[1], n[1]);
        if (t[2]) json_text(out, ",\"step\":", t[2], n[2]);
        json_text(out, ",\"role\":", t[4] ? t[4] : "first", t[4] ? n[4] : 5);
        json_text(out, ",\"outcome\":", t[5], n[5]);
        buf_append_str(out, ",\"status\":");
        if (status > 1)
            buf_append_int(out, (long long)((status - 1) & INT64_MAX));
        else
            buf_append_str(out, "null");
        buf_append_str(out, ",\"ms\":");
        buf_append_milli(out, (long long)((ms - 1) & INT64_MAX));
        buf_append_str(out, ",\"wait_ms\":");
        buf_append_milli(out, (long long)((wait_ms - 1) & INT64_MAX));
        if (t[3]) json_text(out, ",\"note\":", t[3], n[3]);
        buf_append(out, "}", 1);
    }
    buf_append(out, "]", 1);
    return !out->overflowed;
}

/* ---- reading ---------------------------------------------------------------------------------- */

bool reqlog_batch_open(reqlog_batch_reader *r, const void *data, size_t len, int64_t batch_seq)
{
    if (!data || len < MAGIC_LEN) return false;
    bool v1 = !memcmp(data, MAGIC_V1, MAGIC_LEN);
    if (!v1 && memcmp(data, MAGIC, MAGIC_LEN)) return false;
    *r = (reqlog_batch_reader){.p = (const uint8_t *)data + MAGIC_LEN,
                               .end = (const uint8_t *)data + len,
                               .batch_seq = batch_seq,
                               .v1 = v1};
    return true;
}

static bool get_varint(reqlog_batch_reader *r, uint64_t *out)
{
    return read_varint(&r->p, r->end, out);
}

/* String i in place: 0 for NULL, 1 for the last entry's (not in "RLB1"), else its length + 2
 * ("RLB1": + 1), its bytes and a NUL that must be there. */
static bool get_string(reqlog_batch_reader *r, int i, const char **out)
{
    uint64_t n;
    if (!get_varint(r, &n)) return false;
    if (!n) {
        *out = NULL;
        return true;
    }
    if (!r->v1) {
        if (n == 1) {
            if (!r->entries) return false; /* nothing to refer to */
            *out = r->last[i];
            return true;
        }
        n--;
    }
    if (n > (uint64_t)(r->end - r->p) || r->p[n - 1] != '\0') return false;
    *out = (const char *)r->p;
    r->p += n;
    return true;
}

int reqlog_batch_next(reqlog_batch_reader *r, reqlog_entry *e)
{
    if (r->p == r->end) return 0;
    uint64_t index, z[NUMBERS];
    if (!get_varint(r, &index) || index > 0xffff) return -1;
    for (int i = 0; i < NUMBERS; i++)
        if (!get_varint(r, &z[i])) return -1;
    if (r->end - r->p < 9) return -1;
    uint64_t cost = 0;
    for (int i = 0; i < 8; i++)
        cost |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memset(e, 0, sizeof *e);
    memcpy(&e->cost_usd, &cost, sizeof cost);
    if (!(e->cost_usd >= 0)) e->cost_usd = -1; /* negative or NaN: unknown */
    e->stream = *r->p++ != 0;
    const char **strings[STRINGS] = {
        &e->request_id, &e->trace_id, &e->key_id,   &e->key_alias,    &e->team,           &e->method,
        &e->path,       &e->route,    &e->provider, &e->model,        &e->upstream_model, &e->error_class,
        &e->error,      &e->cache,    &e->attempts, &e->request_body, &e->prompt_id,      &e->route_reason};
    for (int i = 0; i < STRINGS; i++) {
        if (!get_string(r, i, strings[i])) return -1;
        r->last[i] = *strings[i];
    }
    if (!e->request_id || !e->method || !e->path || !e->attempts) return -1;
    e->seq = REQLOG_SEQ(r->batch_seq, index);
    int64_t v[NUMBERS];
    for (int i = 0; i < NUMBERS; i++)
        v[i] = unzigzag(z[i]);
    /* a time is its previous entry's plus the difference (wrapping, never undefined) */
    e->time_us = r->v1 || !r->entries ? v[0] : (int64_t)((uint64_t)r->last_time_us + (uint64_t)v[0]);
    r->last_time_us = e->time_us;
    r->entries++;
    e->status = (int)v[1];
    e->prompt_tokens = v[2];
    e->completion_tokens = v[3];
    e->cached_tokens = v[4];
    e->cache_write_tokens = v[5];
    e->reasoning_tokens = v[6];
    e->retries = (int)v[7];
    e->fallbacks = (int)v[8];
    e->ttfb_us = v[9];
    e->total_us = v[10];
    e->overhead_us = v[11];
    e->prompt_version = v[12];
    return 1;
}
