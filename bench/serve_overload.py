"""`keras-lstm serve --max-queue` under overload: goodput, latency and 503s at 0.5x to 4x capacity.

Usage: python bench/serve_overload.py [--target EXPORT] [--runtime onnx] [--max-queue 32]
                                      [--factors 0.5,1,2,4] [--seconds 10] [--beam K]
                                      [--capacity-concurrency N] [--max-batch 32]
                                      [--workers 1] [--access-log] [--no-costs] [--no-reload]
                                      [--poll-seconds 0.5]

The server (a subprocess on 127.0.0.1, `--no-access-log` unless --access-log) serves TARGET (default: the
committed small translation export, whose beam search makes a request cost milliseconds,
so a Python client can offer 4x what the server can answer; `--beam K` makes each request
more work). Its capacity is measured first: closed loop, --capacity-concurrency clients
(default --max-queue x --workers), each sending the next request when the last is
answered, for --seconds (a client refused sends again 5 ms later on a new connection, so
that with --workers the connections spread over the processes). Then, for each factor,
requests arrive open loop at factor x capacity per second for --seconds (sent on schedule
whatever the server does: the arrivals of many independent clients; on an idle keep-alive
connection, or a new one when none is idle), and every answer's status and latency are
recorded. The client runs on uvloop with its garbage collector off while it measures (see
`measured`).

Prints a Markdown table: offered and answered rates, goodput (200s per second and as a
share of capacity), p50/p99 of the admitted requests (200), the share of 503s and their
p50/p99/max (the goal: every one under 10 ms), other statuses and client errors, the
server's resident memory after the level (its peak too, from /proc; with --workers, summed
over the processes), the server's CPU over the level (in cores, from /proc), and the
client's own CPU (of one core): on a small machine the client competes with the server for
the cores.

Then (unless --no-costs) what the server's CPU pays for each answer and each 503: per
answer, its CPU over the capacity phase per answer; per 503, a second server with
`--max-queue 1` (its bound always full) under 8 closed-loop clients, its CPU per 503 (the few
200s' share taken out). At 4x the server refuses 3 requests for each one the capacity allows,
so 3 x (per 503) / (per answer) is about the share of the server the refusals take.

Then (unless --no-reload) a hot reload under load: a second server serves a temporary
model repository `REPO/model/1/` (a copy of TARGET, an export folder) with
`--poll-seconds S`; requests go to `/v2/models/model/infer` open loop at 0.5x the capacity
(whose answers name their `model_version`); after --seconds, version 2 (another copy) is put
in place the way docs/serving.md says (copied beside, then renamed into `REPO/model/`), and
the load goes on until --seconds after the first answer from version 2. Prints the failed
requests (anything but a 200), p50/p99 before the placement, during it (from the placement to
the first answer from version 2) and after, the time from the placement to the server's
"version loaded" line and to the first answer from version 2, against the goal S + the
version's load time (a `keras_lstm.runtimes.load` of the folder and one call, timed in this
process before the server starts), and the server's RSS before, after the old version's
"version unloaded" line, and its peak.
"""

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from serve_http import free_ports  # (bench/ is on the path when this script runs)

try:
    import uvloop
except ImportError:  # Windows
    uvloop = None

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGET = ROOT / "tests" / "fixtures" / "legacy_73ab711" / "translation" / "export"
TEXTS = ["2016年5月11日", "1999年12月31日星期五", "15:30", "2003年7月4日", "星期二", "2021年1月1日"]


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=str(DEFAULT_TARGET), help="run or export folder")
    parser.add_argument("--runtime", default="onnx")
    parser.add_argument("--max-queue", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--beam", type=int,
                        help="each /predict request's beam size (default: the model's); a "
                             "wider beam is more work per request")
    parser.add_argument("--factors", default="0.5,1,2,4",
                        help="offered load as multiples of the measured capacity")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--capacity-concurrency", type=int,
                        help="closed-loop clients for the capacity (default: --max-queue times "
                             "--workers, the most requests the server holds, so its batches "
                             "are as full)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (uvicorn's)")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                        help="let the server write its access log, to a file (default: "
                             "--no-access-log; the hot reload's server never writes it)")
    parser.add_argument("--costs", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the server's CPU per answer and per 503 (default: on)")
    parser.add_argument("--reload", action=argparse.BooleanOptionalAction, default=True,
                        help="measure a hot reload under 0.5x load too (default: on)")
    parser.add_argument("--poll-seconds", type=float, default=0.5,
                        help="the reload server's --poll-seconds")
    return parser


def process_tree(pid):
    """`pid` and its descendants (the `--workers` processes), from /proc."""
    pids, index = [pid], 0
    while index < len(pids):
        for task in Path(f"/proc/{pids[index]}/task").glob("*/children"):
            pids.extend(int(child) for child in task.read_text().split())
        index += 1
    return pids


def cpu_seconds(pid):
    """CPU seconds (user + system) used so far by process `pid` and its descendants, from
    /proc (a process that exited meanwhile is left out)."""
    total = 0
    for one in process_tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    """(resident, peak resident) memory in MiB of process `pid` and its descendants (summed),
    from /proc."""
    rss = peak = 0
    for one in process_tree(pid):
        fields = {}
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                fields[key] = value
        except OSError:  # exited meanwhile
            continue
        rss += int(fields["VmRSS"].split()[0]) / 1024
        peak += int(fields["VmHWM"].split()[0]) / 1024
    return rss, peak


class ServerLog:
    """The server's stderr lines, each with the time it was read (a thread reads them)."""

    def __init__(self, stream):
        self.lines = []
        self.thread = threading.Thread(target=self.read, args=(stream,), daemon=True)
        self.thread.start()

    def read(self, stream):
        for line in stream:
            self.lines.append((time.perf_counter(), line.rstrip("\n")))

    def text(self):
        return "\n".join(line for _, line in self.lines)

    def event(self, what, version=None, nth=1):
        """The time of the `nth` JSON log line whose "event" is `what` (and "version"; one a
        `--workers` process), or None."""
        seen = 0
        for when, line in list(self.lines):
            if f'"{what}"' not in line:
                continue
            with contextlib.suppress(ValueError):
                fields = json.loads(line)
                if fields.get("event") == what and (version is None
                                                    or fields.get("version") == version):
                    seen += 1
                    if seen == nth:
                        return when
        return None


def start_server(args, target=None, *extra, access_log=False):
    """Starts `keras-lstm serve` and waits until it is ready; returns (process, port, its
    ServerLog). With `access_log`, the server writes its access log (one JSON line a request)
    to a temporary file the bench does not read (a reader thread here would take the
    client's CPU), and the ServerLog is None."""
    [port] = free_ports()
    log_file = tempfile.TemporaryFile("w+") if access_log else None
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm", "serve", target or args.target, "--runtime",
         args.runtime, "--port", str(port), "--max-queue", str(args.max_queue), "--max-batch",
         str(args.max_batch), "--workers", str(args.workers),
         *([] if access_log else ["--no-access-log"]), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file or subprocess.PIPE, text=True)
    process.log_file = log_file  # deleted with the process object
    log = None if access_log else ServerLog(process.stderr)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            if log is None:
                log_file.seek(0)
                raise SystemExit(f"the server exited: {log_file.read()[-2000:]}")
            log.thread.join(5)
            raise SystemExit(f"the server exited: {log.text()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not become ready in 120 s")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return process, port, log
        except OSError:
            time.sleep(0.1)


async def one_request(port, index, keep=None, model=None, beam=None):
    """(status or None for a client error, seconds, the answer's model_version or None) of one
    POST /predict (or, with `model`, POST /v2/models/MODEL/infer) on its own connection (or on
    `keep`, a (reader, writer) pair kept alive)."""
    text = TEXTS[index % len(TEXTS)]
    if model is None:
        path, body = "/predict", {"texts": [text]}
        if beam is not None:
            body["beam"] = beam
    else:
        path = f"/v2/models/{model}/infer"
        body = {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": [1], "data": [text]}]}
    body = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{'' if keep else 'Connection: close' + chr(13) + chr(10)}\r\n").encode()
    start = time.perf_counter()
    version = None
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
        answer = await reader.readexactly(length)
        status = int(status_line.split()[1])
        if model is not None and status == 200:
            version = json.loads(answer).get("model_version")
        if keep is None:
            writer.close()
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        return None, time.perf_counter() - start, None
    return status, time.perf_counter() - start, version


def measured(coroutine):
    """Runs `coroutine` on uvloop (the server's loop; asyncio's own where uvloop is missing),
    with this process's garbage collector off: the client must not slow the answers it
    times. On asyncio's loop the client took a third of a core at 4x, on the same 2 cores
    as the server, and a full collection of its objects (tens of thousands of tasks and
    answers) stopped its loop for milliseconds, which every answer then waiting counted."""
    gc.collect()
    gc.disable()
    try:
        return (uvloop.run if uvloop else asyncio.run)(coroutine)
    finally:
        gc.enable()


async def closed_loop(port, concurrency, seconds, beam=None, spread=True):
    """A closed loop of `concurrency` keep-alive clients, each sending its next request when
    the last is answered, for `seconds`; returns ({status: answers}, seconds it ran).

    With `spread`, a client refused (503) waits 5 ms and sends again on a new connection:
    with `--workers`, the kernel does not split the connections evenly between the
    processes, and one process's bound refuses what the other would take; a new connection
    goes to whichever process accepts it first, so they spread until each holds its share."""
    counts = {}
    stop = time.perf_counter() + seconds

    async def client(number):
        keep = await asyncio.open_connection("127.0.0.1", port)
        index = number
        while time.perf_counter() < stop:
            status, _, _ = await one_request(port, index, keep, beam=beam)
            index += concurrency
            counts[status] = counts.get(status, 0) + 1
            if status == 503 and spread:
                keep[1].close()
                await asyncio.sleep(0.005)
                keep = await asyncio.open_connection("127.0.0.1", port)
        keep[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return counts, time.perf_counter() - start


async def capacity(port, concurrency, seconds, beam=None):
    """Answers (200s) per second of a closed loop of `concurrency` clients (`closed_loop`)."""
    counts, took = await closed_loop(port, concurrency, seconds, beam)
    return counts.get(200, 0) / took


async def offered(port, rate, seconds=None, model=None, until=None, answered=None, beam=None):
    """Open loop: request i is sent at i / rate seconds, on an idle keep-alive connection or a
    new one (so it never waits for an answer to another), for `seconds` or until `until()` is
    true; returns [(status, seconds)] (with `model`, to its v2 infer route:
    [(sent at, status, seconds, model_version)], each also passed to `answered` as it comes)."""
    loop = asyncio.get_running_loop()
    idle = []

    async def pooled(index):
        sent = time.perf_counter()
        keep = idle.pop() if idle else None
        if keep is None:
            try:
                keep = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return sent, None, 0.0, None
        status, took, version = await one_request(port, index, keep, model, beam)
        if status is not None:
            idle.append(keep)
        else:
            keep[1].close()
        if answered is not None:
            answered(sent, status, took, version)
        return sent, status, took, version

    start = loop.time()
    tasks = []
    index = 0
    while (index < rate * seconds) if until is None else not until():
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(pooled(index)))
        index += 1
    results = await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    if model is not None:
        return results
    return [(status, took) for _, status, took, _ in results]


def place(source, repository, name, version):
    """Puts a version in place the way docs/serving.md says: copied beside, then renamed in
    (the server never sees half a folder). Returns the time of the rename."""
    staging = Path(repository) / f".staging-{name}-{version}"
    shutil.copytree(source, staging)
    (Path(repository) / name).mkdir(parents=True, exist_ok=True)
    placed = time.perf_counter()
    staging.rename(Path(repository) / name / str(version))
    return placed


def load_seconds(args):
    """Seconds to load TARGET with `keras_lstm.runtimes` and answer one text (the version's
    load time, which a hot reload adds to the polling interval)."""
    from keras_lstm import runtimes

    start = time.perf_counter()
    runtime = runtimes.load(args.target, backend=args.runtime)
    runtime.rows(TEXTS[:1])
    return time.perf_counter() - start


def hot_reload(args, rate):
    """The hot-reload phase (see the module docstring); returns the lines it prints."""
    load_time = load_seconds(args)
    with tempfile.TemporaryDirectory(prefix="serve_overload_") as repository:
        place(args.target, repository, "model", 1)
        process, port, log = start_server(args, repository, "--poll-seconds",
                                          str(args.poll_seconds))
        try:
            placed = {}
            first_v2 = []  # when the first answer from version 2 arrived

            def answered(sent, status, took, version):
                if version == "2" and not first_v2:
                    first_v2.append(sent + took)

            def until():
                now = time.perf_counter()
                return (bool(first_v2) and now > first_v2[0] + args.seconds
                        or now > start + args.seconds + 60)  # version 2 never answered

            async def run():
                loop = asyncio.get_running_loop()
                load = asyncio.ensure_future(offered(port, rate, model="model", until=until,
                                                     answered=answered))
                await asyncio.sleep(args.seconds)
                placed["rss"] = rss_mib(process.pid)
                # In a thread: the copy must not stall this loop's arrivals.
                placed["at"] = await loop.run_in_executor(None, place, args.target, repository,
                                                          "model", 2)
                return await load

            # Warmed up as the first server was (unmeasured), so the phase starts steady.
            measured(capacity(port, args.capacity_concurrency, min(1.0, args.seconds)))
            start = time.perf_counter()
            results = measured(run())
            deadline = time.monotonic() + 30
            while (log.event("version unloaded", 1, args.workers) is None
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            unloaded = log.event("version unloaded", 1, args.workers)  # by every worker
            after_rss = rss_mib(process.pid)
        finally:
            stop_server(process)
    return reload_lines(args, rate, results, placed, first_v2[0] if first_v2 else None, log,
                        unloaded, after_rss, load_time)


def percentile(values, q):
    """The `q` quantile of `values` (nearest rank; 1: the largest)."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def level_row(factor, rate, seconds, results, capacity_rate, memory, client_cpu, server_cpu):
    """One table row. `server_cpu`: the server's CPU seconds over the level."""
    ok = [s for status, s in results if status == 200]
    refused = [s for status, s in results if status == 503]
    other = sum(1 for status, _ in results if status not in (200, 503))
    goodput = len(ok) / seconds
    ms = lambda values, q: f"{percentile(values, q) * 1000:.1f}"  # noqa: E731
    return (f"| {factor:g}x | {rate:.0f} | {goodput:.0f} ({goodput / capacity_rate:.0%}) | "
            f"{ms(ok, .5)} / {ms(ok, .99)} | {len(refused) / max(1, len(results)):.0%} | "
            f"{' / '.join(ms(refused, q) for q in (.5, .99, 1)) if refused else '–'} | "
            f"{other} | {memory[0]:.0f} ({memory[1]:.0f}) | {server_cpu / seconds:.2f} | "
            f"{client_cpu:.0%} |")


def reload_lines(args, rate, results, placed, first_v2, log, unloaded, after_rss, load_time):
    """The hot-reload table and its verdicts."""
    ms = lambda values, q: (f"{percentile(values, q) * 1000:.1f}" if values  # noqa: E731
                            else "–")
    at = placed["at"]
    end_of_during = first_v2 if first_v2 is not None else float("inf")
    windows = {"before (v1)": [], "during (placed → first v2 answer)": [], "after (v2)": []}
    failed = {window: {} for window in windows}  # window → status (None: client error) → n
    for sent, status, took, _ in results:
        window = ("before (v1)" if sent < at else "during (placed → first v2 answer)"
                  if sent < end_of_during else "after (v2)")
        if status == 200:
            windows[window].append(took)
        else:
            failed[window][status] = failed[window].get(status, 0) + 1
    shown = lambda counts: ", ".join(f"{n} × {status or 'client error'}"  # noqa: E731
                                     for status, n in sorted(counts.items(), key=str)) or "0"
    total_failed = sum(sum(counts.values()) for counts in failed.values())
    loaded = log.event("version loaded", 2)
    lines = [f"hot reload: --poll-seconds {args.poll_seconds:g}, {rate:.0f} requests/s (0.5x) to "
             f"/v2/models/model/infer; version 2 placed {args.seconds:g} s in; {len(results)} "
             f"requests, {total_failed} failed (not 200)", "",
             "| window | answered (200) | p50 / p99 ms | failed |", "|---|---|---|---|"]
    lines += [f"| {window} | {len(values)} | {ms(values, .5)} / {ms(values, .99)} | "
              f"{shown(failed[window])} |" for window, values in windows.items()]
    seconds = lambda when: "never" if when is None else f"{when - at:.2f} s"  # noqa: E731
    goal = args.poll_seconds + load_time
    lines += ["",
              f"- placed → server's \"version loaded\" line: {seconds(loaded)}; → first answer "
              f"from version 2: {seconds(first_v2)} (goal: within --poll-seconds + the load time"
              f" = {args.poll_seconds:g} + {load_time:.2f} = {goal:.2f} s: "
              f"{'met' if first_v2 is not None and first_v2 - at <= goal else 'NOT met'}; the "
              f"load time: runtimes.load of the folder and one call, in this process)",
              f"- failed requests: {total_failed} (goal 0: "
              f"{'met' if total_failed == 0 else 'NOT met'})",
              f"- server RSS MiB: {placed['rss'][0]:.0f} before the placement, "
              f"{after_rss[0]:.0f} after version 1's \"version unloaded\" line "
              f"({seconds(unloaded)} after the placement), peak {after_rss[1]:.0f}"]
    return lines


def stop_server(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def refusal_cost(args, per_answer):
    """Server CPU seconds per 503: a second server with `--max-queue 1` (its bound full all
    the time, so nearly every answer is a 503) under 8 closed-loop keep-alive clients for
    --seconds; the CPU its few 200s took (`per_answer` each) is taken out. Returns
    (seconds per 503, 503s per second, the server's cores, the share answered 200)."""
    process, port, _ = start_server(argparse.Namespace(**{**vars(args), "max_queue": 1}),
                                    access_log=args.access_log)
    try:
        measured(closed_loop(port, 8, min(1.0, args.seconds), args.beam, spread=False))  # warm
        cpu = cpu_seconds(process.pid)
        counts, took = measured(closed_loop(port, 8, args.seconds, args.beam, spread=False))
        cpu = cpu_seconds(process.pid) - cpu
    finally:
        stop_server(process)
    refused, answered = counts.get(503, 0), counts.get(200, 0)
    per_refusal = (cpu - answered * per_answer) / max(1, refused)
    return per_refusal, refused / took, cpu / took, answered / max(1, answered + refused)


def main(argv=None):
    args = build_parser().parse_args(argv)
    factors = [float(f) for f in args.factors.split(",")]
    args.capacity_concurrency = args.capacity_concurrency or args.max_queue * args.workers
    process, port, _ = start_server(args, access_log=args.access_log)
    try:
        # Warm up (unmeasured), then the capacity.
        measured(capacity(port, args.capacity_concurrency, min(1.0, args.seconds), args.beam))
        server_cpu = cpu_seconds(process.pid)
        capacity_rate = measured(capacity(port, args.capacity_concurrency, args.seconds,
                                          args.beam))
        per_answer = (cpu_seconds(process.pid) - server_cpu) / max(1, capacity_rate * args.seconds)
        print(f"capacity: {capacity_rate:.0f} requests/s (closed loop, "
              f"{args.capacity_concurrency} clients); --max-queue {args.max_queue}, "
              f"--max-batch {args.max_batch}, --workers {args.workers}, {args.runtime}, "
              f"{Path(args.target).name}, beam {args.beam or 'default'}, access log "
              f"{'on' if args.access_log else 'off'}")
        print()
        print("| offered | requests/s | goodput/s (of capacity) | admitted p50 / p99 ms | 503s | "
              "503 p50 / p99 / max ms | other | server RSS MiB (peak) | server CPU (cores) | "
              "client CPU |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for factor in factors:
            rate = factor * capacity_rate
            cpu, server_cpu = time.process_time(), cpu_seconds(process.pid)
            results = measured(offered(port, rate, args.seconds, beam=args.beam))
            cpu = (time.process_time() - cpu) / args.seconds  # of one core: the client's share
            server_cpu = cpu_seconds(process.pid) - server_cpu
            print(level_row(factor, rate, args.seconds, results, capacity_rate,
                            rss_mib(process.pid), cpu, server_cpu), flush=True)
            time.sleep(0.5)  # let the queue empty between levels
    finally:
        stop_server(process)
    if args.costs:
        per_refusal, rate, cores, share = refusal_cost(args, per_answer)
        print()
        print(f"server CPU per answer at capacity: {per_answer * 1000:.2f} ms; per 503: "
              f"{per_refusal * 1e6:.0f} µs (a server with --max-queue 1, 8 closed-loop "
              f"clients: {rate:.0f} 503s/s at {cores:.2f} cores, {share:.1%} answered 200); "
              f"at 4x, 3 refusals per answer the capacity allows take about "
              f"{3 * per_refusal / per_answer:.0%} of the server")
    if args.reload:
        print()
        for line in hot_reload(args, 0.5 * capacity_rate):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
