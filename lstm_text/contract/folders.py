"""Finding the tokenizer.json of a file, an export folder or a run folder."""

from __future__ import annotations

import os
from pathlib import Path

from lstm_text.contract.encoder import TextEncoder
from lstm_text.contract.spec import TOKENIZER_FILE, ContractError

__all__ = ["encoder_for"]


def encoder_for(target: str | os.PathLike) -> TextEncoder:
    """The `TextEncoder` of a tokenizer.json file, an export folder or a run folder.

    A folder gives its `tokenizer.json` (sentiment) or `source_tokenizer.json`
    (translation: the side that takes text), looked for in the folder and
    then in its `export/` subfolder.

    Raises:
        ContractError: naming `target` when no tokenizer.json is found.
    """
    target = Path(target)
    if not target.is_dir():
        return TextEncoder.from_json(target)
    for folder in (target, target / "export"):
        for name in (TOKENIZER_FILE, f"source_{TOKENIZER_FILE}"):
            if (folder / name).is_file():
                return TextEncoder.from_json(folder / name)
    raise ContractError(f"{target}: no {TOKENIZER_FILE} or source_{TOKENIZER_FILE} "
                        f"(in the folder or its export/)")
