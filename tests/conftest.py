"""Shared fixtures and helpers."""

import os
import shutil
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Hypothesis profiles. "ci" is derandomized (the same examples on every run, so a
# red build is reproducible and a green one is not luck), with no example
# database and no deadline (shared CI machines are slow and uneven). "dev" keeps
# Hypothesis' random search, which finds new examples from run to run. CI (set
# by CI services) selects "ci"; HYPOTHESIS_PROFILE names one explicitly. A
# test's own @settings (e.g. its max_examples) still wins over the profile.
settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None,
                          database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"real data folder {SHARED_DATA} not found "
                                   "(present in CI and on developer machines)")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data():
    return SHARED_DATA


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
    while not metadata.exists() and process.poll() is None and time.time() < deadline:
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


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium that reaches 127.0.0.1 only: a page must not need the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


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
