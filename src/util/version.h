/* version.h — the release number, for `aigw version` and the aigw_build_info metric. */
#ifndef AIGW_UTIL_VERSION_H
#define AIGW_UTIL_VERSION_H

#define AIGW_VERSION "0.1.0"

#endif
