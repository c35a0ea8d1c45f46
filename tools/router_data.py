#!/usr/bin/env python3
"""router_data.py — RouteLLM's public judgements as one JSON line per routing example.

    tools/router_data.py DATA_DIR > examples.jsonl

DATA_DIR holds RouteLLM's evaluation files (lm-sys/RouteLLM, routellm/evals/; Apache-2.0):
mmlu/*.csv, gsm8k/gsm8k_responses.csv, mt_bench/{question,judgements}.jsonl and each
benchmark's contaminated_prompts.jsonl. The repository does not contain them (see
docs/routing-quality.md). Python 3 standard library only: the csv module reads the quoted,
multi-line prompts, which is all this script is for; the training, the features and the
evaluation are C (tools/router_train.c), sharing the gateway's own feature code.

Each line: {"bench", "group", "text", "turns", "strong", "weak"}:
  - mmlu: group = the subject (the file's name); strong / weak = 1.0 when that model answered
    correctly, else 0.0.
  - gsm8k: group "gsm8k"; the same correctness.
  - mt_bench: one example per question and turn; group = the question's category; text = that
    turn's user message, turns = 1 or 2; strong / weak = GPT-4's 1-10 score of that model's
    answer (the "single-v1"/"single-v1-multi-turn" judgements).
Contaminated prompts (those RouteLLM's routers saw in training) are dropped: MMLU and GSM8K by
the eval prompt's text, MT-Bench whole questions by their first turn's text.
"""
import csv
import json
import os
import sys


def contaminated(path):
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.add(json.loads(line)["eval_prompt"].strip())
    return out


def truth(v):
    if v not in ("True", "False"):
        raise SystemExit(f"unexpected correctness value {v!r}")
    return 1.0 if v == "True" else 0.0


def emit(out, bench, group, text, turns, strong, weak):
    out.write(json.dumps({"bench": bench, "group": group, "text": text, "turns": turns,
                          "strong": strong, "weak": weak}, ensure_ascii=False))
    out.write("\n")


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: tools/router_data.py DATA_DIR > examples.jsonl")
    data = sys.argv[1]
    out = sys.stdout
    csv.field_size_limit(1 << 24)
    weak_col, strong_col = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    counts = {}

    drop = contaminated(os.path.join(data, "mmlu", "contaminated_prompts.jsonl"))
    for name in sorted(os.listdir(os.path.join(data, "mmlu"))):
        if not name.endswith(".csv"):
            continue
        subject = name[len("mmlu_"):-len(".csv")] if name.startswith("mmlu_") else name[:-4]
        with open(os.path.join(data, "mmlu", name), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                if row["prompt"].strip() in drop:
                    counts["mmlu_dropped"] = counts.get("mmlu_dropped", 0) + 1
                    continue
                emit(out, "mmlu", subject, row["prompt"], 1, truth(row[strong_col]), truth(row[weak_col]))
                counts["mmlu"] = counts.get("mmlu", 0) + 1

    drop = contaminated(os.path.join(data, "gsm8k", "contaminated_prompts.jsonl"))
    with open(os.path.join(data, "gsm8k", "gsm8k_responses.csv"), encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["prompt"].strip() in drop:
                counts["gsm8k_dropped"] = counts.get("gsm8k_dropped", 0) + 1
                continue
            emit(out, "gsm8k", "gsm8k", row["prompt"], 1, truth(row[strong_col]), truth(row[weak_col]))
            counts["gsm8k"] = counts.get("gsm8k", 0) + 1

    drop = contaminated(os.path.join(data, "mt_bench", "contaminated_prompts.jsonl"))
    questions = {}
    with open(os.path.join(data, "mt_bench", "question.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                questions[str(q["question_id"])] = q
    scores = {}
    with open(os.path.join(data, "mt_bench", "judgements.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                scores[(str(j["question_id"]), int(j["turn"]), j["model"])] = float(j["score"])
    for qid in sorted(questions, key=int):
        q = questions[qid]
        if q["turns"][0].strip() in drop:
            counts["mt_bench_dropped"] = counts.get("mt_bench_dropped", 0) + 2
            continue
        for turn in (1, 2):
            s, w = scores.get((qid, turn, strong_col)), scores.get((qid, turn, weak_col))
            if s is None or w is None or s < 1 or w < 1:  # -1: the judge gave no score
                counts["mt_bench_unjudged"] = counts.get("mt_bench_unjudged", 0) + 1
                continue
            emit(out, "mt_bench", q["category"], q["turns"][turn - 1], turn, s, w)
            counts["mt_bench"] = counts.get("mt_bench", 0) + 1
    print(json.dumps(counts, sort_keys=True), file=sys.stderr)


if __name__ == "__main__":
    main()
