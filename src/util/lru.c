/* lru.c — a bounded hash table in order of use (lru.h). */
#include "util/lru.h"

#include <stdlib.h>
#include <string.h>

void lru_init(lru_table *t, lru_node **buckets, size_t nbuckets)
{
    memset(t, 0, sizeof *t);
    t->buckets = buckets;
    t->nbuckets = nbuckets;
}

/* Where the pointer to the entry of key is (its bucket's head or a predecessor's chain), or
 * where it would be: the end of its bucket. */
static lru_node **slot_of(lru_table *t, uint64_t hash, const void *key, size_t key_len)
{
    lru_node **n = &t->buckets[hash & (t->nbuckets - 1)];
    while (*n && ((*n)->hash != hash || (*n)->key_len != key_len || memcmp((*n)->key, key, key_len) != 0))
        n = &(*n)->chain;
    return n;
}

static void order_unlink(lru_table *t, lru_node *n)
{
    if (n->newer)
        n->newer->older = n->older;
    else
        t->newest = n->older;
    if (n->older)
        n->older->newer = n->newer;
    else
        t->oldest = n->newer;
    n->newer = n->older = NULL;
}

static void order_push(lru_table *t, lru_node *n)
{
    n->older = t->newest;
    n->newer = NULL;
    if (t->newest) t->newest->newer = n;
    t->newest = n;
    if (!t->oldest) t->oldest = n;
}

/* Unlinks and frees the entry *slot points at. */
static void drop_at(lru_table *t, lru_node **slot)
{
    lru_node *n = *slot;
    *slot = n->chain;
    order_unlink(t, n);
    t->bytes -= n->bytes;
    t->entries--;
    free(n);
}

void lru_remove(lru_table *t, lru_node *n)
{
    drop_at(t, slot_of(t, n->hash, n->key, n->key_len));
}

lru_node *lru_find(lru_table *t, uint64_t hash, const void *key, size_t key_len, uint64_t now_ns)
{
    lru_node **slot = slot_of(t, hash, key, key_len), *n = *slot;
    if (n && n->expires_ns <= now_ns) {
        t->expired++;
        drop_at(t, slot);
        return NULL;
    }
    return n;
}

void lru_touch(lru_table *t, lru_node *n)
{
    order_unlink(t, n);
    order_push(t, n);
}

/* Drops the oldest until need more bytes fit under max. */
static void make_room(lru_table *t, size_t need, size_t max, uint64_t now_ns)
{
    while (t->oldest && t->bytes + need > max) {
        if (t->oldest->expires_ns <= now_ns)
            t->expired++;
        else
            t->evicted++;
        lru_remove(t, t->oldest);
    }
}

void lru_insert(lru_table *t, lru_node *n, size_t max_bytes, uint64_t now_ns)
{
    lru_node **slot = slot_of(t, n->hash, n->key, n->key_len);
    if (*slot) drop_at(t, slot); /* replaced: the newer wins */
    make_room(t, n->bytes, max_bytes, now_ns);
    slot = &t->buckets[n->hash & (t->nbuckets - 1)]; /* eviction may have changed the chain */
    n->chain = *slot;
    *slot = n;
    order_push(t, n);
    t->bytes += n->bytes;
    t->entries++;
}

void lru_shrink(lru_table *t, size_t max_bytes, uint64_t now_ns)
{
    make_room(t, 0, max_bytes, now_ns);
}

void lru_clear(lru_table *t)
{
    while (t->oldest)
        lru_remove(t, t->oldest);
}
