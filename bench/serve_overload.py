"""`keras-lstm serve --max-queue` under overload: goodput, latency and 503s at 0.5x to 4x capacity.

Usage: python bench/serve_overload.py [--target EXPORT] [--runtime onnx] [--max-queue 32]
                                      [--factors 0.5,1,2,4] [--seconds 10]
                                      [--capacity-concurrency N] [--max-batch 32]

The server (a subprocess on 127.0.0.1, `--no-access-log`) serves TARGET (default: the
committed small translation export, whose beam search makes a request cost milliseconds,
so a Python client can offer 4x what the server can answer). Its capacity is measured
first: closed loop, --capacity-concurrency clients (default --max-queue), each sending the next request when
the last is answered, for --seconds. Then, for each factor, requests arrive open loop at
factor x capacity per second for --seconds (a new connection each, sent on schedule
whatever the server does: the arrivals of many independent clients; on an idle keep-alive
connection, or a new one when none is idle), and every answer's
status and latency are recorded.

Prints a Markdown table: offered and answered rates, goodput (200s per second and as a
share of capacity), p50/p99 of the admitted requests (200), the share of 503s and their
p50/p99, other statuses and client errors, and the server's resident memory after the
level (its peak too, from /proc), and the client's own CPU (of one core): on a small
machine the client competes with the server for the cores.
"""

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGET = ROOT / "tests" / "fixtures" / "legacy_73ab711" / "translation" / "export"
TEXTS = ["2016年5月11日", "1999年12月31日星期五", "15:30", "2003年7月4日", "星期二", "2021年1月1日"]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=str(DEFAULT_TARGET), help="run or export folder")
    parser.add_argument("--runtime", default="onnx")
    parser.add_argument("--max-queue", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--factors", default="0.5,1,2,4",
                        help="offered load as multiples of the measured capacity")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--capacity-concurrency", type=int,
                        help="closed-loop clients for the capacity (default: --max-queue, the "
                             "most requests the server holds, so its batches are as full)")
    return parser


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    """(resident, peak resident) memory of process `pid` in MiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def start_server(args):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm", "serve", args.target, "--runtime", args.runtime,
         "--port", str(port), "--max-queue", str(args.max_queue), "--max-batch",
         str(args.max_batch), "--no-access-log"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not become ready in 120 s")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.1)


async def one_request(port, index, keep=None):
    """(status or None for a client error, seconds) of one POST /predict on its own connection
    (or on `keep`, a (reader, writer) pair kept alive)."""
    body = json.dumps({"texts": [TEXTS[index % len(TEXTS)]]}).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{'' if keep else 'Connection: close' + chr(13) + chr(10)}\r\n").encode()
    start = time.perf_counter()
    try:
        reader, writer = keep or await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + body)
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        status = int(status_line.split()[1])
        if keep is None:
            writer.close()
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        return None, time.perf_counter() - start
    return status, time.perf_counter() - start


async def capacity(port, concurrency, seconds):
    """Answers per second of a closed loop of `concurrency` keep-alive clients."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client(number):
        nonlocal done
        keep = await asyncio.open_connection("127.0.0.1", port)
        index = number
        while time.perf_counter() < stop:
            status, _ = await one_request(port, index, keep)
            index += concurrency
            if status == 200:
                done += 1
        keep[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return done / (time.perf_counter() - start)


async def offered(port, rate, seconds):
    """Open loop: request i is sent at i / rate seconds, on an idle keep-alive connection or a
    new one (so it never waits for an answer to another); returns [(status, seconds)]."""
    loop = asyncio.get_running_loop()
    idle = []

    async def pooled(index):
        keep = idle.pop() if idle else None
        if keep is None:
            try:
                keep = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return None, 0.0
        status, took = await one_request(port, index, keep)
        if status is not None:
            idle.append(keep)
        else:
            keep[1].close()
        return status, took

    start = loop.time()
    tasks = []
    for index in range(int(rate * seconds)):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(pooled(index)))
    results = await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return results


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def level_row(factor, rate, seconds, results, capacity_rate, memory, client_cpu):
    ok = [s for status, s in results if status == 200]
    refused = [s for status, s in results if status == 503]
    other = sum(1 for status, _ in results if status not in (200, 503))
    goodput = len(ok) / seconds
    ms = lambda values, q: f"{percentile(values, q) * 1000:.1f}"  # noqa: E731
    return (f"| {factor:g}x | {rate:.0f} | {goodput:.0f} ({goodput / capacity_rate:.0%}) | "
            f"{ms(ok, .5)} / {ms(ok, .99)} | {len(refused) / max(1, len(results)):.0%} | "
            f"{ms(refused, .5) if refused else '–'} / {ms(refused, .99) if refused else '–'} | "
            f"{other} | {memory[0]:.0f} ({memory[1]:.0f}) | {client_cpu:.0%} |")


def main(argv=None):
    args = build_parser().parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    args.capacity_concurrency = args.capacity_concurrency or args.max_queue
    process, port = start_server(args)
    try:
        # Warm up (unmeasured), then the capacity.
        asyncio.run(capacity(port, args.capacity_concurrency, min(1.0, args.seconds)))
        capacity_rate = asyncio.run(capacity(port, args.capacity_concurrency, args.seconds))
        print(f"capacity: {capacity_rate:.0f} requests/s (closed loop, "
              f"{args.capacity_concurrency} clients); --max-queue {args.max_queue}, "
              f"--max-batch {args.max_batch}, {args.runtime}, {Path(args.target).name}")
        print()
        print("| offered | requests/s | goodput/s (of capacity) | admitted p50 / p99 ms | 503s | "
              "503 p50 / p99 ms | other | server RSS MiB (peak) | client CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for factor in factors:
            rate = factor * capacity_rate
            cpu = time.process_time()
            results = asyncio.run(offered(port, rate, args.seconds))
            cpu = (time.process_time() - cpu) / args.seconds  # of one core: the client's share
            print(level_row(factor, rate, args.seconds, results, capacity_rate,
                            rss_mib(process.pid), cpu), flush=True)
            time.sleep(0.5)  # let the queue empty between levels
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        process.communicate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
