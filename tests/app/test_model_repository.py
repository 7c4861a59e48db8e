"""`keras-lstm serve REPO/`: models by name in numbered versions, several models in one server,
and hot reload (a new version loaded, warmed, checked and swapped in under load with no failed
request; a broken one refused while the current one serves on; the old one unloaded).

The app runs in-process over ASGI on copies of the committed legacy exports; one test starts
the real command and rescans it with SIGHUP."""

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keras_lstm.app.repository import scan
from keras_lstm.app.serving import load_server
from keras_lstm.core.errors import ConfigError
from tests.helpers import LEGACY, REPO, Client, free_ports, wait_until_ready

SENTIMENT = LEGACY / "sentiment" / "export"
TRANSLATION = LEGACY / "translation" / "export"


def place(source, repository, name, version):
    """Puts a version in place the way the docs say: copied beside, then renamed in."""
    staging = Path(repository) / f".staging-{name}-{version}"
    shutil.copytree(source, staging)
    (Path(repository) / name).mkdir(parents=True, exist_ok=True)
    staging.rename(Path(repository) / name / str(version))


@pytest.fixture
def repository(tmp_path):
    """REPO/reviews/1 (sentiment) and REPO/dates/1 (translation)."""
    repo = tmp_path / "models"
    place(SENTIMENT, repo, "reviews", 1)
    place(TRANSLATION, repo, "dates", 1)
    return repo


def infer_body(texts):
    return {"inputs": [{"name": "texts", "datatype": "BYTES", "shape": [len(texts)],
                        "data": texts}]}


def loaded_versions(client):
    """{(model, version)} from the keras_lstm_model_loaded gauge, parsed by prometheus_client."""
    status, _, body = client.request("GET", "/metrics")
    assert status == 200
    return {(s.labels["model"], s.labels["version"])
            for family in text_string_to_metric_families(body.decode())
            if family.name == "keras_lstm_model_loaded" for s in family.samples if s.value == 1}


# ----- the layout -----

def test_scan_reads_models_and_their_integer_versions(repository, tmp_path):
    place(SENTIMENT, repository, "reviews", 12)
    (repository / "reviews" / "tmp.3").mkdir()  # not a version: ignored
    (repository / "empty").mkdir()  # a model with no version yet: left out
    assert scan([repository]) == {
        "dates": {1: repository / "dates" / "1"},
        "reviews": {1: repository / "reviews" / "1", 12: repository / "reviews" / "12"}}
    # A run or export folder is one model at version 1, named by --name or its folder.
    assert scan([SENTIMENT, repository / "dates" / "1"], None).keys() == {"sentiment", "1"}
    assert scan([SENTIMENT], "mine") == {"mine": {1: SENTIMENT}}


@pytest.mark.parametrize("case, error", [
    ("missing", "{t}/nope: no such file or folder"),
    ("not a repository", "{t}/loose: not a run folder, an export folder or a model repository "
                         "(REPO/NAME/VERSION/ folders)"),
    ("same name twice", "{t}/models/reviews: a second model named 'reviews'; give each its own "
                        "name"),
    ("unsafe name", "{t}/models/b a d: model name 'b a d' is not URL-safe; expected letters, "
                    "digits, '_', '.' or '-' (at most 128)"),
    ("--name for several", "--name x: names one model, but the targets hold 2 (dates, reviews)"),
])
def test_scan_errors_are_one_line(repository, tmp_path, case, error):
    targets, name = [repository], None
    if case == "missing":
        targets = [tmp_path / "nope"]
    elif case == "not a repository":
        (tmp_path / "loose").mkdir()
        (tmp_path / "loose" / "notes.txt").write_text("hello")
        targets = [tmp_path / "loose"]
    elif case == "same name twice":
        other = tmp_path / "other"
        place(SENTIMENT, other, "reviews", 1)
        targets = [other, repository]
    elif case == "unsafe name":
        place(SENTIMENT, repository, "b a d", 1)
    else:
        name = "x"
    with pytest.raises(ConfigError) as raised:
        scan(targets, name)
    assert str(raised.value) == error.format(t=tmp_path)


# ----- several models, several versions -----

def test_several_models_and_versions_in_one_server(repository):
    place(SENTIMENT, repository, "reviews", 2)
    server = load_server(str(repository), versions=2, access_log=False)
    with Client(server.app()) as client:
        status, metadata = client.json("GET", "/v2/models/reviews")
        assert (status, metadata["versions"], metadata["parameters"]["version"]) == (
            200, ["2", "1"], "2")
        assert client.json("GET", "/v2/models/dates")[1]["versions"] == ["1"]
        assert client.json("GET", "/v2/models/reviews/versions/1")[1]["parameters"][
            "version"] == "1"

        newest = client.json("POST", "/v2/models/reviews/infer", infer_body(["很好"]))[1]
        first = client.json("POST", "/v2/models/reviews/versions/1/infer",
                            infer_body(["很好"]))[1]
        assert (newest["model_version"], first["model_version"]) == ("2", "1")
        assert newest["outputs"] == first["outputs"]  # the same export, twice
        assert client.json("GET", "/v2/models/reviews/versions/1/ready") == (
            200, {"name": "reviews", "version": "1", "ready": True})

        # /predict: the model its "model" field names; without one, which of two?
        dates = client.json("POST", "/predict", {"texts": ["15:30"], "model": "dates"})
        assert dates[0] == 200 and "translation" in dates[1]["predictions"][0]
        reviews = client.json("POST", "/predict", {"texts": ["很好"], "model": "reviews"})
        assert reviews[0] == 200 and "label" in reviews[1]["predictions"][0]
        assert client.json("POST", "/predict", {"texts": ["很好"]}) == (
            400, {"error": "model: this server serves 2 models (dates, reviews); name one"})
        assert client.json("POST", "/predict", {"texts": ["a"], "model": "nope"}) == (
            404, {"error": "unknown model 'nope'; this server serves 'dates', 'reviews'"})
        assert client.json("POST", "/v2/models/reviews/versions/7/infer", infer_body(["a"])) == (
            404, {"error": "model 'reviews' has no version '7' loaded; loaded: 2, 1"})
        assert client.json("POST", "/predict", {"texts": ["a"], "model": 3}) == (
            400, {"error": "model: expected a model's name (a string), got a number"})

        assert client.json("GET", "/v2/repository/index") == (200, [
            {"name": "dates", "version": "1", "state": "READY"},
            {"name": "reviews", "version": "2", "state": "READY"},
            {"name": "reviews", "version": "1", "state": "READY"}])
        assert loaded_versions(client) == {("dates", "1"), ("reviews", "2"), ("reviews", "1")}
        import keras_lstm  # the server's version: the package's one version

        assert client.json("GET", "/v2")[1]["version"] == keras_lstm.__version__
        page = client.request("GET", "/")  # the page of the first model by name
        assert page[0] == 200 and b'"name": "dates"' in page[2]


def test_the_newest_version_serves_by_default(repository):
    place(SENTIMENT, repository, "reviews", 3)
    server = load_server(str(repository), access_log=False)  # --versions 1
    with Client(server.app()) as client:
        assert client.json("GET", "/v2/models/reviews")[1]["versions"] == ["3"]
        answer = client.json("POST", "/v2/models/reviews/infer", infer_body(["好"]))[1]
        assert answer["model_version"] == "3"
        assert client.json("POST", "/v2/models/reviews/versions/1/infer", infer_body(["a"]))[
            1] == {"error": "model 'reviews' has no version '1' loaded; loaded: 3"}


# ----- hot reload -----

async def _hammer(client, stop, answers):
    """Sends infer and /predict requests back to back until `stop` is set."""
    body = json.dumps(infer_body(["质量很好", "太差了"])).encode()
    predict = json.dumps({"texts": ["还行"], "model": "reviews"}).encode()
    while not stop.is_set():
        status, _, raw = await client.send("POST", "/v2/models/reviews/infer", body)
        answers.append((status, json.loads(raw).get("model_version")))
        status, _, raw = await client.send("POST", "/predict", predict)
        answers.append((status, None))
        await asyncio.sleep(0)


def test_a_new_version_swaps_in_under_load_with_no_failed_request(repository):
    lines = []
    server = load_server(str(repository), poll_seconds=0.1, log=lines.append,
                         access_log=False)
    with Client(server.app()) as client:
        old = server.version("reviews")

        async def scenario():
            stop, answers = asyncio.Event(), []
            senders = [asyncio.ensure_future(_hammer(client, stop, answers)) for _ in range(4)]
            await asyncio.sleep(0.3)
            await asyncio.get_running_loop().run_in_executor(
                None, place, SENTIMENT, repository, "reviews", 2)
            deadline = time.monotonic() + 60
            while (200, "2") not in answers[-8:] and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # and on for a while with the new version
            stop.set()
            await asyncio.gather(*senders)
            while old.requests or old.batcher.task is not None:  # being unloaded
                await asyncio.sleep(0.01)
                assert time.monotonic() < deadline, "the old version was never unloaded"
            return answers

        answers = client.run(scenario())
        statuses = {status for status, _ in answers}
        versions = [version for _, version in answers if version]
        assert statuses == {200}, f"failed requests during the swap: {statuses}"
        assert versions[0] == "1" and versions[-1] == "2" and len(versions) > 20
        # Once the new version answered, the old one never did again.
        assert "1" not in versions[versions.index("2"):]
        assert old.retired and loaded_versions(client) == {("dates", "1"), ("reviews", "2")}
    events = [json.loads(line) for line in lines]
    assert {"event": "version loaded", "model": "reviews", "version": 2,
            "runtime": "onnx"} in events
    assert {"event": "version unloaded", "model": "reviews", "version": 1} in events


def test_a_broken_version_is_refused_and_the_current_one_serves_on(repository):
    lines = []
    server = load_server(str(repository), log=lines.append, access_log=False)
    broken = repository / "reviews" / "2"
    broken.mkdir()
    (broken / "metadata.json").write_text("{ not json")
    with Client(server.app()) as client:
        client.run(server.reload())
        refused = [json.loads(line) for line in lines if "version refused" in line]
        assert len(refused) == 1 and refused[0]["model"] == "reviews"
        assert refused[0]["version"] == 2 and refused[0]["error"].startswith("ArtifactError: ")
        assert "\n" not in lines[-1]
        answer = client.json("POST", "/v2/models/reviews/infer", infer_body(["好"]))
        assert answer[0] == 200 and answer[1]["model_version"] == "1"
        assert {"name": "reviews", "version": "2", "state": "UNAVAILABLE",
                "reason": "failed to load (see the server's log)"} in client.json(
            "GET", "/v2/repository/index")[1]

        client.run(server.reload())  # unchanged: not tried again, no second line
        assert sum("version refused" in line for line in lines) == 1

        shutil.rmtree(broken)  # fixed: its files change, so it is tried again
        place(SENTIMENT, repository, "reviews", 2)
        client.run(server.reload())
        answer = client.json("POST", "/v2/models/reviews/infer", infer_body(["好"]))
        assert answer[1]["model_version"] == "2"


def test_a_model_whose_folders_vanish_serves_on_and_a_new_model_appears(repository):
    server = load_server(str(repository), access_log=False, log=lambda line: None)
    with Client(server.app()) as client:
        shutil.rmtree(repository / "dates")
        place(SENTIMENT, repository, "more", 1)
        client.run(server.reload())
        assert client.json("GET", "/v2/models/dates")[0] == 200
        assert client.json("POST", "/predict", {"texts": ["好"], "model": "more"})[0] == 200


@pytest.mark.slow
def test_sighup_rescans_the_repository_of_a_running_server(repository):
    (port,) = free_ports(1)
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_lstm", "serve", str(repository), "--port", str(port),
         "--no-access-log"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)

        def versions():
            with urllib.request.urlopen(f"{url}/v2/models/reviews", timeout=10) as answer:
                return json.load(answer)["versions"]

        assert versions() == ["1"]
        place(SENTIMENT, repository, "reviews", 2)
        assert versions() == ["1"]  # no polling: nothing happens until asked
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while versions() != ["2"]:
            assert time.monotonic() < deadline, "SIGHUP did not load version 2"
            time.sleep(0.1)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    events = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["version loaded", "version unloaded"]


def test_serve_command_line_errors_are_one_line(tmp_path):
    def run(*args):
        result = subprocess.run([sys.executable, "-m", "keras_lstm", "serve", *map(str, args)],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        return result.returncode, result.stderr.strip()

    assert run(tmp_path / "nope") == (2, f"keras-lstm: error: {tmp_path / 'nope'}: no such file or folder")
    assert run(SENTIMENT, "--versions", "0") == (2, "keras-lstm: error: --versions: expected a positive "
                                                    "number")
    assert run(SENTIMENT, "--poll-seconds", "-1") == (2, "keras-lstm: error: --poll-seconds: expected a "
                                                         "number > 0")
