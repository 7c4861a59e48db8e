"""A trained sentiment model with its tokenizer, vocabulary and labels, loaded from a run folder."""

from pathlib import Path

import numpy as np

from keras_lstm import runs


class SentimentClassifier:
    """Raw text in, label and probabilities out, from a run folder.

    Example:

    >>> classifier = SentimentClassifier.from_run("runs/demo/sentiment")
    >>> classifier.predict(["质量很好，很满意", "太差了，再也不买了"])
    [{'label': 'positive', 'probabilities': {...}}, ...]
    """

    def __init__(self, model, tokenizer, vocabulary, labels, max_length):
        self.model = model
        self.tokenizer = tokenizer
        self.vocabulary = vocabulary
        self.labels = list(labels)
        self.max_length = max_length

    @classmethod
    def from_run(cls, run_dir):
        from keras_lstm.text import TextTokenizer
        from lstm_text import Vocabulary

        config = runs.read_config(run_dir, task="sentiment")
        model = runs.load_model(run_dir)
        vocabulary = Vocabulary.load(Path(run_dir) / runs.VOCABULARY_FILE)
        tokenizer = TextTokenizer.from_config(config["tokenizer"])
        return cls(model, tokenizer, vocabulary, config["labels"], config["max_length"])

    def encode(self, texts):
        """Right-padded int32 token ids, exactly as the training pipeline makes them."""
        from keras_lstm.data.pipeline import encode_texts

        return encode_texts(texts, self.tokenizer, self.vocabulary, self.max_length)

    def predict_proba(self, texts, batch_size=256):
        texts = list(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            ids = self.encode(texts[start:start + batch_size])
            out.append(np.asarray(self.model(ids, training=False)))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), "float32")

    def predict(self, texts):
        probabilities = self.predict_proba(texts)
        return [
            {"label": self.labels[int(np.argmax(p))],
             "probabilities": {label: round(float(v), 6) for label, v in zip(self.labels, p)}}
            for p in probabilities
        ]
