/* arena.c — bump allocation in chained blocks; see arena.h for the contract. */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct arena_block {
    arena_block *next;
    size_t size, used;
    max_align_t data[]; /* aligned storage */
};

#define ARENA_ALIGN (sizeof(max_align_t))

static arena_block *block_new(size_t size)
{
    arena_block *b = xmalloc(sizeof(*b) + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void arena_init(arena *a, size_t first_size)
{
    a->head = a->first = NULL;
    a->first_size = first_size;
}

void *arena_alloc(arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (!a->first) a->head = a->first = block_new(a->first_size);
    arena_block *b = a->head;
    if (b->size - b->used < size) {
        /* Grow geometrically, and never less than the request itself. */
        size_t want = b->size * 2;
        if (want < size) want = size;
        arena_block *nb = block_new(want);
        nb->next = b;
        a->head = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void arena_reset(arena *a)
{
    arena_block *b = a->head;
    while (b && b != a->first) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first;
    if (a->first) a->first->used = 0;
}

void arena_free(arena *a)
{
    arena_reset(a);
    free(a->first);
    a->head = a->first = NULL;
}
