"""Keras inference from a run folder: a sentiment classifier and a translator.

Both turn text into ids with the run's `GraphPreprocessor`, as the training
pipeline did. `KerasSentiment` and `KerasTranslation` serve them behind the
interface of the exported artifacts: importing this module registers them as
the "keras" backend of `keras_lstm.runtimes.load` (found through the
`keras_lstm.runtimes` entry point, so the TensorFlow-free layer below never
imports this one).
"""

from pathlib import Path

import numpy as np

from keras_lstm import runs
from keras_lstm.core import schemas
from keras_lstm.core.errors import ConfigError
from keras_lstm.runtimes.base import SentimentRuntime, TranslationRuntime, id_batch, register
from lstm_text.preprocessor import check_texts

__all__ = ["KerasSentiment", "KerasTranslation", "SentimentClassifier", "Translator",
           "attention_map"]


class SentimentClassifier:
    """Raw text in, label probabilities out, from a sentiment run folder.

    Example:

    >>> classifier = SentimentClassifier("runs/demo/sentiment")
    >>> classifier.predict_proba(["质量很好，很满意"]).shape
    (1, 2)
    """

    def __init__(self, run_dir):
        from keras_lstm.text import GraphPreprocessor

        self.config = schemas.read_config(run_dir, task="sentiment")
        self.preprocessor = runs.load_preprocessors(run_dir, self.config)["text"]
        self.graph_preprocessor = GraphPreprocessor(self.preprocessor)
        self.model = runs.load_model(run_dir)
        self.labels = list(self.config["labels"])

    def encode(self, texts):
        """Right-padded int32 token ids, exactly as the training pipeline makes them."""
        import tensorflow as tf

        return self.graph_preprocessor(tf.constant(list(texts), tf.string)).numpy()

    def predict_proba(self, texts, batch_size=256):
        texts = list(texts)
        out = [np.asarray(self.model(self.encode(texts[i:i + batch_size]), training=False))
               for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


class Translator:
    """Greedy or beam-search translation with a run's encoder and one-step decoder."""

    def __init__(self, run_dir):
        import tensorflow as tf

        from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig
        from keras_lstm.text import GraphPreprocessor

        config = schemas.read_config(run_dir, task="translation")
        self.config = config
        self.preprocessors = runs.load_preprocessors(run_dir, config)
        self.source = GraphPreprocessor(self.preprocessors["source"])
        seq2seq = Seq2Seq(Seq2SeqConfig(**config["model"]))
        self.model = seq2seq.training_model()
        weights = Path(run_dir) / config["model_file"]
        if not weights.is_file():
            raise ConfigError(f"{run_dir}: no {config['model_file']} (was training finished?)")
        self.model.load_weights(weights)
        self.seq2seq = seq2seq
        self.encoder_model = seq2seq.encoder_model()
        self.decoder_model = decoder = seq2seq.decoder_model()
        self.encoder = tf.function(self.encoder_model, reduce_retracing=True)
        self.decoder = tf.function(lambda *args: decoder(list(args)), reduce_retracing=True)
        self.max_output_length = config.get("max_output_length",
                                            config["training"].get("max_output_length", 40))
        self._tf = tf

    def encode(self, texts):
        """Right-padded int32 source ids, as the training pipeline makes them."""
        return self.source(self._tf.constant(list(texts), self._tf.string)).numpy()

    def translate(self, texts, beam=None, length_penalty=None):
        """Translations of `texts`: beam search, greedy for `beam=1` (`None`: the
        default, `keras_lstm.presets.DECODING`)."""
        from lstm_text.decoding import translate_batch

        def encode(source):
            return tuple(np.asarray(v) for v in self.encoder(source))

        def decode(tokens, h, c, outputs, mask):
            return tuple(np.asarray(v) for v in self.decoder(tokens, h, c, outputs, mask))[:3]

        return translate_batch(list(texts), self.encode, encode, decode,
                               self.preprocessors["target"], self.max_output_length, beam,
                               length_penalty)


def attention_map(translator, text):
    """Greedy translation of one text with the attention weights of every output step.

    The same greedy decoding as `translate` (`lstm_text.decoding.greedy_attention`
    watches its steps), so the map explains exactly the translation given.

    Returns:
        `(source_tokens, target_tokens, weights)`, `weights` shaped
        `(len(target_tokens), len(source_tokens))`; requires a model with attention.
    """
    from lstm_text.decoding import greedy_attention

    if not translator.config["model"]["attention"]:
        raise ConfigError("this translation model has no attention")

    def encode(source):
        return tuple(np.asarray(v) for v in translator.encoder(source))

    def decode(tokens, h, c, outputs, mask):
        return tuple(np.asarray(v) for v in translator.decoder(tokens, h, c, outputs, mask))

    found = greedy_attention(text, translator.encode, encode, decode, translator.preprocessors,
                             translator.max_output_length)
    return found["source"], found["target"], found["weights"]


@register
class KerasSentiment(SentimentRuntime):
    """The trained Keras model of a run folder (`SentimentClassifier`)."""

    backend = "keras"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.classifier = SentimentClassifier(self.run_dir)

    def run_ids(self, ids):
        ids = id_batch(ids)
        with self.lock:
            return np.asarray(self.classifier.model(ids, training=False))

    def predict_proba(self, texts, batch_size=64):
        texts = check_texts(texts)  # tokenized in the graph: only the type checks here
        with self.lock:
            return self.classifier.predict_proba(texts, batch_size)


@register
class KerasTranslation(TranslationRuntime):
    """The trained Keras encoder-decoder of a run folder (`Translator`)."""

    backend = "keras"

    def __init__(self, folder, metadata, artifact=None, **kwargs):
        super().__init__(folder, metadata, **kwargs)
        self.translator = Translator(self.run_dir)

    def translate(self, texts, beam=None, length_penalty=None):
        with self.lock:
            return self.translator.translate(texts, beam, length_penalty)

    def _encoder(self, source):
        return tuple(np.asarray(v) for v in self.translator.encoder(source))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, h, c, *weights = (np.asarray(v) for v in self.translator.decoder(
            tokens, h, c, outputs, mask))
        return logits, h, c, (weights[0] if weights else None)
