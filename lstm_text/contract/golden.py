"""Golden vectors: tokenizer_tests.jsonl, the texts and ids every port is tested against."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from keras_lstm.core.files import atomic_write_text
from lstm_text.contract.document import write_tokenizer_json
from lstm_text.contract.encoder import TextEncoder
from lstm_text.contract.spec import GOLDEN_FILE, TOKENIZER_FILE, ContractError

__all__ = ["check_golden_vectors", "golden_cases", "golden_records", "write_golden_vectors",
           "write_tokenizer_files"]


def golden_cases() -> list[str]:
    """Hard texts every port must get right (the 1 MB text is the last one).

    Emoji and ZWJ sequences, skin tones and flags, combining marks, full-width
    and compatibility forms, mixed and right-to-left scripts, control and
    format characters, case-mapping traps (final sigma, also next to letters
    whose Unicode properties changed after 14.0; dotted I, ß), CJK
    bigram edges, apostrophes, digits, whitespace of every kind, code points
    unassigned in Unicode 14 and a 1 MB text.
    """
    cases = [
        "", " ", "   \t\n ", "\u3000\u00a0\u2028\u2029\u0085", "\r\n\r\n",
        "I don't like it!! 质量很好 👍", "'Great' movie, NOT bad...", "''' '' ' x'y' 'tis rock'n'roll'",
        "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag 🇫🇷🇯🇵", "👍🏽 thumbs 👍🏿", "❤️ ❤︎ ☺", "a\u200db\u200cc\u2060d\ufeffe",
        "e\u0301 é cafe\u0301 Å Å", "ạ̈ q\u0323\u0307 Z̤̈", "\u0301leading combining", "x\u0308\u0308\u0308",
        "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３！？", "ﬁ ﬂ ﬃ ㎏ ㍿ Ⅻ ½ ² ℌ ℡", "ｶﾀｶﾅ ﾊﾟ ｶﾞ", "①②③ ⑽",
        "ΣΑΣ ΟΔΟΣ. ΣΟΦΟΣ'Σ Σ", "İstanbul ı I i", "STRASSE Straße ẞ", "ǅ ǈ ǋ Ǳ", "ʼn ΐ ǰ",
        "Ａ\u0301 K Ω Å",
        "日本語のテキストと한국어 텍스트", "中文English混合123数字", "质量很好!好", "好", "很好很好",
        "𠀀𠀁 𪚥 丽 龜", "ｶ好", "一 二 三",
        "نص عربي و русский текст", "שָׁלוֹם עולם ١٢٣ ۴۵۶", "\u202eevil\u202c text \u200fRTL\u200e",
        "मानक हिन्दी", "ภาษาไทย", "Ελληνικά ἄλφα", "Հայերեն", "ქართული", "አማርኛ", "ᏣᎳᎩ ꮳꮃꭹ",
        "\x00\x07tab\tnew\nline\r\n", "\x1b[31mred\x1b[0m", "\x7f\x80\x9f\u00ad soft\u00adhyphen",
        "\ufe0f\ufe0e\U000e0001\U000e0067", "\ud7ff\ue000\uf8ff private \U000f0000",
        "@united thanks http://t.co/x #fly $5.99 50% 3:30pm", "1,000,000 3.14 -42 1e10 ０１２",
        "can't won't y'all o'clock rock'n'roll", "NOT not Not nOt", "don’t ‘quoted’ “double”",
        "a\u0378b \u0530 \U0001faf8 \U0001fae8 \U0001cc00 \U0001ccf0 \ua7cb \U000e0080",
        "ΑΣ\u0378 Σ\u0378Α", "ʕΣ ΑʕΣ ΑΣˤ ΑΣ\U0001171e ΑΣ\u0301 ΑΣ'Σ ΣΑ.Σ", "tabs\t\tand\u3000ideographic\u3000spaces", " ▁ marks ▁▁ ",
        "<b>html</b> &amp; [PAD] [UNK] [START] [END]", "￥１００ ＄５ €5 £3 ₹10",
        "🤷‍♀️🧑🏽‍🚀 👩‍❤️‍💋‍👨", "#️⃣ 1️⃣ *️⃣", "ℝ ℕ 𝔸𝕓𝒸 𝟘𝟙",
    ]
    pieces = ["The film was not bad at all, 质量很好 👍🏽 ", "Ｆｕｌｌ ΣΟΦΟΣ e\u0301 ",
              "نص عربي \u200f ", "don't\t'stop'\n", "123 456 ", "\u0000\u200b"]
    unit = "".join(pieces)
    cases.append((unit * (1_000_000 // len(unit) + 1))[:1_000_000])
    return cases


def golden_records(encoder: TextEncoder, texts: Iterable[str]) -> Iterator[dict]:
    """`{"text", "ids", "tokens"}` per text (tokens are for debugging a port)."""
    for text in texts:
        tokens = encoder.tokenize(text)
        yield {"text": text, "ids": encoder.ids(tokens), "tokens": tokens}


def write_golden_vectors(path: str | os.PathLike, encoder: TextEncoder, texts: Iterable[str]) -> Path:
    """Writes tokenizer_tests.jsonl: one `{"text", "ids", "tokens"}` line per text.

    Lines are UTF-8 JSON separated by "\\n" only (texts may hold U+2028, so
    split on "\\n", not on every Unicode line break).

    Args:
        path: The file to write (through a temporary file and a rename).
        encoder: The `TextEncoder` of the tokenizer.json the file goes beside.
        texts: Texts to record; typically `golden_cases()` plus 1 000 or
            more training texts.

    Returns:
        The path written.
    """
    lines = (json.dumps(record, ensure_ascii=False, separators=(",", ":"))
             for record in golden_records(encoder, texts))
    atomic_write_text(path, "".join(line + "\n" for line in lines), newline="\n")
    return Path(path)


def write_tokenizer_files(folder: str | os.PathLike, document: dict, texts: Iterable[str] = (), *,
                          prefix: str = "") -> tuple[Path, Path]:
    """Writes `{prefix}tokenizer.json` and its golden `{prefix}tokenizer_tests.jsonl` into `folder`.

    The golden file holds `texts` (give at least 1 000 training texts) then
    `golden_cases()`, encoded by the `TextEncoder` of the written file.

    Args:
        folder: The export folder.
        document: From `tokenizer_document`.
        texts: Training texts to record.
        prefix: "" for a classifier; "source_" / "target_" for translation.

    Returns:
        The two paths written.
    """
    folder = Path(folder)
    path = write_tokenizer_json(folder / f"{prefix}{TOKENIZER_FILE}", document)
    golden = write_golden_vectors(folder / f"{prefix}{GOLDEN_FILE}", TextEncoder.from_json(path),
                                  [*texts, *golden_cases()])
    return path, golden


def check_golden_vectors(path: str | os.PathLike, encoder: TextEncoder) -> int:
    """Re-encodes every text of a golden file; returns the count or raises on the first mismatch.

    Raises:
        ContractError: naming the file and line of a malformed line or a mismatch.
    """
    path = Path(path)
    count = 0
    with path.open(encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                text, ids = record["text"], record["ids"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ContractError(f"{path}, line {number}: not a golden record") from None
            got = encoder.encode(text)
            if got != ids:
                raise ContractError(f"{path}, line {number}: ids {got[:8]}... differ from "
                                    f"{ids[:8]}...")
            count += 1
    return count
