#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_conn (tests/fuzz/corpus/conn/): each seed is a small script in
fuzz_conn.c's input format — [flags] [n] [decisions] [m] [m op pairs] [payload]. Run from the
repository's root after changing the format; the seeds are committed."""
import os

SEND, SEND_ALL, RUN, SHUT_WR, RESET, CLOSE, PAUSE, RESUME, CONNECT, SWITCH, DRAIN, CLOSE_ALL, REPEAT = range(13)
# Stub decisions come in pairs: (mode | 0x80 to resume writes inline, size byte).
NOW, ERROR, LATER, CONN_TIMER, STREAM_NOW, STREAM_LATER, NEVER, STREAM_BEGIN_LATER = range(8)

GET = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
CHAT = b'{"model":"mock-model","messages":[{"role":"user","content":"hi"}]}'
POST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(CHAT), CHAT)
CHUNKED = (b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"10\r\n" + CHAT[:16] + b"\r\n" + b"%x\r\n" % (len(CHAT) - 16) + CHAT[16:] + b"\r\n0\r\nx-trailer: t\r\n\r\n")


def seed(name, ops, payload, decisions=(), flags=0):
    data = bytes([flags, len(decisions), *decisions, len(ops)]) + bytes(b for op in ops for b in op) + payload
    with open(os.path.join("tests/fuzz/corpus/conn", name), "wb") as f:
        f.write(data)


seed("pipelined-gets", [(SEND_ALL, 0), (RUN, 7), (RUN, 7)], GET * 3 + POST, (NOW, 2, LATER, 3, CONN_TIMER, 0x44))
seed("chunked-post-trailers", [(SEND, 40), (RUN, 0), (SEND_ALL, 0), (RUN, 3)], CHUNKED, (NOW, 2))
seed("split-reads", [(SEND, 3), (RUN, 0)] * 20 + [(SEND_ALL, 0), (RUN, 3)], POST + GET, (STREAM_NOW, 0x12))
seed("abort-mid-stream", [(SEND_ALL, 0), (PAUSE, 0), (RUN, 7), (RESET, 0), (RUN, 3)], POST,
     (STREAM_LATER, 0xEE))
seed("stream-backpressure", [(SEND_ALL, 0), (PAUSE, 0), (RUN, 7), (RUN, 7), (RESUME, 0)] + [(RUN, 7)] * 12,
     POST + GET, (STREAM_LATER | 0x80, 0xED, NOW, 5))
seed("half-close-after-request", [(SEND_ALL, 0), (RUN, 1), (SHUT_WR, 0), (RUN, 3)], POST, (LATER, 4))
# The answer (20,000 bytes, more than the 4 KiB socket buffers take) is queued before the client
# half-closes: it must still arrive whole.
seed("half-close-after-answer", [(SEND_ALL, 0), (PAUSE, 0), (RUN, 7), (SHUT_WR, 0), (RUN, 3), (RESUME, 0), (RUN, 7)],
     POST, (LATER, 4))
seed("never-answered", [(SEND_ALL, 0), (RUN, 2), (CLOSE, 0), (RUN, 2)], GET, (NEVER, 0))
seed("two-connections-drain", [(SEND, len(GET) - 1), (CONNECT, 0), (SEND, len(GET) - 1), (RUN, 1), (DRAIN, 0),
                               (SWITCH, 0), (SEND, 3), (RUN, 3)], GET * 2 + b"\r\n", (STREAM_BEGIN_LATER, 0x21))
seed("expect-continue", [(SEND, 100), (RUN, 1), (SEND_ALL, 0), (RUN, 3)],
     POST.replace(b"Host: a\r\n", b"Host: a\r\nExpect: 100-continue\r\n"), (ERROR, 1))
seed("header-timeout", [(SEND, 10), (RUN, 3)], GET, (), flags=1)
seed("connection-limit", [(CONNECT, 0), (CONNECT, 0), (SEND_ALL, 0), (RUN, 3), (SWITCH, 0), (RUN, 1)], GET,
     (NOW, 0), flags=16)
seed("body-too-large", [(SEND_ALL, 0), (RUN, 3)], POST, (), flags=8)
seed("keepalive-idle-close", [(SEND, len(GET) - 1), (RUN, 3), (SEND_ALL, 0), (RUN, 3)], GET * 2, (NOW, 0), flags=2)
seed("close-all-while-streaming", [(SEND_ALL, 0), (PAUSE, 0), (RUN, 2), (CLOSE_ALL, 0), (RUN, 2)], POST,
     (STREAM_LATER, 0xF5))
# Volume: one 36-byte GET sent 256 times (REPEAT's arg: length - 1 in bits 0-5, 4 << 2k times).
seed("many-pipelined", [(REPEAT, 35 | 0xC0), (RUN, 7), (RUN, 7), (RUN, 7), (SHUT_WR, 0), (RUN, 7)], GET, (NOW, 0))

# Regressions (issue 8): a 5,000-byte trailer after the last chunk (it reallocated the buffer
# the parsed headers point into). The other one, regression-ready-list-uaf (pipelined
# requests, then a close in the same loop turn), is the input libFuzzer found, kept as is.
seed("regression-trailer-realloc", [(SEND_ALL, 0), (RUN, 3)],
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n"
     b"0\r\nx-trailer: %s\r\n\r\n" % (len(CHAT), CHAT, b"t" * 5000), (NOW, 2))
