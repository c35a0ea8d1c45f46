#!/usr/bin/env python3
"""bench/cache_replay.py — the response cache's hit ratio on a replayed prompt mix.

A realistic mix has a few popular prompts asked again and again and a long tail asked once;
some repeats arrive reworded a little (a trailing space, a lower-case first letter, a word
order change), which an exact cache misses. This script builds such a mix from the MMLU prompts
of the routing data (RouteLLM's files; the path is an argument, the data is not in the
repository): DISTINCT prompts drawn at random (seed SEED), REQUESTS requests drawn from them by a
Zipf law (exponent ZIPF), and a share REWORD of the repeats reworded. It sends them in order to
an aigw that caches (`cache: {mode: simple}`, or a route with `cache: {mode: semantic}` named by
MODEL) in front of aigw-mock, and counts the answers by x-aigw-cache. aigw-mock's replies name the prompt they answer ("mock reply to: …"),
so a hit that answers another prompt than the one asked — a wrong semantic hit — is counted too.

  python3 bench/cache_replay.py URL ROUTING_DATA_DIR [REQUESTS] [DISTINCT]

Standard library only. Prints one line of counts and ratios.
"""
import csv, glob, json, os, random, sys, urllib.request

url, data = sys.argv[1], sys.argv[2]
requests = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
distinct = int(sys.argv[4]) if len(sys.argv) > 4 else 600
seed, zipf, reword = int(os.environ.get("SEED", 7)), float(os.environ.get("ZIPF", 1.0)), float(os.environ.get("REWORD", 0.2))
model = os.environ.get("MODEL", "mock-model")

csv.field_size_limit(1 << 24)
prompts = []
for path in sorted(glob.glob(os.path.join(data, "mmlu", "*.csv"))):
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            p = row.get("prompt") or ""
            if 20 < len(p) < 1500:
                prompts.append(p)
rng = random.Random(seed)
pool = rng.sample(prompts, distinct)
weights = [1 / (i + 1) ** zipf for i in range(distinct)]

def reworded(p):
    kind = rng.randrange(3)
    if kind == 0:
        return p + " "
    if kind == 1:
        return p[0].lower() + p[1:]
    words = p.split(" ")
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)

def answers(reply, prompt):
    """Whether the mock's reply ("mock reply to: " and the first 200 characters of the prompt it
    answered) answers prompt or one of its rewordings: its words, the last one cut, are prompt's."""
    echoed = reply[len("mock reply to: "):].lower().split()[:-1]
    words = prompt.lower().split()
    for w in echoed:
        if w not in words:
            return False
        words.remove(w)
    return True

seen, counts, wrong = set(), {}, 0
for _ in range(requests):
    i = rng.choices(range(distinct), weights)[0]
    text = pool[i]
    if i in seen and rng.random() < reword:
        text = reworded(text)
    seen.add(i)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json", "authorization": "Bearer replay"})
    with urllib.request.urlopen(req, timeout=30) as r:
        status = r.headers.get("x-aigw-cache", "-")
        reply = json.loads(r.read())["choices"][0]["message"]["content"]
    counts[status] = counts.get(status, 0) + 1
    if status in ("HIT", "SEMANTIC_HIT") and not answers(reply, pool[i]):
        wrong += 1
hits = counts.get("HIT", 0) + counts.get("SEMANTIC_HIT", 0)
print(f"requests {requests}, distinct prompts {len(seen)} of {distinct} (Zipf {zipf}, reworded repeats {reword:.0%}, seed {seed}): "
      + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
      + f"; hit ratio {hits / requests:.3f} (an exact cache's ceiling without rewording {1 - len(seen) / requests:.3f}); "
      + f"hits answering another prompt {wrong}")
