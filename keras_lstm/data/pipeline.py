"""`tf.data` pipelines: file rows → tokens → ids → length buckets → padded batches."""

import numpy as np
import tensorflow as tf

from lstm_text.vocabulary import OOV_ID, PAD_ID


def vocabulary_table(vocabulary):
    """A `tf.lookup.StaticHashTable` from token to id (unknown tokens → OOV)."""
    keys = tf.constant(vocabulary.tokens)
    values = tf.range(len(vocabulary.tokens), dtype=tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), OOV_ID)


def encode_tf(tokens, table, max_length):
    """Ragged string tokens → ragged int32 ids, cut to `max_length`; an empty text becomes [OOV]."""
    ids = tf.cast(tf.ragged.map_flat_values(table.lookup, tokens), tf.int32)
    ids = ids[:, :max_length]
    empty = tf.equal(ids.row_lengths(), 0)
    oov = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(empty, tf.int64))], tf.constant(OOV_ID, tf.int32)),
        tf.cast(empty, tf.int64))
    return tf.concat([ids, oov], axis=1)


def encode_texts(texts, tokenizer, vocabulary, max_length):
    """A batch of raw texts → right-padded int32 ids `(batch, longest)`, as the pipeline does.

    `tokenizer` is a `TextTokenizer` or a `PyTokenizer`: both give the same ids.
    """
    if hasattr(tokenizer, "tokenize") and tokenizer.__class__.__name__ == "PyTokenizer":
        rows = [vocabulary.encode(tokenizer.tokenize(text))[:max_length] or [OOV_ID]
                for text in texts]
    else:
        tokens = tokenizer.tokenize(list(texts)).to_list()
        rows = [vocabulary.encode([t.decode("utf-8") for t in row])[:max_length] or [OOV_ID]
                for row in tokens]
    return pad(rows)


def pad(rows, length=None):
    """Right-pads id lists with PAD to `length` (default: the longest)."""
    length = length or max((len(r) for r in rows), default=1)
    out = np.full((len(rows), length), PAD_ID, dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:length]
    return out


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


def make_dataset(texts, label_ids, tokenizer, vocabulary, batch_size=64, max_length=100,
                 shuffle=True, seed=0, epochs=1, first_epoch=0, num_shards=1, shard_index=0):
    """Builds the training/evaluation pipeline.

    tokenize (in graph, once) → ids cut to `max_length` → per epoch: a seeded
    permutation → bucket by length and pad each batch to its longest text →
    prefetch (see `prefetched`). The order of epoch `e` depends only on `(seed, e)`, so a run
    resumed at `first_epoch` sees exactly the batches an uninterrupted run
    would.

    Args:
        texts: Raw strings.
        label_ids: Integer class ids.
        tokenizer: A `TextTokenizer`.
        vocabulary: A `lstm_text.Vocabulary`.
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
    table = vocabulary_table(vocabulary)
    texts, label_ids = list(texts), list(label_ids)
    pieces = [encode_tf(tokenizer.tokenize(texts[i:i + 4096]), table, max_length)
              for i in range(0, len(texts), 4096)]
    ids = tf.concat(pieces, axis=0) if pieces else tf.ragged.constant([], dtype=tf.int32)
    labels = tf.constant(label_ids, tf.int32)
    count = len(texts)
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
