"""Translation with onnxruntime and the Python decoding loop; no TensorFlow, no Keras."""

import json
from pathlib import Path

import numpy as np

from export.metadata import ArtifactError
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary


class OnnxTranslator:
    """Loads RUN/export of a translation run; `translate(texts, beam=1)`."""

    def __init__(self, folder):
        import onnxruntime

        folder = Path(folder)
        try:
            metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ArtifactError(f"{folder}: not a translation export ({error})") from None
        if metadata.get("task") != "translation":
            raise ArtifactError(f"{folder}: not a translation export")
        self.metadata = metadata
        self.source_tokenizer = PyTokenizer(TokenizerConfig.from_dict(metadata["source_tokenizer"]))
        self.source_vocab = Vocabulary.load(folder / "source_vocabulary.txt")
        self.target_vocab = Vocabulary.load(folder / "target_vocabulary.txt")
        options = {"providers": ["CPUExecutionProvider"]}
        self.encoder = onnxruntime.InferenceSession(str(folder / metadata["encoder"]["file"]),
                                                    **options)
        self.decoder = onnxruntime.InferenceSession(str(folder / metadata["decoder"]["file"]),
                                                    **options)

    def encode(self, texts):
        rows = [self.source_vocab.encode(self.source_tokenizer.tokenize(t)) or [1] for t in texts]
        ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids

    def translate(self, texts, beam=1, length_penalty=0.6):
        """Translations of `texts` (greedy for `beam=1`, else beam search)."""
        from lstm_text.decoding import translate_batch

        def encode(source):
            return tuple(self.encoder.run(None, {"source_ids": source}))

        def decode(tokens, h, c, outputs, mask):
            return tuple(self.decoder.run(None, {"token": tokens, "h": h, "c": c,
                                                 "encoder_outputs": outputs,
                                                 "source_mask": mask}))[:3]

        return translate_batch(list(texts), self.encode, encode, decode, self.target_vocab,
                               self.metadata["max_output_length"], beam, length_penalty)
