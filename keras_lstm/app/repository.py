"""What `keras-lstm serve` serves: models by name, each in numbered versions.

A serve target is one of

- a run folder or an export folder: one model, named after the run folder
  (or `--name`), version 1;
- a model repository `REPO/`, the layout of TF Serving and Triton:
  `REPO/NAME/VERSION/` with VERSION a positive integer and each version folder
  an export folder (or a run folder), e.g. `models/reviews/1/`,
  `models/reviews/2/`, `models/dates/1/`.

`scan` reads the targets into `{name: {version: folder}}`. `Models` holds the
versions served, loads the newest at start, and on a rescan (`--poll-seconds`,
SIGHUP) loads new ones and retires old ones. `ServedVersion` is one loaded
version: its runtime, its batcher, the requests it holds, and the checks of a
request against its model (beam, attention, explain). None of them knows HTTP.

Put a new version in place whole: write it beside the repository and rename
it into `NAME/` (`keras-lstm export` writes its folder that way). A version
folder seen half-written fails its load, is refused, and is tried again once
its files change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path

from keras_lstm.app.batcher import Batcher
from keras_lstm.core.errors import ConfigError, KerasLSTMError
from keras_lstm.core.schemas import CONFIG_FILE, METADATA_FILE, read_metadata

__all__ = ["BadRequest", "Models", "ServedVersion", "default_backend", "default_name",
           "is_model_folder", "one_line", "scan", "signature"]

class BadRequest(Exception):
    """A request the server refuses: `status` and a one-line message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
VERSION = re.compile(r"[1-9][0-9]{0,17}")  # what a version folder is called
MAX_BEAM = 16


def is_model_folder(path) -> bool:
    """Whether `path` is a run folder, an export folder, or one file of an export (a folder
    holding `export/metadata.json` counts as the run folder around it)."""
    path = Path(path)
    return path.is_file() or any((path / name).is_file() for name in
                                 (CONFIG_FILE, METADATA_FILE, f"export/{METADATA_FILE}"))


def default_name(target) -> str:
    """The run folder's name: TARGET itself, or the folder around an export folder."""
    path = Path(target).resolve()
    if path.is_file():
        path = path.parent
    if path.name == "export" and (path.parent / CONFIG_FILE).is_file():
        path = path.parent
    return path.name


def default_backend(target) -> str | None:
    """onnx where TARGET has an ONNX export, else the runtimes' default.

    Raises:
        ArtifactError: a metadata.json that cannot be read (one line).
    """
    path = Path(target)
    for folder in (path / "export", path):
        if (folder / METADATA_FILE).is_file():
            if "onnx" in read_metadata(folder)["artifacts"]:
                return "onnx"
    return None


def scan(targets, name: str | None = None) -> dict[str, dict[int, Path]]:
    """The models of the serve targets: `{name: {version: folder}}`.

    A model folder is one model at version 1 (named `name`, or after its run
    folder); any other folder is a repository of `NAME/VERSION/` folders. Only
    integer VERSION folders count (`NAME/tmp.3/` is ignored); a NAME without
    any is left out, so a model appears once its first version is in place.

    Raises:
        ConfigError: a missing target, a folder that is neither kind, a name
            that is not URL-safe, two models of one name, or `name` given for
            several models (one line each).
    """
    targets = [Path(target) for target in targets]
    models: dict[str, dict[int, Path]] = {}

    def add(model, versions, where):
        if not NAME.fullmatch(model):
            raise ConfigError(f"{where}: model name {model!r} is not URL-safe; expected letters, "
                              "digits, '_', '.' or '-' (at most 128)")
        if model in models:
            raise ConfigError(f"{where}: a second model named {model!r}; give each its own name")
        models[model] = versions

    for target in targets:
        if not target.exists():
            raise ConfigError(f"{target}: no such file or folder")
        if is_model_folder(target):
            add(name or default_name(target), {1: target}, target)
            continue
        found = 0
        for folder in sorted(p for p in target.iterdir() if p.is_dir()):
            versions = {int(v.name): v for v in folder.iterdir()
                        if v.is_dir() and VERSION.fullmatch(v.name)}
            if versions:
                add(folder.name, versions, folder)
                found += 1
        if not found and not _looks_like_repository(target):
            raise ConfigError(f"{target}: not a run folder, an export folder or a model "
                              "repository (REPO/NAME/VERSION/ folders)")
    if name is not None and len(models) > 1:
        raise ConfigError(f"--name {name}: names one model, but the targets hold "
                          f"{len(models)} ({', '.join(models)})")
    return models


def _looks_like_repository(folder: Path) -> bool:
    """An empty repository is one: a folder of model folders not yet versioned, or none."""
    return all(child.is_dir() and not is_model_folder(child) for child in folder.iterdir())


def signature(folder) -> tuple:
    """What a version folder holds now (names, sizes, modification times): a refused
    version is tried again only once this changes."""
    folder = Path(folder)
    if folder.is_file():
        stat = folder.stat()
        return ((folder.name, stat.st_size, stat.st_mtime_ns),)
    entries = []
    for path in sorted(folder.rglob("*")):
        with contextlib.suppress(OSError):
            stat = path.stat()
            entries.append((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ServedVersion:
    """One loaded version of a model: its runtime and batcher, and its requests' checks.

    Args:
        runtime: A `keras_lstm.runtimes` runtime (thread-safe).
        name, version: The model's name and version number.
        path: The folder it was loaded from.
        max_batch, max_wait_ms, executor: Its dynamic batching
            (`keras_lstm.app.batcher.Batcher`; max_batch 1: each request its own call).
        observe: `observe(version, key, texts, waits)` as each runtime call starts.
    """

    def __init__(self, runtime, name: str, version: int, path=None, *, max_batch: int = 32,
                 max_wait_ms: float = 2.0, executor=None, observe=None):
        self.runtime = runtime
        self.name = name
        self.version = int(version)
        self.path = path
        self.max_batch = max_batch
        self.executor = executor
        self.observe = observe or (lambda *args: None)
        self.requests = 0  # requests that chose this version and are not answered
        self.idle = asyncio.Event()  # set while `requests` is 0
        self.idle.set()
        self.retired = False  # no new requests reach it; unloaded once `requests` is 0
        self.labels = list(getattr(runtime, "labels", None) or [])
        self.batcher = Batcher(self.call, max_batch, max_wait_ms / 1000, executor,
                               in_flight=lambda: self.requests,
                               observe=lambda key, size, waits: self.observe(self, key, size,
                                                                             waits))

    def __repr__(self):
        return f"ServedVersion({self.name!r}, {self.version})"

    @property
    def label(self) -> str:
        """The version as the protocol writes it (a string)."""
        return str(self.version)

    # ----- the runtime call (in a worker thread) -----

    def call(self, key, texts):
        """`key` = (route, beam): "predict" → the runtime's rows ("attention": with the
        attention maps, "explain": with the explanations); "infer" → raw outputs per text."""
        route, beam = key
        if route == "predict":
            return self.runtime.rows(texts, beam=beam)
        if route == "attention":
            return self.runtime.rows(texts, beam=beam, attention=True)
        if route == "explain":
            return self.runtime.rows(texts, explain=True)
        return self.runtime.infer(texts, beam=beam)

    async def answer(self, key, texts):
        """The call's results for `texts`, batched with other requests (or alone)."""
        if self.max_batch <= 1:
            loop = asyncio.get_running_loop()
            queued = loop.time()

            def timed():
                self.observe(self, key, len(texts), [loop.time() - queued])
                return self.call(key, texts)

            # Cancelled (a timeout) before a thread takes it, the call never runs.
            return await loop.run_in_executor(self.executor, timed)
        return await self.batcher.submit(key, texts)

    @contextlib.contextmanager
    def held(self):
        """Counts a request as this version's while it runs (it is not unloaded under it)."""
        self.requests += 1
        self.idle.clear()
        try:
            yield self
        finally:
            self.requests -= 1
            if not self.requests:
                self.idle.set()
            self.batcher.wake()  # a batch waiting for this request stops waiting

    # ----- life -----

    async def start(self):
        """Starts its batcher, then warms it and checks its answer to one text.

        Raises:
            Exception: the warm-up call failed or answered something else than one row.
        """
        if self.max_batch > 1:
            self.batcher.start()
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self.executor, self.call, ("predict", None),
                                          ["warm up"])
        if not (isinstance(rows, list) and len(rows) == 1 and isinstance(rows[0], dict)
                and ("label" in rows[0] or "translation" in rows[0])):
            raise ValueError(f"the check request got {json.dumps(rows, default=str)[:80]}, "
                             "not one row with a label or a translation")

    async def stop(self):
        """Waits for the requests it holds, then stops its batcher."""
        await self.idle.wait()
        if self.batcher.task is not None:
            await self.batcher.stop()

    # ----- a request's fields against this model -----

    def beam(self, value, field="beam"):
        if value is None:
            return None
        if "beam" not in self.runtime.options:
            raise BadRequest(f"{field} does not apply to a {self.runtime.task} model")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BEAM:
            raise BadRequest(f"{field}: expected an integer from 1 to {MAX_BEAM}, got "
                             f"{json.dumps(value)[:40]}")
        return value

    @property
    def gives_attention(self) -> bool:
        """Whether this model and runtime give attention maps (`"attention": true`)."""
        return bool(getattr(self.runtime, "gives_attention", False))

    def attention(self, value, beam):
        """`"attention"` of a /predict body → whether to add the attention maps."""
        if value is None or value is False:
            return False
        if not isinstance(value, bool):
            raise BadRequest(f"attention: expected true or false, got {json.dumps(value)[:40]}")
        if not hasattr(self.runtime, "attention_map"):
            raise BadRequest(f"attention does not apply to a {self.runtime.task} model")
        if not self.runtime.attention:
            raise BadRequest("attention: this translation model has no attention (it was "
                             "trained with --no-attention)")
        if not self.gives_attention:
            raise BadRequest(f"attention: the {self.runtime.backend} runtime gives no attention "
                             "weights; serve with --runtime onnx, tflite or keras")
        if beam not in (None, 1):
            raise BadRequest(f"attention: the map is given for greedy decoding only; ask without "
                             f"beam (got beam {beam})")
        return True

    def explain(self, value):
        """`"explain"` of a /predict body → whether to add the explanations."""
        if value is None or value is False:
            return False
        if not isinstance(value, bool):
            raise BadRequest(f"explain: expected true or false, got {json.dumps(value)[:40]}")
        if not hasattr(self.runtime, "explain"):
            raise BadRequest(f"explain: explanations are for sentiment models; this is a "
                             f"{self.runtime.task} model")
        return True

    def outputs(self):
        return self.runtime.tensors()


class Models:
    """The versions being served, by model name, and their loading and swapping.

    Args:
        served: `served(runtime, name, number, path)` → a `ServedVersion` (the
            server's batching and metrics around a runtime).
        targets: Serve targets (`scan`); none for a server built on one runtime.
        name: `--name`, for a single run or export folder.
        backend: The runtime for every version (default: onnx where a version
            has an ONNX export, else the runtimes' default).
        keep: How many of each model's newest versions are served.
        log: Called with each JSON event line (loaded, refused, unloaded).
        on_load: `on_load(version, loaded)` as a version comes and goes (metrics).
    """

    def __init__(self, served, targets=(), name: str | None = None,
                 backend: str | None = None, keep: int = 1, log=print,
                 on_load=lambda version, loaded: None):
        self.served = served
        self.targets = [str(target) for target in targets or ()]
        self.name = name
        self.backend = backend
        self.keep = keep
        self.log = log
        self.on_load = on_load
        self.models: dict[str, dict[int, ServedVersion]] = {}  # name → version → loaded
        self.refused: dict[tuple[str, int], tuple] = {}  # versions that failed, as they were
        self.unloading: set[asyncio.Task] = set()
        self.reloading: asyncio.Lock | None = None

    def load_version(self, name: str, number: int, path) -> ServedVersion:
        """Loads one version folder (errors are `KerasLSTMError` lines); thread-safe."""
        from keras_lstm import runtimes

        backend = self.backend or default_backend(path)
        return self.served(runtimes.load(path, backend=backend), name, number, path)

    def load_targets(self):
        """The first load: each model's newest versions; any failure stops the server (one line)."""
        for name, folders in scan(self.targets, self.name).items():
            for number in sorted(folders, reverse=True)[:self.keep]:
                self.add(self.load_version(name, number, folders[number]))
        if not self.models:
            raise ConfigError(f"{', '.join(self.targets)}: no model to serve yet (a repository "
                              "needs NAME/VERSION/ folders)")

    def add(self, version: ServedVersion):
        """Serves `version` (started): a new dict, so a request sees one state or the other."""
        self.models[version.name] = {**self.models.get(version.name, {}),
                                     version.version: version}
        self.on_load(version, True)

    def retire(self, version: ServedVersion):
        """Takes `version` out of service; it unloads once its requests are answered."""
        self.models[version.name] = {n: v for n, v in self.models[version.name].items()
                                     if v is not version}
        version.retired = True

        async def unload():
            await version.stop()
            self.on_load(version, False)
            self.event("version unloaded", version)

        task = asyncio.get_running_loop().create_task(unload())
        self.unloading.add(task)
        task.add_done_callback(self.unloading.discard)

    def version(self, name: str | None = None, number=None) -> ServedVersion:
        """The loaded version a request asks for: the newest of `name` without `number`.

        Raises:
            BadRequest: no such model or version (404), or no name where several are served.
        """
        if name is None:
            if len(self.models) != 1:
                raise BadRequest(f"model: this server serves {len(self.models)} models "
                                 f"({', '.join(sorted(self.models))}); name one")
            name = next(iter(self.models))
        versions = self.models.get(name)
        if not versions:
            raise BadRequest(f"unknown model {name!r}; this server serves "
                             f"{', '.join(repr(n) for n in sorted(self.models))}", 404)
        if number is None or number == "":
            return versions[max(versions)]
        found = versions.get(int(number)) if VERSION.fullmatch(str(number)) else None
        if found is None:
            loaded = ", ".join(str(n) for n in sorted(versions, reverse=True))
            raise BadRequest(f"model {name!r} has no version {str(number)[:20]!r} loaded; "
                             f"loaded: {loaded}", 404)
        return found

    def event(self, what: str, version=None, **fields):
        """One JSON log line about the models (loaded, refused, unloaded)."""
        where = {"model": version.name, "version": version.version} if version else {}
        self.log(json.dumps({"event": what, **where, **fields}, ensure_ascii=False))

    async def start(self):
        """Starts (warms and checks) every loaded version; raises what the first failure raised."""
        for versions in list(self.models.values()):
            for version in versions.values():
                await version.start()

    async def reload(self):
        """Rescans the targets: loads, warms and checks new versions, then swaps them in.

        A version that fails is refused with one log line (and tried again once its
        files change); the versions being served go on. Versions beyond the newest
        `keep` of a model are retired: no new request reaches them, and they are
        unloaded once the requests they hold are answered. A model whose folders
        vanished keeps serving what it has.
        """
        if self.reloading is None:
            self.reloading = asyncio.Lock()
        loop = asyncio.get_running_loop()
        async with self.reloading:
            try:
                found = await loop.run_in_executor(None, scan, self.targets, self.name)
            except KerasLSTMError as error:
                self.event("rescan failed", error=one_line(error))
                return
            for name, folders in found.items():
                for number in sorted(folders, reverse=True)[:self.keep]:
                    if number not in self.models.get(name, {}):
                        await self._try(name, number, folders[number])
                loaded = self.models.get(name, {})
                present = sorted((n for n in loaded if n in folders), reverse=True)
                keep = set(present[:self.keep] or sorted(loaded, reverse=True)[:self.keep])
                for number, version in list(loaded.items()):
                    if number not in keep:
                        self.retire(version)

    async def _try(self, name, number, path):
        """Loads, starts and adds one version, or refuses it with one log line."""
        loop = asyncio.get_running_loop()
        state = await loop.run_in_executor(None, signature, path)
        if self.refused.get((name, number)) == state:
            return
        version = None
        try:
            version = await loop.run_in_executor(None, self.load_version, name, number, path)
            await version.start()
        except Exception as error:  # noqa: BLE001  refused: one line, the others serve on
            self.refused[(name, number)] = state
            self.log(json.dumps({"event": "version refused", "model": name, "version": number,
                                 "path": str(path), "error": one_line(error)},
                                ensure_ascii=False))
            if version is not None:
                await version.stop()
            return
        self.refused.pop((name, number), None)
        self.add(version)
        self.event("version loaded", version, runtime=str(version.runtime.backend))


def one_line(error) -> str:
    """An exception as one log line: its type and message, whitespace folded."""
    return " ".join(f"{type(error).__name__}: {error}".split())
