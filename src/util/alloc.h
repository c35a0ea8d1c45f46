/* alloc.h — the one place where the project asks the C library for memory.
 *
 * Out of memory aborts with a message (as Redis and h2o do): a gateway that cannot allocate
 * a few hundred bytes has no useful way to go on, and checking every call site hides real
 * bugs in noise. Every size passed here must therefore be bounded by a configured limit that
 * input cannot exceed (body size, header size, stream buffer). */
#ifndef AIGW_UTIL_ALLOC_H
#define AIGW_UTIL_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

#endif
