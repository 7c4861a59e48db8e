"""Helpers the tests share: plain functions and constants, imported as `from tests import helpers`.

Fixtures live in tests/conftest.py (pytest finds them there); everything a test
calls by name lives here, so no test imports from conftest or from another test.
"""

import asyncio
import contextlib
import json
import os
import shutil
import socket
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy_73ab711"


def train_run(task_name, verbose=0, **values):
    """Trains a run of `task_name` with the plain defaults and `values`; returns the result."""
    from keras_lstm import tasks
    from keras_lstm.training import train

    task = tasks.get(task_name)
    return train(task, task.config_class(**values).validate(), verbose=verbose)


def kill_after_first_committed_epoch(args, out):
    """Runs `keras-lstm ARGS` and SIGKILLs it once an epoch is committed; returns that epoch."""
    import json
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-m", "keras_lstm", *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    metadata = Path(out) / "backup" / "training_metadata.json"
    deadline = time.time() + 300

    def committed():
        # Keras writes the file in place: it exists, empty, for a moment before it holds JSON.
        try:
            return json.loads(metadata.read_text())["epoch"]
        except (OSError, ValueError, KeyError):
            return None

    while committed() is None and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "training ended before it could be interrupted"
    return json.loads(metadata.read_text())["epoch"]


# ----- a real browser: Debian's headless Chromium through its chromedriver -----

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None


def free_ports(count=1):
    """`count` distinct ports free on 127.0.0.1 a moment ago (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def uvicorn_thread(app, port, **config):
    """`app` on a real uvicorn in a thread of this process (127.0.0.1:`port`, `config` as
    `uvicorn.Config` takes it) while the block runs; yields the `uvicorn.Server`."""
    import time

    import uvicorn

    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                            log_level="warning", **config))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield running
    finally:
        running.should_exit = True
        thread.join(60)


def wait_until_ready(process, url, seconds=60):
    """Waits until the `keras-lstm serve` subprocess `process` answers 200 on URL/v2/health/ready.

    Fails the test with the server's stderr if it exits first, or after `seconds`.
    """
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"the server did not start in {seconds} s"
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=10) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError:
            pass  # 503: loaded, not warmed yet
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)


def browser_missing(*extra):
    """What the browser tests lack here ("" when nothing), `extra` being (name, present) pairs.

    In CI (CI=true) a missing tool is an error, not a skip: .ci/run installs them all.
    """
    import importlib.util

    missing = ", ".join(name for name, present in (
        ("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER),
        ("selenium", importlib.util.find_spec("selenium") is not None), *extra) if not present)
    if missing and os.environ.get("CI") == "true":
        raise RuntimeError(f"the browser tests need {missing} in CI")
    return missing


def in_threads(work, count):
    """Runs `work(k)` for k in range(count) on as many threads at once; returns the results.

    An exception on any thread fails the test with that exception.
    """
    import threading

    results, errors = {}, []

    def run(k):
        try:
            results[k] = work(k)
        except Exception as error:  # noqa: BLE001 (re-raised below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[k] for k in range(count)]


def write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows), encoding="utf-8")
    return path


def train_args(data, out, *extra):
    return ["train", "sentiment", "--data", str(data), "--out", str(out), "--preset", "none",
            "--units", "8", "--embedding-dim", "8", "--epochs", "2", "--batch-size", "16",
            "--seed", "3", *extra]


class Client:
    """An ASGI app with its lifespan, on an event loop of its own; requests in-process."""

    def __init__(self, app):
        self.app = app
        self.loop = asyncio.new_event_loop()

    def __enter__(self):
        self.run(self.start())
        return self

    def __exit__(self, *exc):
        self.run(self.stop())
        self.loop.close()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def start(self, wait=True):
        self.inbox, self.outbox = asyncio.Queue(), asyncio.Queue()
        self.lifespan = asyncio.ensure_future(self.app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        if wait:
            await self.started()

    async def started(self):
        message = await self.outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    async def stop(self):
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert (await self.outbox.get())["type"] == "lifespan.shutdown.complete"
        await self.lifespan

    async def send(self, method, path, body=b"", headers=None):
        """(status, headers with lower-case names, body bytes) of one request."""
        headers = {"content-type": "application/json", **(headers or {})}
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path,
                 "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                             for k, v in headers.items()],
                 "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {}}
        answered = asyncio.Event()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        answer = {"body": b""}

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1")
                                     for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    answered.set()

        await self.app(scope, receive, send)
        return answer["status"], answer["headers"], answer["body"]

    def request(self, method, path, body=b"", headers=None):
        return self.run(self.send(method, path, body, headers))

    def json(self, method, path, body=None, headers=None):
        """(status, parsed answer)."""
        raw = b"" if body is None else json.dumps(body).encode()
        status, _, answer = self.request(method, path, raw, headers)
        return status, json.loads(answer)


class HeldRuntime:
    """A fake sentiment runtime whose calls wait for `release` (set by default)."""

    task, backend, options, labels = "sentiment", "fake", (), ["negative", "positive"]

    def __init__(self):
        self.release = threading.Event()
        self.release.set()
        self.calls = []

    def rows(self, texts, beam=None, **_):
        self.calls.append(list(texts))
        assert self.release.wait(10), "never released"
        return [{"text": text, "label": "positive"} for text in texts]

    def infer(self, texts, beam=None):
        return [{"labels": "positive"} for _ in self.rows(texts)]

    def tensors(self):
        return [{"name": "labels", "datatype": "BYTES", "shape": [-1]}]
