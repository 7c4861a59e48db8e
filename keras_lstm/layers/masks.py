"""Masks of any pattern as right padding: the valid steps first, and the outputs back.

`keras.layers.LSTM` takes any mask (right or left padding, holes, rows with no
valid step): a masked step keeps the state and repeats the previous output. So
the states of a row are those of its valid steps run one after another, and
`keras_lstm.layers.LSTM` runs every mask as a right-padded batch, whose fast
paths need only the lengths: `MaskOrder.compact` gathers each row's valid
steps to the front, `MaskOrder.outputs` puts the hidden states back at their
steps with Keras' value at the masked ones. docs/design.md tells why.
"""

import tensorflow as tf

__all__ = ["MaskOrder", "first_mask", "state_at_length"]


def first_mask(mask):
    """The mask of the sequences when Keras passes a list (with initial states)."""
    if isinstance(mask, (list, tuple)):
        return mask[0] if mask else None
    return mask


def state_at_length(states, initial, lengths):
    """`states[length - 1]` per batch item (`initial` where the length is 0)."""
    batch = tf.shape(states)[1]
    index = tf.stack([tf.maximum(lengths - 1, 0), tf.range(batch)], axis=1)
    picked = tf.gather_nd(states, index)
    return tf.where((lengths > 0)[:, None], picked, initial)


class MaskOrder:
    """Moves the valid steps of any mask to the front, and the outputs back.

    A masked step keeps the state, so running a sequence with holes or left
    padding gives the states of its valid steps run one after another. The
    recurrence runs on the valid steps gathered to the front of each row
    (right padding, whose fast paths need only the lengths); `outputs` puts
    the hidden states back at their steps with Keras' value at masked steps.
    A right-padded mask (checked at run time) skips the gathers: the steps
    are already in place, or reversed per length for `go_backwards`.

    Args:
        mask: `(time, batch)` boolean mask in input order.
        go_backwards: Whether the layer processes the steps backwards (Keras
            reverses the whole sequence and its mask).
        skip_for_right_padding: Whether to branch (`tf.cond`) around the
            gathers for right padding. Export graphs always gather: tf2onnx
            leaves ops inside an ONNX `If` unconverted.
    """

    def __init__(self, mask, go_backwards, skip_for_right_padding=True):
        self.go_backwards = go_backwards
        self.skip_for_right_padding = skip_for_right_padding
        steps = mask.shape[0] if mask.shape[0] is not None else tf.shape(mask)[0]
        batch = mask.shape[1] if mask.shape[1] is not None else tf.shape(mask)[1]
        self.steps = steps
        # The mask in processing order; counts[t] = valid steps up to and including t.
        self.mask = tf.reverse(mask, [0]) if go_backwards else mask
        self.counts = tf.cumsum(tf.cast(self.mask, tf.int32), axis=0)
        self.lengths = self.counts[-1]
        self.rows = tf.broadcast_to(tf.range(batch)[None, :], tf.shape(mask))
        if skip_for_right_padding:
            padded = tf.transpose(tf.sequence_mask(self.lengths, steps), [1, 0])
            self.right_padded = tf.reduce_all(tf.equal(mask, padded))

    def compact(self, x):
        """`(time, batch, features)` in input order → valid steps first, in processing order."""

        def in_place():
            if self.go_backwards:
                return tf.reverse_sequence(x, self.lengths, seq_axis=0, batch_axis=1)
            return x

        def gathered():
            # The s-th valid step is at t = the number of steps with
            # counts[t] <= s (a (time, time, batch) comparison: no sort, and
            # it converts to ONNX and TFLite builtins).
            positions = tf.range(self.steps)
            source = tf.reduce_sum(
                tf.cast(self.counts[None, :, :] <= positions[:, None, None], tf.int32), axis=1
            )
            source = tf.minimum(source, self.steps - 1)
            ordered = tf.reverse(x, [0]) if self.go_backwards else x
            return tf.gather_nd(ordered, tf.stack([source, self.rows], axis=-1))

        if not self.skip_for_right_padding:
            return gathered()
        return tf.cond(self.right_padded, in_place, gathered)

    def outputs(self, hidden, h_last, zero_output_for_mask):
        """Hidden states of the compacted steps → Keras' outputs at every step.

        A masked step repeats the previous output (zeros before the first
        valid step), or is zeros with `zero_output_for_mask`.
        """
        keep = self.mask if zero_output_for_mask else self.counts > 0

        def in_place():
            # Right padding read forwards: every masked step follows the last valid one.
            last = tf.broadcast_to(h_last[None], tf.shape(hidden))
            previous = tf.where(keep[..., None], last, tf.zeros_like(hidden))
            return tf.where(self.mask[..., None], hidden, previous)

        def gathered():
            index = tf.stack([tf.maximum(self.counts - 1, 0), self.rows], axis=-1)
            values = tf.gather_nd(hidden, index)
            return tf.where(keep[..., None], values, tf.zeros_like(values))

        if self.go_backwards or not self.skip_for_right_padding:
            return gathered()
        return tf.cond(self.right_padded, in_place, gathered)
