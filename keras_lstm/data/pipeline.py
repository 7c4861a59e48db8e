"""`tf.data` pipelines of both tasks: texts → ids (the task's preprocessor) → length buckets → padded batches.

Text becomes ids in `keras_lstm.text.GraphPreprocessor` and nowhere else.
"""

import numpy as np
import tensorflow as tf

from keras_lstm.data.prepared import BLOCK_RECORDS
from lstm_text.vocabulary import PAD_ID

__all__ = [
    "AUTOTUNE_INPUT",
    "IN_MEMORY_RECORDS",
    "PREFETCH_BATCHES",
    "SHUFFLE_BUFFER",
    "batches_of",
    "bucket_boundaries",
    "make_dataset",
    "make_pair_dataset",
    "make_prepared_dataset",
    "prefetched",
    "steps_of",
]

# tf.data's autotuner is off in the training pipelines: on 2 cores its background
# work competes with training. With it on, some epochs take twice as long as the
# others (`python bench/input_pipeline.py` measures both). The bench sets this to
# True for its baseline.
AUTOTUNE_INPUT = False
PREFETCH_BATCHES = 2


def prefetched(dataset):
    """Ends a pipeline: prefetch a few batches, with tf.data's autotuning as `AUTOTUNE_INPUT` says."""
    if AUTOTUNE_INPUT:
        return dataset.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def bucket_boundaries(max_length, count=6):
    """Geometric length boundaries up to `max_length` for `bucket_by_sequence_length`."""
    bounds = np.unique(np.geomspace(8, max_length, count).astype(int))
    return [int(b) + 1 for b in bounds if b < max_length] + [max_length + 1]


def make_dataset(texts, label_ids, preprocessor, batch_size=64, shuffle=True, seed=0, epochs=1,
                 first_epoch=0, num_shards=1, shard_index=0):
    """Builds the training/evaluation pipeline.

    tokenize (in graph, once) → ids cut to `max_length` → per epoch: a seeded
    permutation → bucket by length and pad each batch to its longest text →
    prefetch (see `prefetched`). The order of epoch `e` depends only on `(seed, e)`, so a run
    resumed at `first_epoch` sees exactly the batches an uninterrupted run
    would.

    Args:
        texts: Raw strings.
        label_ids: Integer class ids.
        preprocessor: A `keras_lstm.text.GraphPreprocessor` (text → ids, cut to
            its maximum length).
        shuffle: Permute the examples each epoch.
        seed: The permutations' seed.
        epochs, first_epoch: The dataset holds epochs `first_epoch .. epochs-1`
            back to back; pass `steps_per_epoch=dataset.steps_per_epoch` to fit.
        num_shards, shard_index: For data-parallel workers: this worker takes
            every `num_shards`-th batch of each epoch, starting at `shard_index`,
            and every worker the same number (`steps // num_shards`), so that
            their collective steps line up.

    Returns:
        A `tf.data.Dataset` of `(token_ids int32 (batch, time), label int32 (batch,))`
        with an attribute `steps_per_epoch`.
    """
    texts, label_ids = list(texts), list(label_ids)
    return batches_of(preprocessor.ragged_batched(texts), tf.constant(label_ids, tf.int32),
                      preprocessor.preprocessor.max_length or 100, batch_size, shuffle, seed,
                      epochs, first_epoch, num_shards, shard_index)


def batches_of(ids, labels, max_length, batch_size=64, shuffle=True, seed=0, epochs=1,
               first_epoch=0, num_shards=1, shard_index=0, steps=None):
    """`make_dataset` from ragged ids `(n, None)` and labels `(n,)` already in memory.

    `steps`: the batches of one epoch, when known (else counted by a pass).
    """
    count = int(ids.nrows())
    boundaries = bucket_boundaries(max_length)

    def one_epoch(epoch):
        order = tf.range(count, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                order, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        examples = tf.data.Dataset.from_tensor_slices(order).map(
            lambda i: (ids[i], labels[i]))
        return examples.bucket_by_sequence_length(
            lambda x, _: tf.shape(x)[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padded_shapes=([None], []),
            padding_values=(PAD_ID, 0),
        )

    # The number of batches does not depend on the order: count it once.
    if steps is None:
        steps = int(one_epoch(tf.constant(0, tf.int64)).reduce(0, lambda n, _: n + 1))
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    epoch_batches = one_epoch
    if num_shards > 1:
        steps //= num_shards

        def epoch_batches(epoch):
            return one_epoch(epoch).shard(num_shards, shard_index).take(steps)

    dataset = tf.data.Dataset.range(first_epoch, max(epochs, first_epoch + 1)).flat_map(
        epoch_batches)
    dataset = prefetched(dataset)
    dataset.steps_per_epoch = steps
    return dataset


def make_pair_dataset(sources, targets, source_preprocessor, target_preprocessor, batch_size,
                      shuffle, seed, epochs=1, first_epoch=0, num_shards=1, shard_index=0):
    """Teacher-forcing batches `((source, target_in), target_out)`, bucketed by source length.

    The target preprocessor wraps each target in [START] … [END]; `target_in`
    drops the last id and `target_out` the first.

    With `shuffle`, the training form: epochs `first_epoch .. epochs-1` back
    to back, each a new seeded order of the pairs (each pass of `repeat`
    reshuffles), so a run resumed at `first_epoch` sees exactly the batches an
    uninterrupted run would; pass `steps_per_epoch=dataset.steps_per_epoch`
    to fit. `num_shards`/`shard_index`: a data-parallel worker's share, the
    same number of batches for every worker. Without `shuffle`, one cached
    pass (validation).
    """
    source = source_preprocessor.ragged_batched(sources)
    target = target_preprocessor.ragged_batched(targets)
    dataset = tf.data.Dataset.from_tensor_slices((source, target))
    dataset = dataset.map(lambda s, t: (s, t[:-1], t[1:]))
    if shuffle:
        dataset = dataset.shuffle(len(sources), seed=seed, reshuffle_each_iteration=True)
    longest = int(tf.reduce_max(source.row_lengths())) if len(sources) else 1
    boundaries = bucket_boundaries(max(longest, 8), count=5)
    dataset = dataset.bucket_by_sequence_length(
        lambda s, ti, to: tf.shape(s)[0], bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], [None], [None]))
    dataset = dataset.map(lambda s, ti, to: ((s, ti), to))
    # The number of batches does not depend on the order: count it once.
    steps = int(dataset.reduce(0, lambda n, _: n + 1))
    if not shuffle:
        # Bucketing hides the number of batches from Keras, which then warns that
        # the input "ran out of data": declare it.
        dataset = dataset.cache().apply(tf.data.experimental.assert_cardinality(steps))
        return prefetched(dataset)
    if num_shards > 1:
        steps //= num_shards
        dataset = dataset.shard(num_shards, shard_index).take(steps)
    remaining = max(epochs - first_epoch, 1)
    dataset = dataset.repeat().skip(first_epoch * steps).take(remaining * steps)
    dataset = prefetched(dataset)
    dataset.steps_per_epoch = steps
    return dataset


# A prepared training split of at most this many examples is read into memory
# and permuted exactly as `make_dataset` permutes texts; a larger one streams
# from its shards: a seeded shuffle of records (blocks of examples) in a buffer
# of about `SHUFFLE_BUFFER` examples, then of the examples in one of that size.
IN_MEMORY_RECORDS = 200_000
SHUFFLE_BUFFER = 65_536
_FEATURES = {"tokens": tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
             "row_splits": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
             "labels": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)}


def _parsed(records, preprocessor):
    """Shard records (blocks of examples, see `keras_lstm.data.prepared`) → `(ids, label)`."""
    def parse(serialized):
        block = tf.io.parse_single_example(serialized, _FEATURES)
        tokens = tf.RaggedTensor.from_row_splits(block["tokens"], block["row_splits"])
        return tf.data.Dataset.from_tensor_slices(
            (preprocessor.ids(tokens).to_tensor(), tokens.row_lengths(),
             tf.cast(block["labels"], tf.int32)))

    def unpad(ids, length, label):
        return ids[:tf.maximum(length, 1)], label  # an empty text is one [UNK] step

    return records.flat_map(parse).map(unpad)


def steps_of(lengths, batch_size, boundaries):
    """Batches `bucket_by_sequence_length` makes from records with these length counts.

    Each bucket emits full batches and, at the end, its partial one:
    `Σ ceil(records in bucket / batch_size)`.
    """
    lengths = np.asarray(lengths)
    buckets = np.searchsorted(boundaries, np.arange(len(lengths)), side="right")
    per_bucket = np.bincount(buckets, weights=lengths, minlength=len(boundaries) + 1)
    return int(np.ceil(per_bucket / batch_size).sum())


def make_prepared_dataset(shards, preprocessor, batch_size=64, shuffle=True, seed=0, epochs=1,
                          first_epoch=0, num_shards=1, shard_index=0):
    """`make_dataset` over a prepared split's TFRecord shards (`Prepared.shards()`).

    Small and alone (at most `IN_MEMORY_RECORDS`, one worker), the records are
    read in their original order (shard `i % n` holds record `i`) and batched by
    `batches_of`: the same batches as `make_dataset` on the same texts.
    Otherwise the data streams: each worker reads only the shards `i` with
    `i % num_shards == shard_index`, each epoch in a seeded order of files,
    through a seeded shuffle buffer; the number of batches comes from the
    shards' length histograms (the smallest worker's, so that all take as many).
    """
    files = [path for path, _ in shards]
    lengths = [counts for _, counts in shards]
    max_length = len(lengths[0]) - 1
    boundaries = bucket_boundaries(max_length)
    total = int(sum(c.sum() for c in lengths))
    if shuffle and num_shards == 1 and total <= IN_MEMORY_RECORDS:
        records = tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=len(files), block_length=1)
        ids, labels = [], []
        for piece_ids, piece_labels in _parsed(records, preprocessor).ragged_batch(16_384):
            ids.append(piece_ids)
            labels.append(piece_labels)
        return batches_of(tf.concat(ids, 0), tf.concat(labels, 0), max_length, batch_size,
                          shuffle, seed, epochs, first_epoch,
                          steps=steps_of(sum(lengths), batch_size, boundaries))
    if len(files) < num_shards:
        raise ValueError(f"{len(files)} shards cannot be shared by {num_shards} workers; "
                         "prepare with --shards at least the number of workers")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards}), got {shard_index}")
    mine = [i for i in range(len(files)) if i % num_shards == shard_index]
    steps = min(steps_of(sum(lengths[i] for i in range(len(files)) if i % num_shards == w),
                         batch_size, boundaries) for w in range(num_shards))

    def one_epoch(epoch):
        order = (np.random.default_rng([seed, epoch]).permutation(mine) if shuffle else mine)
        records = tf.data.Dataset.from_tensor_slices([files[i] for i in order]).interleave(
            tf.data.TFRecordDataset, cycle_length=len(order), block_length=16)
        examples = _parsed(records, preprocessor)
        if shuffle:
            records = records.shuffle(max(SHUFFLE_BUFFER // BLOCK_RECORDS, 1),
                                      seed=seed * 1_000_003 + epoch)
            examples = _parsed(records, preprocessor).shuffle(
                SHUFFLE_BUFFER, seed=seed * 1_000_003 + epoch + 500_009)
        return examples.bucket_by_sequence_length(
            lambda x, _: tf.shape(x)[0], bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padded_shapes=([None], []), padding_values=(PAD_ID, 0)).take(steps)

    epochs_run = range(first_epoch, max(epochs, first_epoch + 1))
    dataset = one_epoch(epochs_run[0])
    for epoch in epochs_run[1:]:
        dataset = dataset.concatenate(one_epoch(epoch))
    dataset = prefetched(dataset)
    dataset.steps_per_epoch = steps
    dataset.files = [files[i] for i in mine]
    return dataset
