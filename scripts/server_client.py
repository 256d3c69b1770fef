#!/usr/bin/env python3
"""Client of scripts/server-e2e.sh: waits for a llama-server on 127.0.0.1:PORT to be ready (GET /health), sends
N completion requests at once (greedy: temperature 0, top-k 1; no prompt cache, so a reply does not depend on
which slot served the previous one), each its own prompt, and writes the replies (prompt, text, token ids) as JSON.

    server_client.py wait PORT SECONDS
    server_client.py run PORT N N_PREDICT OUT.json
    server_client.py compare A.json B.json
"""
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request

# Each prompt's greedy continuation on the CPU backend (tests/e2e/greedy.c, the tiny F16 llama of server-e2e.sh, 32
# tokens) keeps its top-2 logits at least 0.009 apart: a slot's products are summed in another order when the server
# batches it with other slots (on either backend), so a near-tie would flip with the timing of the requests.
# "Far out in the uncharted backwaters" had a gap of 0.0022 at its second token and was replaced.
PROMPTS = [
    "Once upon a time",
    "The quick brown fox",
    "In the beginning",
    "It was a dark and stormy night",
    "Call me Ishmael",
    "All happy families",
    "The sky above the port",
    "Many years later",
]


def wait(port, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if r.status == 200:
                    return 0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    print(f"server_client: no healthy server on port {port} after {seconds} s", file=sys.stderr)
    return 1


def complete(port, prompt, n_predict):
    body = {
        "prompt": prompt,
        "n_predict": n_predict,
        "temperature": 0,
        "top_k": 1,
        "seed": 1,
        "cache_prompt": False,
        "return_tokens": True,
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/completion",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=300) as r:
        reply = json.load(r)
    return {"prompt": prompt, "content": reply["content"], "tokens": reply["tokens"]}


def run(port, n, n_predict, out):
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        replies = list(pool.map(lambda p: complete(port, p, n_predict), prompts))
    with open(out, "w") as f:
        json.dump(replies, f, indent=1)
    print(f"server_client: {len(replies)} concurrent replies, {sum(len(r['tokens']) for r in replies)} tokens")
    return 0


def compare(a_path, b_path):
    a, b = json.load(open(a_path)), json.load(open(b_path))
    if len(a) != len(b) or not a:
        print(f"server_client: {len(a)} replies vs {len(b)}")
        return 1
    bad = 0
    for i, (x, y) in enumerate(zip(a, b)):
        if x["tokens"] != y["tokens"] or x["content"] != y["content"]:
            first = next((j for j, (s, t) in enumerate(zip(x["tokens"], y["tokens"])) if s != t), None)
            print(f"reply {i} ({x['prompt']!r}): differs (first token at {first}): {x['tokens']} vs {y['tokens']}")
            bad += 1
    print(f"server_client: {len(a) - bad} of {len(a)} replies equal")
    return 1 if bad else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "wait":
        sys.exit(wait(int(sys.argv[2]), float(sys.argv[3])))
    if cmd == "run":
        sys.exit(run(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    if cmd == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    sys.exit(f"unknown command {cmd}")
