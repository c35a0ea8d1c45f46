/* conninfo.h — what `auth.store` names: a SQLite file or a PostgreSQL database, and how to show
 * a PostgreSQL connection string without its password.
 *
 * Pure string work, here in util because the config (which resolves a file path beside the
 * config but leaves a database URL alone) and the store (which picks its driver and names the
 * store in its messages) both need the same answer. */
#ifndef AIGW_UTIL_CONNINFO_H
#define AIGW_UTIL_CONNINFO_H

#include <stdbool.h>
#include <stddef.h>

/* True when s is a PostgreSQL connection string libpq reads: a URI (postgres:// or
 * postgresql://) or a keyword string that starts with one of libpq's usual keywords
 * ("host=… dbname=…"). Anything else is a SQLite file path. */
bool conninfo_is_postgres(const char *s);

/* s with every password in it replaced by "***" (the URI's user:password@, a password=
 * query parameter, a password= keyword), truncated to fit out (len > 0). A path comes out as
 * it went in. What aigw logs or answers when it names the store. */
void conninfo_redact(const char *s, char *out, size_t len);

/* Every password written in conninfo (as conninfo_redact finds them) replaced by "***" where it
 * occurs in msg (a NUL-terminated string in a buffer of len bytes), for messages from libpq,
 * which quote a malformed token — a password among them — as written. */
void conninfo_scrub(const char *conninfo, char *msg, size_t len);

#endif
