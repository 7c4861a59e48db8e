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


def bucket_boundaries(max_length, count=6):
    """Geometric length boundaries up to `max_length` for `bucket_by_sequence_length`."""
    bounds = np.unique(np.geomspace(8, max_length, count).astype(int))
    return [int(b) + 1 for b in bounds if b < max_length] + [max_length + 1]


def make_dataset(texts, label_ids, tokenizer, vocabulary, batch_size=64, max_length=100,
                 shuffle=True, seed=0):
    """Builds the training/evaluation pipeline.

    tokenize (in graph) → ids → cut to `max_length` → cache → shuffle (seeded,
    reshuffled each epoch) → bucket by length and pad each batch to its
    longest text → prefetch.

    Args:
        texts: Raw strings.
        label_ids: Integer class ids.
        tokenizer: A `TextTokenizer`.
        vocabulary: A `lstm_text.Vocabulary`.

    Returns:
        A `tf.data.Dataset` of `(token_ids int32 (batch, time), label int32 (batch,))`.
    """
    table = vocabulary_table(vocabulary)
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(list(texts), tf.string), tf.constant(list(label_ids), tf.int32)))

    def encode(text_batch, labels):
        ids = encode_tf(tokenizer.tokenize(text_batch), table, max_length)
        return ids, labels

    # Tokenize in large batches (fast), then go back to single examples.
    dataset = dataset.batch(1024).map(encode, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True).unbatch()
    dataset = dataset.map(lambda ids, label: (tf.RaggedTensor.to_tensor(ids)
                                              if isinstance(ids, tf.RaggedTensor) else ids, label))
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    boundaries = bucket_boundaries(max_length)
    dataset = dataset.bucket_by_sequence_length(
        lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=([None], []),
        padding_values=(PAD_ID, 0),
    )
    # Bucketing hides the number of batches; count it once (the data are
    # cached) so that Keras shows a real progress bar.
    batches = int(dataset.reduce(0, lambda count, _: count + 1))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)
