"""tokenizer.json: the tokenizer contract as data, and the Python twin that reads only it.

An app that receives `model.onnx` or `model.tflite` needs to turn text into
the same ids the model was trained on. `tokenizer.json` holds every rule of
`lstm_text.PyTokenizer` plus the vocabulary as data (character classes as
explicit Unicode code-point ranges, the stop-word list, special tokens,
truncation), so that a port in any language can be written from it and from
`docs/tokenizer.md` alone, and tested against `tokenizer_tests.jsonl`.

`TextEncoder` is the reference implementation of the contract: it is built
from the document only (it does not read `TokenizerConfig` or
`lstm_text.rules`), so any rule missing from the document would show up as a
test failure against `PyTokenizer` and the tensorflow-text tokenizer.
`web/tokenizer.js` is the second implementation.

Unicode: NFKC and lower-casing depend on the Unicode version of the library
that implements them. The document records the version of the Python that
wrote it and the code points that were unassigned in that version; every
implementation passes those code points through normalisation and case
folding unchanged, so a platform with a newer Unicode (a browser, a phone)
gives the same result.

The package keeps one job a module: `spec` (format constants and
`ContractError`), `document` (writing tokenizer.json), `encoder`
(`TextEncoder`), `folders` (finding the file of a folder), `json_lines` (the
`keras-lstm tokenize` protocol) and `golden` (the golden vectors). Every name
is importable from `lstm_text.contract`.
"""

from lstm_text.contract.document import tokenizer_document, write_tokenizer_json
from lstm_text.contract.encoder import TextEncoder
from lstm_text.contract.folders import encoder_for
from lstm_text.contract.golden import (
    check_golden_vectors,
    golden_cases,
    golden_records,
    write_golden_vectors,
    write_tokenizer_files,
)
from lstm_text.contract.json_lines import encode_json_lines, run_json_lines
from lstm_text.contract.spec import (
    FORMAT_VERSION,
    GOLDEN_FILE,
    KIND,
    ROLES,
    TOKENIZER_FILE,
    ContractError,
)

__all__ = [
    "FORMAT_VERSION",
    "GOLDEN_FILE",
    "KIND",
    "ROLES",
    "TOKENIZER_FILE",
    "ContractError",
    "TextEncoder",
    "check_golden_vectors",
    "encode_json_lines",
    "encoder_for",
    "golden_cases",
    "golden_records",
    "run_json_lines",
    "tokenizer_document",
    "write_golden_vectors",
    "write_tokenizer_files",
    "write_tokenizer_json",
]
