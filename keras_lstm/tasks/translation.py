"""The notes' second application: an encoder LSTM compresses the source into a context
vector that initialises a decoder LSTM, which emits the target word by word."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_lstm.core.errors import DataError
from keras_lstm.core.reporter import Reporter
from keras_lstm.tasks.base import Splits, Task
from keras_lstm.tasks.config import TranslationConfig

__all__ = ["SOURCE_TOKENIZER", "TARGET_TOKENIZER", "VOCABULARY_SIZE", "TranslationTask"]

# Tokenizers of the two sides: digits one by one (numbers are spelled out
# token by token), case kept, and on the target side the spaces as tokens so
# that the decoder's output detokenizes exactly.
SOURCE_TOKENIZER = dict(lowercase=False, split_digits=True)
TARGET_TOKENIZER = dict(lowercase=False, mark_spaces=True, split_digits=True)
VOCABULARY_SIZE = 30_000


class TranslationTask(Task):
    config_class = TranslationConfig
    monitor, monitor_mode = "val_loss", "min"
    options = ("data", "beam", "reverse", "max_examples", "skip_bad_rows")
    default_data = "the embedded CLDR date/time/number pairs (Chinese → English)"

    # ----- training -----

    def choose_preset(self, config):
        return "cldr-demo" if config.data is None else "sentences"

    def load_data(self, config, verbose=0):
        from keras_lstm.data.pairs import pair_length, read_pairs, split_by_source

        if config.data is None:
            from keras_lstm.data.cldr_pairs import default_pairs

            pairs = default_pairs(seed=config.seed)
            if config.reverse:
                pairs = [(t, s) for s, t in pairs]
            kept = [(s, t) for s, t in pairs
                    if max(pair_length(s), pair_length(t)) <= config.max_length]
            sources, targets = [s for s, _ in kept], [t for _, t in kept]
            source = "the embedded CLDR pairs"
        else:
            read = read_pairs(config.data, reverse=config.reverse,
                              skip_bad_rows=config.skip_bad_rows, max_length=config.max_length)
            sources, targets = read.sources, read.targets
            source = config.data
            if read.bad_rows:
                Reporter(verbose).warning(f"skipped {read.bad_rows} bad rows (first: "
                                          f"{read.first_bad})")
        if config.max_examples:
            sources, targets = sources[: config.max_examples], targets[: config.max_examples]
        if not sources:
            raise DataError(f"{source}: no pairs of at most {config.max_length} tokens a side")
        train, validation, test = split_by_source(sources, targets, seed=config.seed)
        if not validation[0]:
            raise DataError(f"{source}: {len(sources)} pairs leave the validation split empty; "
                            "give more pairs")
        return Splits(train=tuple(train), validation=tuple(validation), test=tuple(test),
                      source=source)

    def build_preprocessors(self, config, splits):
        from keras_lstm.text import build_vocabulary
        from lstm_text import TokenizerConfig
        from lstm_text.preprocessor import END, START, Preprocessor

        source, target = TokenizerConfig(**SOURCE_TOKENIZER), TokenizerConfig(**TARGET_TOKENIZER)
        return {
            "source": Preprocessor(source, build_vocabulary(
                splits.train[0], source, VOCABULARY_SIZE, config.min_count),
                vocabulary_file="source_vocabulary.txt"),
            "target": Preprocessor(target, build_vocabulary(
                splits.train[1], target, VOCABULARY_SIZE, config.min_count,
                reserved=(START, END)), start_end=True, vocabulary_file="target_vocabulary.txt"),
        }

    def run_facts(self, config, splits, preprocessors, extra=None):
        from keras_lstm.models.seq2seq import Seq2SeqConfig

        model = Seq2SeqConfig(len(preprocessors["source"].vocabulary),
                              len(preprocessors["target"].vocabulary), config.embedding_dim,
                              config.units, config.attention, config.lstm, config.dropout)
        return {"model": dataclasses.asdict(model), "model_file": "model.weights.h5",
                "max_output_length": config.max_output_length}

    def write_splits(self, run_dir, config, splits):
        from keras_lstm.core.files import atomic_write_text

        for name, (sources, targets) in (("validation", splits.validation),
                                         ("test", splits.test)):
            atomic_write_text(Path(run_dir) / "splits" / f"{name}.tsv",
                              "".join(f"{s}\t{t}\n" for s, t in zip(sources, targets,
                                                                     strict=True)))

    def datasets(self, config, splits, preprocessors, facts, first_epoch, shards, shard):
        from keras_lstm.data.pipeline import make_pair_dataset
        from keras_lstm.text import GraphPreprocessor

        source = GraphPreprocessor(preprocessors["source"])
        target = GraphPreprocessor(preprocessors["target"])
        train = make_pair_dataset(*splits.train, source, target, config.batch_size, True,
                                  config.seed, config.epochs, first_epoch, shards, shard)
        validation = make_pair_dataset(*splits.validation, source, target, config.batch_size,
                                       False, config.seed)
        return train, validation, {"steps_per_epoch": train.steps_per_epoch}

    def build_model(self, config, facts, extra=None):
        from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig

        return Seq2Seq(Seq2SeqConfig(**facts["model"])).training_model()

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)

    def metrics(self):
        from keras_lstm.models.seq2seq import MaskedAccuracy

        return [MaskedAccuracy()]

    def loss_terms(self, y, logits):
        import keras
        import tensorflow as tf

        valid = tf.cast(tf.not_equal(y, 0), tf.float32)
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=y.dtype), y), tf.float32)
        count = tf.reduce_sum(valid)
        return tf.reduce_sum(losses * valid), count, tf.reduce_sum(correct * valid), count

    def save_model(self, model, path):
        from keras_lstm.runs import save_model_atomic

        # The weights: inference rebuilds the encoder and the one-step decoder
        # from the run's model config around them.
        save_model_atomic(model, path, weights_only=True)

    # ----- scoring a trained model (serving: `keras_lstm.runtimes.TranslationRuntime`) -----

    def evaluate(self, runtime, data=None, beam=None, reverse=None, max_examples=None,
                 skip_bad_rows=None, **options):
        from keras_lstm.data.pairs import read_pairs
        from keras_lstm.evaluation import score_translations
        from keras_lstm.tasks.base import default_split, held_out, warn_if_unknown
        from lstm_text.decoding import resolve_decoding

        if data is None:
            path, reverse = default_split(runtime.run_dir, "test.tsv"), False
        else:
            path = Path(data)
            if reverse is None:  # the run's direction applies to every file it reads
                reverse = bool((runtime.training or {}).get("reverse", False))
        pairs = read_pairs(path, reverse=reverse, skip_bad_rows=bool(skip_bad_rows))
        sources, references = pairs.sources, pairs.targets
        if max_examples:
            sources, references = sources[:max_examples], references[:max_examples]
        warn_if_unknown(runtime.preprocessors["source"], sources, path,
                        held_out(runtime.run_dir, "validation.tsv"))
        if beam is None and getattr(runtime, "greedy_only", False):
            beam = 1  # the SavedModel's graph decodes greedily: say so in the metrics
        beam, length_penalty = resolve_decoding(beam)
        hypotheses = []
        for i in range(0, len(sources), 256):
            hypotheses += runtime.translate(sources[i:i + 256], beam=beam)
        metrics = score_translations(hypotheses, references,
                                     runtime.preprocessors["target"].tokenizer)
        metrics["beam"] = beam
        metrics["length_penalty"] = length_penalty if beam > 1 else None
        metrics["samples"] = [{"source": s, "reference": r, "translation": h}
                              for s, r, h in list(zip(sources, references, hypotheses))[:5]]
        if skip_bad_rows:
            metrics["skipped_rows"], metrics["first_skipped"] = pairs.bad_rows, pairs.first_bad
        return metrics

    def format_metrics(self, metrics):
        from keras_lstm.evaluation import format_translation_metrics

        return format_translation_metrics(metrics)
