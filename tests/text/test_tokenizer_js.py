"""web/tokenizer.js, the JavaScript port of tokenizer.json, gives the Python twin's ids under Node."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary
from lstm_text.contract import (
    TextEncoder,
    encode_json_lines,
    golden_cases,
    tokenizer_document,
    write_golden_vectors,
    write_tokenizer_json,
)

WEB = Path(__file__).resolve().parents[2] / "web"
TOKENIZER_JS = WEB / "tokenizer.js"
NODE = shutil.which("node")

if NODE is None and os.environ.get("CI") == "true":
    raise RuntimeError("node is required in CI (apt-get install nodejs)")
# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(NODE is None, reason="node not found on PATH: the JavaScript "
                                                     "tokenizer cannot be run here")]

CONFIGS = {
    "sentiment": (TokenizerConfig(), "text", 100),
    "english-stopwords": (TokenizerConfig(stopwords="english"), "text", 40),
    "cjk-bigrams-chinese": (TokenizerConfig(cjk_bigrams=True, stopwords="chinese"), "text", 60),
    "translation-source": (TokenizerConfig(lowercase=False, split_digits=True), "source", None),
    "translation-target": (TokenizerConfig(lowercase=False, mark_spaces=True, split_digits=True),
                           "target", None),
}


def node(*args, stdin=""):
    return subprocess.run([NODE, *map(str, args)], input=stdin.encode("utf-8"),
                          capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def corpus():
    from keras_lstm.data.default_reviews import load_default_reviews

    return load_default_reviews()[0][:1500]


@pytest.fixture(scope="module")
def golden(tmp_path_factory, corpus):
    """Per config: (tokenizer.json, tokenizer_tests.jsonl) with 1 500 corpus texts + hard cases."""
    folders = {}
    texts = corpus + golden_cases()
    for name, (config, role, max_length) in CONFIGS.items():
        folder = tmp_path_factory.mktemp(name)
        tokenizer = PyTokenizer(config)
        reserved = ("[START]", "[END]") if role == "target" else ()
        vocabulary = Vocabulary.build([tokenizer.tokenize(t) for t in corpus], max_size=2000,
                                      reserved=reserved)
        document = tokenizer_document(config, vocabulary, max_length, role=role)
        path = write_tokenizer_json(folder / "tokenizer.json", document)
        write_golden_vectors(folder / "tokenizer_tests.jsonl", TextEncoder.from_json(path), texts)
        folders[name] = folder
    return folders


@pytest.mark.parametrize("name", list(CONFIGS))
def test_node_gives_the_golden_ids(golden, name):
    folder = golden[name]
    lines = (folder / "tokenizer_tests.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
    expected = [json.dumps({"ids": json.loads(line)["ids"]}, separators=(",", ":"))
                for line in lines]
    result = node(TOKENIZER_JS, folder / "tokenizer.json", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr.decode()
    got = result.stdout.decode("utf-8").split("\n")
    assert got[-1] == "" and len(got) - 1 == len(expected) >= 1000
    mismatches = [(json.loads(line)["text"][:60], g, e)
                  for line, g, e in zip(lines, got, expected) if g != e]
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("name", ["sentiment", "translation-target"])
def test_node_check_mode_and_byte_identical_protocol(golden, name):
    folder = golden[name]
    result = node(TOKENIZER_JS, "--check", folder / "tokenizer.json",
                  folder / "tokenizer_tests.jsonl")
    count = len(golden_cases()) + 1500
    assert result.stdout.decode() == f"{folder / 'tokenizer_tests.jsonl'}: {count} texts, all ids equal\n"
    stdin = '{"text": "I don\'t like it!! 质量很好 👍"}\n\n{"text": "", "id": 7}\n'
    python = "".join(line + "\n" for line in encode_json_lines(
        TextEncoder.from_json(folder / "tokenizer.json"), stdin.split("\n")))
    assert node(TOKENIZER_JS, folder / "tokenizer.json", stdin=stdin).stdout.decode() == python


def test_node_check_mode_reports_a_mismatch(golden, tmp_path):
    lines = (golden["sentiment"] / "tokenizer_tests.jsonl").read_text(encoding="utf-8").split("\n")
    lines[2] = json.dumps(dict(json.loads(lines[2]), ids=[0, 0]))
    tampered = tmp_path / "tokenizer_tests.jsonl"
    tampered.write_text("\n".join(lines), encoding="utf-8")
    result = node(TOKENIZER_JS, "--check", golden["sentiment"] / "tokenizer.json", tampered)
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"error: {tampered}, line 3: ids [")
    assert result.stderr.decode().endswith("... differ from [0,0]...\n")


def test_node_error_messages(golden, tmp_path):
    document = json.loads((golden["sentiment"] / "tokenizer.json").read_text(encoding="utf-8"))
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(dict(document, format_version=2)), encoding="utf-8")
    result = node(TOKENIZER_JS, bad)
    assert (result.returncode, result.stderr.decode()) == (
        1, f"error: {bad}: field 'format_version' is 2; this reader supports 1\n")
    bad.write_text(json.dumps({k: v for k, v in document.items() if k != "vocabulary"}))
    assert node(TOKENIZER_JS, bad).stderr.decode() == f"error: {bad}: field 'vocabulary' is missing\n"
    missing = tmp_path / "absent.json"
    assert node(TOKENIZER_JS, missing).stderr.decode() == f"error: {missing}: file not found\n"
    result = node(TOKENIZER_JS, golden["sentiment"] / "tokenizer.json",
                  stdin='{"text": "a"}\n{"txt": "a"}\n')
    assert (result.returncode, result.stderr.decode()) == (
        1, "error: <stdin>, line 2: field 'text' (a string) is missing\n")
    assert node(TOKENIZER_JS).returncode == 2


def test_normalisation_and_case_folding_agree_on_every_code_point(golden):
    """NFKC + lower-casing (with final sigma) per code point, Python vs the JavaScript engine.

    The code points of planes 0 and 1, the CJK compatibility supplement and the
    tags block; unassigned ones included (they must pass through unchanged even
    where the engine's Unicode is newer than the document's).
    """
    planes = [*range(0x0, 0xD800), *range(0xE000, 0x20000), *range(0x2F800, 0x2FA20),
              *range(0xE0000, 0xE0200), 0x10FFFD]
    encoder = TextEncoder.from_json(golden["sentiment"] / "tokenizer.json")
    python = {}
    for cp in planes:
        char = chr(cp)
        row = [encoder.fold(char), encoder.fold("A" + char + "Σ"), encoder.fold("AΣ" + char)]
        if row != [char, "a" + char + "σ", "aς" + char]:
            python[str(cp)] = row
    script = """
const {Tokenizer} = require(process.argv[1]);
const fs = require("fs");
const tok = Tokenizer.fromJSON(fs.readFileSync(process.argv[2], "utf8"));
const out = {};
const ranges = [[0x0, 0xD7FF], [0xE000, 0x1FFFF], [0x2F800, 0x2FA1F], [0xE0000, 0xE01FF],
                [0x10FFFD, 0x10FFFD]];
for (const [a, b] of ranges) {
  for (let cp = a; cp <= b; cp++) {
    const ch = String.fromCodePoint(cp);
    const row = [tok.fold(ch), tok.fold("A" + ch + "Σ"), tok.fold("AΣ" + ch)];
    if (row[0] !== ch || row[1] !== "a" + ch + "σ" || row[2] !== "aς" + ch) out[cp] = row;
  }
}
process.stdout.write(JSON.stringify(out));
"""
    result = node("-e", script, TOKENIZER_JS, golden["sentiment"] / "tokenizer.json")
    assert result.returncode == 0, result.stderr.decode()
    javascript = json.loads(result.stdout)
    differ = sorted(set(python) ^ set(javascript)
                    | {cp for cp in set(python) & set(javascript) if python[cp] != javascript[cp]},
                    key=int)
    assert not differ, [(hex(int(cp)), python.get(cp), javascript.get(cp)) for cp in differ[:5]]
    assert len(python) > 3000  # the comparison saw the case pairs and compatibility forms


def test_es_module_entry_point(golden):
    script = (f'import {{Tokenizer}} from "{(WEB / "tokenizer.mjs").as_posix()}";'
              'import fs from "fs";'
              f'const t = Tokenizer.fromJSON(fs.readFileSync("{golden["sentiment"] / "tokenizer.json"}", "utf8"));'
              'const b = t.encodeBatch(["good film", "", "a b c"]);'
              'console.log(JSON.stringify([t.tokenize("ΣΟΦΟΣ don\'t 👍🏽"), b.shape, Array.from(b.data)]));')
    result = node("--input-type=module", "-e", script)
    assert result.returncode == 0, result.stderr.decode()
    tokens, shape, data = json.loads(result.stdout)
    encoder = TextEncoder.from_json(golden["sentiment"] / "tokenizer.json")
    assert tokens == encoder.tokenize("ΣΟΦΟΣ don't 👍🏽") == ["σοφος", "don't", "👍", "🏽"]
    batch = encoder.encode_batch(["good film", "", "a b c"])
    assert shape == list(batch.shape) and data == batch.reshape(-1).tolist()
