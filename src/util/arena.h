/* arena.h — a per-request bump allocator, freed in one call when the request ends.
 *
 * Each connection owns one arena for its current request (h2o's req pool, nginx's pools):
 * header copies, decoded strings, curl header nodes and the like come from it, and
 * arena_reset() between keep-alive requests keeps the first block so a steady stream of
 * small requests allocates nothing. Blocks beyond the first are freed on reset, so one large
 * request does not pin its memory on an idle connection. Not thread-safe: an arena belongs
 * to one worker. */
#ifndef AIGW_UTIL_ARENA_H
#define AIGW_UTIL_ARENA_H

#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;  /* current block; older blocks chained behind it */
    arena_block *first; /* kept across resets */
    size_t first_size;
} arena;

/* Prepares an empty arena whose first block (allocated lazily) holds first_size bytes. */
void arena_init(arena *a, size_t first_size);
/* Returns size bytes aligned for any type; never NULL (aborts on OOM). Valid until reset. */
void *arena_alloc(arena *a, size_t size);
/* Copies len bytes into the arena and adds a terminating NUL. */
char *arena_strndup(arena *a, const char *s, size_t len);
/* Invalidates everything allocated; keeps the first block for reuse. */
void arena_reset(arena *a);
/* Frees every block; the arena may be initialised again. */
void arena_free(arena *a);

#endif
