"""metadata.json is read one way (`keras_lstm.core.schemas.read_metadata`): a damaged
file is one `ArtifactError` line for `keras-lstm serve` (exit 2, no traceback) and for
the web page's `export.web.page_inputs`, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_lstm.core.errors import ArtifactError

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"format_version": 2, "task": "sentiment", "labels": ["negative", "positive"],
        "preprocessors": {}, "artifacts": {"onnx": {"file": "model.onnx"}}}
BROKEN = {
    "not JSON": ("{not json", "not valid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object, got list"),
    "a field missing": (json.dumps({"format_version": 2, "task": "sentiment"}),
                        "field 'preprocessors' is missing"),
    "artifacts not an object": (json.dumps({**GOOD, "artifacts": ["onnx"]}),
                                "field 'artifacts' must be a JSON object"),
}


def export_folder(root, text):
    folder = root / "export"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("case", list(BROKEN))
def test_serve_on_a_broken_metadata_json_is_one_line_and_exit_2(tmp_path, capsys, case):
    from keras_lstm.app.cli import main

    text, message = BROKEN[case]
    folder = export_folder(tmp_path, text)
    # The run folder around it and the export folder itself both reach the one reader.
    for target in (tmp_path, folder):
        assert main(["serve", str(target), "--port", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"keras-lstm: error: {folder / 'metadata.json'}: "), err
        assert message in err


def test_serve_in_a_process_prints_no_traceback(tmp_path):
    folder = export_folder(tmp_path, "{not json")
    result = subprocess.run([sys.executable, "-m", "keras_lstm", "serve", str(folder)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert "metadata.json: not valid JSON" in result.stderr


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_web_page_on_a_broken_metadata_json_is_one_artifact_error_line(tmp_path, case):
    from export.web import page_inputs, write_web_page

    text, message = BROKEN[case]
    folder = export_folder(tmp_path, text)
    for work in (page_inputs, write_web_page):
        with pytest.raises(ArtifactError, match=message) as raised:
            work(folder)
        assert "\n" not in str(raised.value)
    assert not (folder / "web").exists()  # nothing written for a broken export


def test_the_web_page_reads_the_onnx_file_names_from_metadata_json(tmp_path):
    from export.web import page_inputs

    folder = export_folder(tmp_path, json.dumps(GOOD))
    assert page_inputs(folder) == ["metadata.json", "model.onnx", "tokenizer.json"]
    with pytest.raises(ArtifactError, match="not an export folder"):
        page_inputs(tmp_path / "nowhere")
