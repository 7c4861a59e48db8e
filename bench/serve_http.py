"""`keras-lstm serve` under load on loopback: requests/s and p50/p99 latency.

Usage: python bench/serve_http.py [--run RUN] [--concurrency 1,8,64]
                                  [--runtimes onnx,tflite] [--repeats 3] [--seconds 5]
                                  [--client wrk|node|python] [--requests 2000]
                                  [--max-seconds 60]

A small sentiment model is trained on the embedded reviews (the "fast" preset)
and exported to ONNX and TFLite in a temporary folder, unless --run names a
run folder with such an export. For each runtime, servers are started in a
subprocess on 127.0.0.1 with batching on (--max-batch 32) and off
(--max-batch 1, one runtime call per request). The client runs CONCURRENCY
loops, each with its own keep-alive connection, that send POST /predict with
one review each; every answer is compared with the in-process runtime's serial
answer. With wrk each level runs --seconds; with Node or Python it sends
--requests requests, or stops after --max-seconds.
The two modes alternate --repeats times, each with a fresh server warmed by
unmeasured requests; a row is the median of the repeats (requests/s, p50, p99)
and the sum of their counts.

The client shares the machine's cores with the server, so the lighter it is, the
more the table shows of the server: wrk (C; `bench/load_client.lua`, about 12 %
of a core at 7 000 requests/s) where it is installed, else
`bench/load_client.mjs` with Node (half a core at 5 000 requests/s), else Python
threads (`--client python`, which take more than a core at concurrency 64).
With wrk, each fresh server first answers every text alone (the serial
answers, checked against the in-process runtime), and a loaded answer is
counted as differing when it is none of them (each answer carries its text).

Prints a Markdown table, with the in-process runtime beside it: one text a call
(what the server adds to it), and batches of 32 (the most batching can save in
the runtime itself, with no HTTP at all).
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = (("on (32)", 32), ("off", 1))  # the table's name, the server's --max-batch


def free_ports(count=1):
    """`count` distinct ports free on 127.0.0.1 a moment ago (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(run, runtime, max_batch):
    [port] = free_ports()
    process = subprocess.Popen([sys.executable, "-m", "keras_lstm", "-q", "serve", str(run),
                                "--runtime", runtime, "--port", str(port), "--max-batch",
                                str(max_batch)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                connection.close()
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start in 60 s")


def load(port, texts, expected, concurrency, requests, max_seconds):
    """(requests/s, p50 ms, p99 ms, errors, differing answers, requests sent)."""
    latencies, errors, differing = [], [0], [0]
    lock = threading.Lock()
    counter = iter(range(requests))
    stop = time.monotonic() + max_seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        own = []
        for i in counter:
            if time.monotonic() > stop:
                break
            text = texts[i % len(texts)]
            body = json.dumps({"texts": [text]})
            start = time.perf_counter()
            try:
                connection.request("POST", "/predict", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
            except OSError:
                with lock:
                    errors[0] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            own.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                with lock:
                    errors[0] += 1
            elif json.loads(payload)["predictions"][0] != expected[text]:
                with lock:
                    differing[0] += 1
        connection.close()
        with lock:
            latencies.extend(own)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return (len(latencies) / seconds, statistics.median(latencies),
            float(np.percentile(latencies, 99)), errors[0], differing[0], len(latencies))


def serial_answers(port, texts, expected, path):
    """Sends each distinct text alone and writes PATH for bench/load_client.lua: line pairs of
    a request body and the server's answer, which must be the in-process runtime's."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lines = []
    for text in dict.fromkeys(texts):
        body = json.dumps({"texts": [text]}, ensure_ascii=False)
        connection.request("POST", "/predict", body.encode(), {"Content-Type": "application/json"})
        answer = connection.getresponse().read()
        if json.loads(answer)["predictions"][0] != expected[text]:
            raise SystemExit(f"a serial answer differs from the in-process runtime's: {text!r}")
        lines += [body, answer.decode()]
    connection.close()
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_wrk(port, pairs, concurrency, seconds):
    """`load` with wrk and bench/load_client.lua for `seconds` (wrk runs for a time, not a
    count); `pairs` is `serial_answers`' file."""
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                          "-s", str(ROOT / "bench" / "load_client.lua"),
                          f"http://127.0.0.1:{port}/predict", "--", str(pairs)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return (result["rate"], result["p50"], result["p99"], result["errors"], result["differing"],
            result["sent"])


def load_node(port, cases, concurrency, requests, max_seconds):
    """`load` with bench/load_client.mjs; `cases` is the JSON Lines file of texts and answers."""
    out = subprocess.run(["node", str(ROOT / "bench" / "load_client.mjs"), str(port),
                          str(concurrency), str(requests), str(max_seconds), str(cases)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return (result["rate"], result["p50"], result["p99"], result["errors"], result["differing"],
            result["sent"])


def run_load(client, port, cases, texts, expected, concurrency, requests, seconds,
             max_seconds):
    """One level with `client`: `load`'s tuple. wrk runs `seconds`; the others send
    `requests` or stop after `max_seconds`."""
    if client == "wrk":
        return load_wrk(port, cases.with_suffix(".pairs"), concurrency, seconds)
    if client == "node":
        return load_node(port, cases, concurrency, requests, max_seconds)
    return load(port, texts, expected, concurrency, requests, max_seconds)


def warm(port, cases, texts, expected, client):
    """A first load on a fresh server, not measured (the first requests pay for allocations);
    for wrk, the server's serial answers first."""
    if client == "wrk":
        serial_answers(port, texts, expected, cases.with_suffix(".pairs"))
    run_load(client, port, cases, texts, expected, 8, 500, 1, 30)


def in_process(runtime, texts, calls=2000, batch=1):
    """(p50 ms, p99 ms, texts/s) of serial `runtime.rows(batch texts)` in this process."""
    times = []
    for i in range(0, calls, batch):
        chunk = [texts[(i + j) % len(texts)] for j in range(batch)]
        start = time.perf_counter()
        runtime.rows(chunk)
        times.append((time.perf_counter() - start) * 1000)
    return (statistics.median(times), float(np.percentile(times, 99)),
            1000 * batch / statistics.mean(times))


def train(folder, formats="onnx,tflite"):
    """A "fast"-preset sentiment run in FOLDER/reviews, exported to `formats` (float32)."""
    run = Path(folder) / "reviews"
    for args in (["train", "sentiment", "--out", str(run), "--preset", "fast", "--seed", "0"],
                 ["export", str(run), "--formats", formats, "--quantize", "float32"]):
        subprocess.run([sys.executable, "-m", "keras_lstm", "-q", *args], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return run


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a sentiment run folder with an onnx+tflite export "
                                      "(default: train one)")
    parser.add_argument("--requests", type=int, default=2000, help="per level (default 2000)")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--runtimes", default="onnx,tflite")
    parser.add_argument("--max-seconds", type=float, default=60, help="per level (default 60)")
    parser.add_argument("--seconds", type=float, default=5,
                        help="per level with wrk, which runs for a time (default 5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="servers started per mode; each row is the median (default 3)")
    parser.add_argument("--client", choices=["wrk", "node", "python"],
                        help="the load client (default: wrk, else node, where installed)")
    return parser


def main():
    args = build_parser().parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_lstm import runtimes
    from keras_lstm.data.default_reviews import load_default_reviews

    texts = load_default_reviews()[0][:500]
    levels = [int(c) for c in args.concurrency.split(",")]
    client = args.client or next(c for c in ("wrk", "node", "python") if shutil.which(c))
    if client != "wrk" and not args.client:
        print(f"wrk is not installed (apt-get install wrk): the client is {client}, which "
              "takes more of the CPU it shares with the server (see the docstring)",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        run = Path(args.run) if args.run else train(folder)
        rows, notes, rates, rss = [], [], {}, {}
        for backend in args.runtimes.split(","):
            runtime = runtimes.load(run, backend=backend)
            expected = {text: runtime.rows([text])[0] for text in set(texts)}
            cases = Path(folder) / f"cases_{backend}.jsonl"
            cases.write_text("".join(json.dumps({"text": t, "expected": expected[t]},
                                                ensure_ascii=False) + "\n" for t in texts),
                             encoding="utf-8")
            p50, p99, rate = in_process(runtime, texts)
            rows.append(f"| {backend} | in-process call | 1 | 2000 | {rate:.0f} | {p50:.2f} | "
                        f"{p99:.2f} | - | - |")
            p50, p99, batched = in_process(runtime, texts, batch=32)
            rows.append(f"| {backend} | in-process, batches of 32 | 1 | 2000 | {batched:.0f} "
                        f"({batched / rate:.2f}×) | - | - | - | - |")
            # On and off alternate, each a fresh server, so that a drift of the machine's
            # speed falls on both; each level's row is the median of the repeats.
            measured = {}
            for _ in range(args.repeats):
                for batching, max_batch in MODES:
                    process, port = start_server(run, backend, max_batch)
                    before = rss_mib(process.pid)
                    try:
                        warm(port, cases, texts, expected, client)
                        for concurrency in levels:
                            result = run_load(client, port, cases, texts, expected, concurrency,
                                              args.requests, args.seconds, args.max_seconds)
                            measured.setdefault((max_batch, concurrency), []).append(result)
                            print(f"{backend} {batching} {concurrency}: {result[0]:.0f} "
                                  "requests/s", file=sys.stderr, flush=True)
                        after = rss_mib(process.pid)
                    finally:
                        process.terminate()
                        code = process.wait(60)
                    if code != 0:
                        notes.append(f"{backend}, batching {batching}: the server exited {code} "
                                     "on SIGTERM")
                    rss[backend, batching] = (before, after)
            for batching, max_batch in MODES:
                for concurrency in levels:
                    results = measured[max_batch, concurrency]
                    rate, p50, p99 = (statistics.median(r[i] for r in results) for i in range(3))
                    errors, differing, sent = (sum(r[i] for r in results) for i in (3, 4, 5))
                    rates[backend, max_batch, concurrency] = rate
                    rows.append(f"| {backend} | {batching} | {concurrency} | {sent} | "
                                f"{rate:.0f} | {p50:.2f} | {p99:.2f} | {errors} | {differing} |")
                before, after = rss[backend, batching]
                notes.append(f"{backend}, batching {batching}: server RSS {before:.0f} MiB "
                             f"after start, {after:.0f} MiB after the load (last repeat)")
        print(f"\nPOST /predict with one review each, keep-alive connections; "
              f"{os.cpu_count()} CPUs; the client ({client}) on the same machine.\n")
        print("| runtime | batching | concurrency | requests | requests/s | p50 ms | p99 ms | "
              "errors | answers differing from serial |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print()
        for backend in args.runtimes.split(","):
            ratios = [f"{rates[backend, 32, c] / rates[backend, 1, c]:.2f}× at {c}"
                      for c in levels if (backend, 32, c) in rates and (backend, 1, c) in rates]
            notes.append(f"{backend}: batching on / off: {', '.join(ratios)}")
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
