"""`tf.data` pipelines of both tasks: texts → ids (the task's preprocessor) → length buckets → padded batches.

Text becomes ids in `keras_lstm.text.GraphPreprocessor` and nowhere else.
"""

import numpy as np
import tensorflow as tf

from lstm_text.vocabulary import PAD_ID

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
    ids = preprocessor.ragged_batched(texts)
    labels = tf.constant(label_ids, tf.int32)
    count = len(texts)
    boundaries = bucket_boundaries(preprocessor.preprocessor.max_length or 100)

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
