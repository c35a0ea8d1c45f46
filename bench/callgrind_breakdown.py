#!/usr/bin/env python3
"""callgrind_breakdown.py — where a callgrind profile's instructions went, grouped for aigw.

    callgrind_breakdown.py BASE.out RUN.out REQUESTS_BASE REQUESTS_RUN

BASE is a run of start-up plus REQUESTS_BASE requests, RUN the same with REQUESTS_RUN; every
figure printed is (RUN − BASE) / (REQUESTS_RUN − REQUESTS_BASE): instructions per request,
start-up and shutdown cancelled out.

Groups: self cost by object (libcurl, libc, malloc/free — libc's allocator, counted apart —
http-parser, libuv, jansson, aigw, other); aigw's own functions by source folder/file; and the
printf/scanf family of libc by who calls it (inclusive cost of every call from outside the
family into it). Reads callgrind's format directly (name compression, calls= lines, whose
following cost line is inclusive and not the caller's own)."""
import collections
import re
import sys

MALLOC = re.compile(r"^(malloc|free|calloc|realloc|cfree|_int_malloc|_int_free|_int_realloc|"
                    r"malloc_consolidate|tcache_\w+|__libc_(malloc|free|calloc|realloc)|"
                    r"unlink_chunk|__default_morecore|sysmalloc|__posix_memalign|_mid_memalign|"
                    r"aligned_alloc|posix_memalign|malloc_usable_size|arena_get2|_int_memalign)")
PRINTF = re.compile(r"(printf|scanf|^__printf_fp|^_IO_str_|"
                    r"^_IO_sputbackc|^_IO_default_|^_IO_setb|^_IO_no_init|"
                    r"^_IO_old_init|^_IO_init_internal|^_itoa_word|^_IO_padn|^__parse_one_spec|"
                    r"^read_int|^group_number|^_IO_enable_locks|^_IO_str_init_static|"
                    r"^__find_specmb|^__vstrfmon|^outstring|^_IO_sgetn|^__GI__IO)")


def parse(path):
    names = {k: {} for k in ("ob", "fl", "fn")}
    self_cost = collections.Counter()  # (ob, fl, fn) -> Ir
    calls = collections.Counter()  # (caller key, callee key) -> inclusive Ir
    total = 0
    ob = fl = fn = None
    cob = cfn = cfl = None
    pending_call = False

    def name(kind, value):
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
            return m.group(2)
        return names[kind].get(m.group(1), "?")

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    calls[((ob, fl, fn), (cob or ob, cfl or fl, cfn))] += cost
                    pending_call = False
                    cob = cfl = None  # cob=/cfi= name the called object for one call only
                else:
                    self_cost[(ob, fl, fn)] += cost
                continue
            if line.startswith("summary:"):
                total = int(line.split()[1])
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                ob = name("ob", value)
            elif key == "fl":
                fl = name("fl", value)
            elif key in ("fi", "fe"):
                name("fl", value)  # inlined code: the cost stays with the function
            elif key == "fn":
                fn = name("fn", value)
                cob = cfl = None
            elif key == "cob":
                cob = name("ob", value)
            elif key in ("cfl", "cfi"):
                cfl = name("fl", value)
            elif key == "cfn":
                cfn = name("fn", value)
            elif key == "calls":
                pending_call = True
    return total, self_cost, calls


def library(ob, fn):
    base = (ob or "").rsplit("/", 1)[-1]
    if base.startswith("libcurl"):
        return "libcurl"
    if base.startswith("libc.so") or base.startswith("libc-"):
        return "malloc/free" if MALLOC.match(fn or "") else "libc"
    if base.startswith("libhttp_parser"):
        return "http-parser"
    if base.startswith("libuv"):
        return "libuv"
    if base.startswith("libjansson"):
        return "jansson"
    if base == "aigw":
        return "aigw"
    if base.startswith("ld-linux"):
        return "ld.so"
    return "other: " + base


def aigw_part(fl):
    fl = fl or "?"
    m = re.search(r"(?:^|/)src/(\w+)/(\w+)\.[ch]$", fl)
    if not m:
        return "other: " + fl
    folder, stem = m.groups()
    if folder in ("server", "observe", "upstream") or (folder, stem) == ("util", "json"):
        return f"{folder}/{stem}"
    return folder + "/"


def groups(self_cost, calls):
    lib = collections.Counter()
    part = collections.Counter()
    for (ob, fl, fn), cost in self_cost.items():
        name = library(ob, fn)
        lib[name] += cost
        if name == "aigw":
            part[aigw_part(fl)] += cost
    top = collections.Counter()
    for (ob, fl, fn), cost in self_cost.items():
        if library(ob, fn) in ("libc", "malloc/free"):
            top[fn] += cost
    printf_by = collections.Counter()
    for (caller, callee), cost in calls.items():
        if PRINTF.search(callee[2] or "") and library(callee[0], callee[2]) == "libc" and \
                not (library(caller[0], caller[2]) == "libc" and PRINTF.search(caller[2] or "")):
            who = library(caller[0], caller[2])
            printf_by[f"{who}: {caller[2]} → {callee[2]}"] += cost
    return lib, part, printf_by, top


def main():
    base_path, run_path, n0, n1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0, s0, c0 = parse(base_path)
    t1, s1, c1 = parse(run_path)
    n = n1 - n0
    g0, g1 = groups(s0, c0), groups(s1, c1)
    per = lambda a, b, k: (b.get(k, 0) - a.get(k, 0)) / n
    total = (t1 - t0) / n
    print(f"instructions per request: {total:,.0f}  ({n1} − {n0} requests)\n")
    print("| library (self) | instructions / request | share |\n|---|---|---|")
    lib0, lib1 = g0[0], g1[0]
    for k in sorted(set(lib0) | set(lib1), key=lambda k: -per(lib0, lib1, k)):
        v = per(lib0, lib1, k)
        if abs(v) >= 50:
            print(f"| {k} | {v:,.0f} | {100 * v / total:.1f} % |")
    print("\n| aigw by source (self) | instructions / request |\n|---|---|")
    p0, p1 = g0[1], g1[1]
    for k in sorted(set(p0) | set(p1), key=lambda k: -per(p0, p1, k)):
        v = per(p0, p1, k)
        if abs(v) >= 20:
            print(f"| {k} | {v:,.0f} |")
    print("\n| libc printf/scanf family, by caller (inclusive) | instructions / request |\n|---|---|")
    f0, f1 = g0[2], g1[2]
    fam = 0
    for k in sorted(set(f0) | set(f1), key=lambda k: -per(f0, f1, k)):
        v = per(f0, f1, k)
        fam += v
        if abs(v) >= 20:
            print(f"| {k} | {v:,.0f} |")
    print(f"| all callers | {fam:,.0f} |")
    print("\n| libc's busiest functions (self) | instructions / request |\n|---|---|")
    t0, t1 = g0[3], g1[3]
    for k in sorted(set(t0) | set(t1), key=lambda k: -per(t0, t1, k))[:12]:
        print(f"| {k} | {per(t0, t1, k):,.0f} |")


if __name__ == "__main__":
    main()
