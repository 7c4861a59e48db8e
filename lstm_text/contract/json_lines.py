"""The `keras-lstm tokenize` protocol: `{"text": ...}` lines in, `{"ids": [...]}` lines out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from lstm_text.contract.encoder import TextEncoder
from lstm_text.contract.spec import ContractError

__all__ = ["encode_json_lines", "run_json_lines"]


def encode_json_lines(encoder: TextEncoder, lines: Iterable[str], *,
                      source: str = "<stdin>") -> Iterator[str]:
    """`{"text": ...}` lines → `{"ids": [...]}` lines (the `keras-lstm tokenize` protocol).

    Blank lines are skipped. Output lines are compact JSON (no spaces), as
    `web/tokenizer.js` writes them.

    Raises:
        ContractError: naming `source` and the line, for a line that is not a
            JSON object with a string field "text".
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ContractError(f"{source}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ContractError(f"{source}, line {number}: field 'text' (a string) is missing")
        yield json.dumps({"ids": encoder.encode(record["text"])}, separators=(",", ":"))


def run_json_lines(encoder: TextEncoder, stdin: TextIO | None = None,
                   stdout: TextIO | None = None) -> int:
    """Runs `encode_json_lines` from `stdin` to `stdout`; returns the number of lines written."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    count = 0
    for line in encode_json_lines(encoder, stdin):
        stdout.write(line + "\n")
        count += 1
    stdout.flush()
    return count
