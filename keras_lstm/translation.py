"""Machine translation: train an encoder-decoder into a run folder, translate, score.

The run folder holds `config.json` (task "translation"), `source_vocabulary.txt`,
`target_vocabulary.txt`, `model.weights.h5` (best by validation loss) and
`splits/` (held-out pairs as TSV).
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from keras_lstm import runs
from keras_lstm.errors import ConfigError
from lstm_text import PyTokenizer, TokenizerConfig, Vocabulary
from lstm_text.tokenizer import detokenize

START, END = "[START]", "[END]"
SOURCE_VOCABULARY, TARGET_VOCABULARY = "source_vocabulary.txt", "target_vocabulary.txt"
WEIGHTS_FILE = "model.weights.h5"
SOURCE_TOKENIZER = TokenizerConfig(lowercase=False, split_digits=True)
TARGET_TOKENIZER = TokenizerConfig(lowercase=False, mark_spaces=True, split_digits=True)


@dataclasses.dataclass
class TranslationTrainingConfig:
    """Everything `keras-lstm train translation` does; saved in RUN/config.json.

    Args:
        out: The run folder.
        data: Tab-separated pairs (`source<TAB>target`, more columns ignored);
            `None` for the embedded CLDR pairs (Chinese → English).
        reverse: Translate the second column into the first.
        skip_bad_lines: Count and skip malformed lines.
        max_length: Drop pairs with a side longer than this (tokens).
        lstm, attention, units, embedding_dim, dropout: The model.
        epochs, batch_size, learning_rate, clipnorm, patience, seed: Training.
        max_examples: Use at most this many pairs (quick runs).
        min_count: Vocabulary minimum count.
        max_output_length: Longest translation the decoders emit.
    """

    out: str
    data: str | None = None
    reverse: bool = False
    skip_bad_lines: bool = False
    max_length: int = 30
    lstm: str = "custom"
    attention: bool = True
    units: int = 128
    embedding_dim: int = 64
    dropout: float = 0.1
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    clipnorm: float = 1.0
    patience: int = 2
    seed: int = 0
    max_examples: int | None = None
    min_count: int = 1
    max_output_length: int = 40


def load_pairs(config):
    from keras_lstm.data.cldr_pairs import default_pairs
    from keras_lstm.data.pairs import pair_length, read_pairs

    if config.data is None:
        pairs = default_pairs(seed=config.seed)
        if config.reverse:
            pairs = [(t, s) for s, t in pairs]
        sources, targets = map(list, zip(*[(s, t) for s, t in pairs
                                           if max(pair_length(s), pair_length(t))
                                           <= config.max_length], strict=True))
    else:
        read = read_pairs(config.data, reverse=config.reverse,
                          skip_bad_lines=config.skip_bad_lines, max_length=config.max_length)
        sources, targets = read.sources, read.targets
    if config.max_examples:
        sources, targets = sources[: config.max_examples], targets[: config.max_examples]
    return sources, targets


def encode_pairs(sources, targets, source_vocab, target_vocab):
    source_tokenizer, target_tokenizer = PyTokenizer(SOURCE_TOKENIZER), PyTokenizer(TARGET_TOKENIZER)
    start, end = target_vocab.index[START], target_vocab.index[END]
    source_ids = [source_vocab.encode(source_tokenizer.tokenize(s)) or [1] for s in sources]
    target_ids = [[start, *target_vocab.encode(target_tokenizer.tokenize(t)), end] for t in targets]
    return source_ids, target_ids


def make_pair_dataset(source_ids, target_ids, batch_size, shuffle, seed):
    """Teacher-forcing batches `((source, target_in), target_out)`, bucketed by source length."""
    import tensorflow as tf

    from keras_lstm.data.pipeline import bucket_boundaries, prefetched

    source = tf.ragged.constant(source_ids, dtype=tf.int32)
    target = tf.ragged.constant(target_ids, dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((source, target))
    dataset = dataset.map(lambda s, t: (s, t[:-1], t[1:]))
    if shuffle:
        dataset = dataset.shuffle(len(source_ids), seed=seed, reshuffle_each_iteration=True)
    longest = max(len(s) for s in source_ids)
    boundaries = bucket_boundaries(max(longest, 8), count=5)
    dataset = dataset.bucket_by_sequence_length(
        lambda s, ti, to: tf.shape(s)[0], bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [None], [None]))
    dataset = dataset.map(lambda s, ti, to: ((s, ti), to))
    if not shuffle:
        dataset = dataset.cache()
    # Bucketing hides the number of batches from Keras, which then warns that
    # the input "ran out of data". It does not depend on the order: count it.
    batches = int(dataset.reduce(0, lambda n, _: n + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return prefetched(dataset)


def masked_accuracy():
    """Token accuracy over the real (non-padding) target tokens."""
    import keras

    class MaskedAccuracy(keras.metrics.Metric):
        def __init__(self, name="masked_accuracy", **kwargs):
            super().__init__(name=name, **kwargs)
            self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            ops = keras.ops
            valid = ops.cast(ops.not_equal(y_true, 0), "float32")
            predicted = ops.cast(ops.argmax(y_pred, axis=-1), y_true.dtype)
            hits = ops.cast(ops.equal(predicted, y_true), "float32")
            self.hits.assign_add(ops.sum(hits * valid))
            self.count.assign_add(ops.sum(valid))

        def result(self):
            return self.hits / keras.ops.maximum(self.count, 1.0)

    return MaskedAccuracy()


def train_translation(config: TranslationTrainingConfig, verbose=1):
    """Trains an encoder-decoder with teacher forcing and writes the run folder."""
    import keras
    import tensorflow as tf

    from keras_lstm.data.pairs import split_by_source
    from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig

    run_dir = Path(config.out)
    if (run_dir / runs.CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir}: already holds a run; choose another --out")
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    sources, targets = load_pairs(config)
    (train_s, train_t), (val_s, val_t), (test_s, test_t) = split_by_source(
        sources, targets, seed=config.seed)
    source_vocab = Vocabulary.build([PyTokenizer(SOURCE_TOKENIZER).tokenize(s) for s in train_s],
                                    max_size=30_000, min_count=config.min_count)
    target_vocab = Vocabulary.build([PyTokenizer(TARGET_TOKENIZER).tokenize(t) for t in train_t],
                                    max_size=30_000, min_count=config.min_count,
                                    reserved=(START, END))
    run_dir.mkdir(parents=True, exist_ok=True)
    source_vocab.save(run_dir / SOURCE_VOCABULARY)
    target_vocab.save(run_dir / TARGET_VOCABULARY)
    for name, split in (("validation", (val_s, val_t)), ("test", (test_s, test_t))):
        runs.atomic_write_text(run_dir / runs.SPLITS_DIR / f"{name}.tsv",
                               "".join(f"{s}\t{t}\n" for s, t in zip(*split, strict=True)))
    model_config = Seq2SeqConfig(len(source_vocab), len(target_vocab), config.embedding_dim,
                                 config.units, config.attention, config.lstm, config.dropout)
    runs.write_config(run_dir, {
        "task": "translation",
        "model": dataclasses.asdict(model_config),
        "training": dataclasses.asdict(config),
        "source_tokenizer": SOURCE_TOKENIZER.to_dict(),
        "target_tokenizer": TARGET_TOKENIZER.to_dict(),
        "splits": {"train": len(train_s), "validation": len(val_s), "test": len(test_s)},
    })
    train_ds = make_pair_dataset(*encode_pairs(train_s, train_t, source_vocab, target_vocab),
                                 config.batch_size, True, config.seed)
    val_ds = make_pair_dataset(*encode_pairs(val_s, val_t, source_vocab, target_vocab),
                               config.batch_size, False, config.seed)
    model = Seq2Seq(model_config).training_model()
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        metrics=[masked_accuracy()])
    weights = run_dir / WEIGHTS_FILE
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(weights), monitor="val_loss", save_best_only=True,
                                        save_weights_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False),
    ]
    # The dataset shuffles itself (seeded); fit() must not try to.
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        callbacks=callbacks, verbose=verbose, shuffle=False)
    return {"run_dir": str(run_dir), "epochs_run": len(history.history["loss"]),
            "best_val_loss": float(min(history.history["val_loss"]))}


class Translator:
    """Greedy or beam-search translation with a trained run's encoder and one-step decoder."""

    def __init__(self, run_dir):
        import tensorflow as tf

        from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig

        config = runs.read_config(run_dir, task="translation")
        self.config = config
        self.source_vocab = Vocabulary.load(Path(run_dir) / SOURCE_VOCABULARY)
        self.target_vocab = Vocabulary.load(Path(run_dir) / TARGET_VOCABULARY)
        seq2seq = Seq2Seq(Seq2SeqConfig(**config["model"]))
        model = seq2seq.training_model()
        weights = Path(run_dir) / WEIGHTS_FILE
        if not weights.is_file():
            raise ConfigError(f"{run_dir}: no {WEIGHTS_FILE} (was training finished?)")
        model.load_weights(weights)
        self.model = model
        self.encoder_model = seq2seq.encoder_model()
        self.decoder_model = decoder = seq2seq.decoder_model()
        self.encoder = tf.function(self.encoder_model, reduce_retracing=True)
        self.decoder = tf.function(lambda *args: decoder(list(args)), reduce_retracing=True)
        self.source_tokenizer = PyTokenizer(TokenizerConfig.from_dict(config["source_tokenizer"]))
        self.target_tokenizer = PyTokenizer(TokenizerConfig.from_dict(config["target_tokenizer"]))
        self.max_output_length = config["training"]["max_output_length"]

    def encode(self, texts):
        from keras_lstm.data.pipeline import pad

        return pad([self.source_vocab.encode(self.source_tokenizer.tokenize(t)) or [1]
                    for t in texts])

    def translate(self, texts, beam=1, length_penalty=0.6):
        """Translations of `texts` (greedy for `beam=1`, else beam search)."""
        from lstm_text.decoding import translate_batch

        def encode(source):
            return tuple(np.asarray(v) for v in self.encoder(source))

        def decode(tokens, h, c, outputs, mask):
            return tuple(np.asarray(v) for v in self.decoder(tokens, h, c, outputs, mask))[:3]

        return translate_batch(list(texts), self.encode, encode, decode, self.target_vocab,
                               self.max_output_length, beam, length_penalty)


def attention_map(translator, text):
    """Greedy translation of one text with the attention weights of every output step.

    Returns:
        `(source_tokens, target_tokens, weights)`, `weights` shaped
        `(len(target_tokens), len(source_tokens))`; requires a model with attention.
    """
    if not translator.config["model"]["attention"]:
        raise ConfigError("this translation model has no attention")
    source = translator.encode([text])
    encoder_outputs, h, c = translator.encoder(source)
    token = np.array([[translator.target_vocab.index[START]]], np.int32)
    end = translator.target_vocab.index[END]
    target_ids, rows = [], []
    for _ in range(translator.max_output_length):
        logits, h, c, weights = translator.decoder(token, h, c, encoder_outputs, source != 0)
        next_id = int(np.argmax(np.asarray(logits)[0]))
        if next_id == end:
            break
        target_ids.append(next_id)
        rows.append(np.asarray(weights)[0])
        token = np.array([[next_id]], np.int32)
    source_tokens = translator.source_tokenizer.tokenize(text)
    weights = np.stack(rows)[:, : len(source_tokens)] if rows else np.zeros((0, len(source_tokens)))
    return source_tokens, translator.target_vocab.decode(target_ids), weights


def read_test_pairs(path):
    from keras_lstm.data.pairs import read_pairs

    pairs = read_pairs(path)
    return pairs.sources, pairs.targets


def score_translations(hypotheses, references, target_tokenizer=None):
    """sacrebleu BLEU and chrF, and exact match after tokenizer normalisation."""
    import sacrebleu

    tokenizer = target_tokenizer or PyTokenizer(TARGET_TOKENIZER)
    normalised = [detokenize(tokenizer.tokenize(r)) for r in references]
    chinese = any("\u4e00" <= ch <= "\u9fff" for r in normalised[:50] for ch in r)
    bleu = sacrebleu.corpus_bleu(hypotheses, [normalised], tokenize="zh" if chinese else "13a")
    chrf = sacrebleu.corpus_chrf(hypotheses, [normalised])
    exact = float(np.mean([h == r for h, r in zip(hypotheses, normalised, strict=True)]))
    return {"bleu": bleu.score, "chrf": chrf.score, "exact_match": exact,
            "examples": len(references), "bleu_tokenize": "zh" if chinese else "13a"}


def evaluate_translation(run_dir, data=None, beam=1, max_examples=None):
    """Scores a translation run on `data` (default: its held-out test split)."""
    path = Path(data) if data else Path(run_dir) / runs.SPLITS_DIR / "test.tsv"
    sources, references = read_test_pairs(path)
    if max_examples:
        sources, references = sources[:max_examples], references[:max_examples]
    translator = Translator(run_dir)
    hypotheses = []
    for i in range(0, len(sources), 256):
        hypotheses += translator.translate(sources[i:i + 256], beam=beam)
    metrics = score_translations(hypotheses, references, translator.target_tokenizer)
    metrics["beam"] = beam
    metrics["samples"] = [{"source": s, "reference": r, "translation": h}
                          for s, r, h in list(zip(sources, references, hypotheses))[:5]]
    return metrics


def format_translation_metrics(metrics):
    return (f"examples     {metrics['examples']}\nBLEU         {metrics['bleu']:.2f} "
            f"(sacrebleu, tokenize={metrics['bleu_tokenize']})\nchrF         {metrics['chrf']:.2f}\n"
            f"exact match  {metrics['exact_match']:.4f}\nbeam         {metrics['beam']}\n\n"
            + "\n".join(f"{s['source']}  →  {s['translation']}   (reference: {s['reference']})"
                        for s in metrics["samples"]))


def dump(metrics):
    return json.dumps(metrics, ensure_ascii=False)
