"""Readers (labelled files, sentence pairs, word vectors), the embedded corpora, tf.data pipelines, augmentation."""

__all__ = []
