"""EXPORT/web/: a static page that runs model.onnx in the browser with the JavaScript tokenizer.

The page (web/index.html, web/app.js) loads onnxruntime-web and `tokenizer.js`
from beside itself and `model.onnx`, `metadata.json`, `tokenizer.json` from
the export folder above it: no network at run time. onnxruntime-web comes
from `web/node_modules` (`npm ci` in web/, pinned by web/package-lock.json);
where it is not installed the page is still written and a note says what is
missing.

TensorFlow-free.
"""

import shutil
from pathlib import Path

from keras_lstm.core.errors import ArtifactError
from keras_lstm.core.schemas import METADATA_FILE, read_metadata

__all__ = ["ORT_DIST", "ORT_FILES", "PAGE_FILES", "WEB_SOURCE", "page_inputs", "write_web_page"]

WEB_SOURCE = Path(__file__).resolve().parents[1] / "web"
PAGE_FILES = ("index.html", "app.js", "tokenizer.js", "tokenizer.mjs")
# The single-threaded WebAssembly build: a classic script and the runtime it loads.
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_DIST = WEB_SOURCE / "node_modules" / "onnxruntime-web" / "dist"


def page_inputs(export_folder) -> list[str]:
    """The export's files the page loads, by task.

    sentiment: `model.onnx`, `tokenizer.json`; translation: `encoder.onnx`,
    `decoder.onnx`, `source_tokenizer.json`, `target_tokenizer.json` (ONNX
    file names from metadata.json's `artifacts.onnx` where it names them).

    Raises:
        ArtifactError: no readable metadata.json (`keras_lstm.core.schemas.read_metadata`).
    """
    # The one reader of metadata.json: a damaged file is one ArtifactError line.
    metadata = read_metadata(export_folder)
    onnx = metadata["artifacts"].get("onnx") or {}
    if metadata["task"] == "sentiment":
        return [METADATA_FILE, onnx.get("file", "model.onnx"), "tokenizer.json"]
    return [METADATA_FILE, (onnx.get("encoder") or {}).get("file", "encoder.onnx"),
            (onnx.get("decoder") or {}).get("file", "decoder.onnx"),
            "source_tokenizer.json", "target_tokenizer.json"]


def write_web_page(export_folder, *, ort_dist=None) -> tuple[Path, str | None]:
    """Writes EXPORT/web/ (the page, the tokenizer and onnxruntime-web's runtime files).

    Serve the export folder over HTTP and open `/web/index.html`, e.g.
    `python -m http.server -d EXPORT` then http://127.0.0.1:8000/web/.

    Args:
        export_folder: An export with ONNX models and tokenizer.json files (see
            `page_inputs`).
        ort_dist: onnxruntime-web's `dist` folder (default: web/node_modules/...).

    Returns:
        `(folder, note)`: the web folder, and `None` or a one-line note when
        onnxruntime-web was not found (the page then needs its `ort/` files).

    Raises:
        ArtifactError: the export folder lacks a file the page loads.
    """
    export_folder = Path(export_folder)
    for name in page_inputs(export_folder):
        if not (export_folder / name).is_file():
            raise ArtifactError(f"{export_folder}: no {name}; the web page needs it")
    target = export_folder / "web"
    (target / "ort").mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(WEB_SOURCE / name, target / name)
    dist = Path(ort_dist) if ort_dist is not None else ORT_DIST
    missing = [name for name in ORT_FILES if not (dist / name).is_file()]
    if missing:
        return target, (f"onnxruntime-web not found in {dist} (run `npm ci` in {WEB_SOURCE}); "
                        f"copy {', '.join(ORT_FILES)} into {target / 'ort'}")
    for name in ORT_FILES:
        shutil.copyfile(dist / name, target / "ort" / name)
    return target, None
