"""The notes' LSTM as a Keras layer, computed by its own code.

Two jobs live beside it: `keras_lstm.layers.masks` (any mask run as right
padding) and `keras_lstm.layers.graph_targets` (which graph to trace for which
converter, and detecting the Keras exporter from the trace).
"""

import keras
import tensorflow as tf
from keras import activations, constraints, initializers, ops, regularizers
from keras.src.utils import tracking

from keras_lstm.layers import graph_targets, recurrence
from keras_lstm.layers.graph_targets import graph_target
from keras_lstm.layers.masks import MaskOrder, first_mask, state_at_length

__all__ = ["LSTM", "graph_target"]

_CUDNN_ERROR = (
    "use_cudnn=True was specified, but cuDNN is not supported for this layer "
    "configuration with this backend. Pass use_cudnn='auto' to fallback to a "
    "non-cuDNN implementation."
)


@keras.saving.register_keras_serializable(package="keras_lstm")
class LSTM(keras.layers.Layer):
    """Long Short-Term Memory layer, written from the equations of the notes.

    At step t, with `[h_{t-1}, x_t]` the concatenation of the previous hidden
    state and the input:

    ```
    f_t = σ(W_f·[h_{t-1}, x_t] + b_f)        forget gate
    i_t = σ(W_i·[h_{t-1}, x_t] + b_i)        input gate
    C̃_t = tanh(W_c·[h_{t-1}, x_t] + b_c)     candidate memory
    C_t = f_t * C_{t-1} + i_t * C̃_t          cell state (long-term memory)
    o_t = σ(W_o·[h_{t-1}, x_t] + b_o)        output gate
    h_t = o_t * tanh(C_t)                    hidden state (short-term memory)
    ```

    `W_·` is stored split into its input half (`kernel`, shape
    `(input_dim, 4 * units)`) and its recurrent half (`recurrent_kernel`,
    `(units, 4 * units)`); `bias` is `(4 * units,)`. The four gate blocks are
    in Keras order [i, f, c, o], so weights move between this layer and
    `keras.layers.LSTM` with `set_weights(other.get_weights())`.

    The input projections of all steps are one matmul outside the loop and
    the gradient is written by hand (weight gradients as two matmuls over all
    steps). Masks are taken as `keras.layers.LSTM` takes them, any pattern
    (right or left padding, holes, rows with no valid step): a masked step
    keeps the state and repeats the previous output (zeros before the first
    valid step), or outputs zeros with `zero_output_for_mask=True` (as
    `Bidirectional` sets with `return_sequences`). The valid steps are
    gathered to the front of each row and run as a right-padded batch, so
    every mask takes the fast paths.

    Keras' exporters need no extra call: traced by `model.export(path,
    format="onnx")` the layer gives tf2onnx the graph it fuses into one ONNX
    `LSTM` op; traced by `format="litert"`, `"tf_saved_model"` or a
    `keras.export.ExportArchive`, the function the TFLite converter fuses into
    `UNIDIRECTIONAL_SEQUENCE_LSTM` (this needs a fixed batch size and no mask:
    `model.export(path, format="litert",
    input_signature=[keras.InputSpec(shape=(1, None), dtype="int32")])`;
    `format="litert"` warns otherwise). `graph_target` overrides the choice.

    Args:
        units: Positive integer, dimensionality of the output space.
        activation: Activation of the candidate and of the cell state
            (`C̃_t`, `tanh(C_t)`). Default: `"tanh"`.
        recurrent_activation: Activation of the three gates. Default:
            `"sigmoid"`.
        use_bias: Whether the layer has a bias vector. Default: `True`.
        kernel_initializer: Initializer of `kernel`. Default:
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of `recurrent_kernel`. Default:
            `"orthogonal"`.
        bias_initializer: Initializer of `bias`. Default: `"zeros"`.
        unit_forget_bias: If `True`, add 1 to the forget-gate bias at
            initialization (Jozefowicz et al., 2015). Default: `True`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Regularizers of the three weights.
        activity_regularizer: Regularizer of the layer's output.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Constraints of the three weights.
        dropout: Fraction of the inputs dropped (one mask per sequence).
        recurrent_dropout: Fraction of `h_{t-1}` dropped in the recurrent
            matmul (one mask per sequence).
        seed: Random seed of the dropout masks.
        return_sequences: Return the full sequence of hidden states, or only
            the last. Default: `False`.
        return_state: Also return the final `h` and `C`. Default: `False`.
        go_backwards: Process the sequence backwards and return the reversed
            sequence. Default: `False`.
        stateful: Keep the final state of batch item i as the initial state
            of batch item i in the next batch. Default: `False`.
        unroll: Unroll the recurrence into plain ops (static length only).
            Default: `False`.
        use_cudnn: `"auto"`, `True` or `False`, as in `keras.layers.LSTM`.
            This layer has no cuDNN kernel: `"auto"` and `False` run its own
            code; `True` raises Keras' error when called ("use_cudnn=True was
            specified, but cuDNN is not supported ..."), which is what Keras
            raises on the CPU-only machines this layer is for. Default:
            `"auto"`.
        implementation: `1` or `2`, accepted for `keras.layers.LSTM` code
            (Keras' cell: one matmul per gate or one for all four). Both give
            the same numbers; this layer always computes one matmul for the
            four gates. `recurrent_dropout > 0` sets it to 1, as in Keras.
            Default: `2`.
        zero_output_for_mask: Output zeros at masked steps instead of the
            previous output. Default: `False`.

    Call arguments:
        inputs: A 3D tensor `(batch, timesteps, features)`; integer inputs
            are cast to the layer's compute dtype (float16 or bfloat16 under
            a mixed dtype policy, whose variables stay float32).
        mask: Optional boolean `(batch, timesteps)`, any pattern.
        training: Whether dropout is active.
        initial_state: Optional list `[h_0, C_0]` of `(batch, units)` tensors.

    Example:

    >>> inputs = np.random.random((32, 10, 8)).astype("float32")
    >>> lstm = keras_lstm.layers.LSTM(4)
    >>> output = lstm(inputs)
    >>> output.shape
    (32, 4)
    >>> lstm = keras_lstm.layers.LSTM(4, return_sequences=True, return_state=True)
    >>> whole_sequence_output, final_h, final_c = lstm(inputs)
    >>> whole_sequence_output.shape
    (32, 10, 4)
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        zero_output_for_mask=False,
        **kwargs,
    ):
        # keras.layers.LSTM takes `implementation` through **kwargs (for its cell).
        implementation = kwargs.pop("implementation", 2)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                "Invalid valid received for argument `use_cudnn`. "
                "Expected one of {'auto', True, False}. "
                f"Received: use_cudnn={use_cudnn}"
            )
        if units <= 0:
            raise ValueError(f"units must be a positive integer, got {units}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.use_cudnn = use_cudnn
        # As keras.layers.LSTMCell: recurrent dropout forces implementation 1.
        # Both compute the same numbers; this layer has one implementation.
        self.implementation = 1 if self.recurrent_dropout else implementation
        self.supports_masking = True
        self.input_spec = keras.InputSpec(ndim=3)
        self.states = None

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, sequences_shape, initial_state_shape=None):
        input_dim = sequences_shape[-1]
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            if self.unit_forget_bias:

                def bias_initializer(_, *args, **kwargs):
                    return ops.concatenate(
                        [
                            self.bias_initializer((self.units,), *args, **kwargs),
                            initializers.get("ones")((self.units,), *args, **kwargs),
                            self.bias_initializer((self.units * 2,), *args, **kwargs),
                        ]
                    )

            else:
                bias_initializer = self.bias_initializer
            self.bias = self.add_weight(
                shape=(4 * self.units,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        if self.stateful:
            batch = sequences_shape[0]
            if batch is None:
                raise ValueError(
                    "A stateful LSTM needs a fixed batch size: give the input "
                    "`batch_size` (e.g. keras.Input(shape, batch_size=32))."
                )
            self._create_state_variables(batch)
        self.built = True

    @tracking.no_automatic_dependency_tracking
    def _create_state_variables(self, batch):
        # Like keras.layers.LSTM: the states are not weights (get_weights has 3).
        self.states = [
            keras.Variable(tf.zeros((batch, self.units)), trainable=False, name=f"state_{name}")
            for name in ("h", "c")
        ]

    def reset_state(self):
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        for state in self.states:
            state.assign(ops.zeros_like(state))

    def reset_states(self):
        self.reset_state()

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return output, (batch, self.units), (batch, self.units)
        return output

    def compute_mask(self, _, mask):
        mask = first_mask(mask)
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None, None]
        return output_mask

    # ------------------------------------------------------------------ call

    def _uses_fast_path(self):
        return self.activation is activations.tanh and self.recurrent_activation is activations.sigmoid

    def _initial_state(self, sequences, initial_state):
        if initial_state is not None:
            h0, c0 = initial_state
            return (tf.cast(tf.convert_to_tensor(h0), sequences.dtype),
                    tf.cast(tf.convert_to_tensor(c0), sequences.dtype))
        if self.stateful:
            return (tf.cast(tf.convert_to_tensor(self.states[0]), sequences.dtype),
                    tf.cast(tf.convert_to_tensor(self.states[1]), sequences.dtype))
        # A static batch gives static zeros, which the TFLite converter needs.
        batch = sequences.shape[0] if sequences.shape[0] is not None else tf.shape(sequences)[0]
        zeros = tf.zeros(tf.stack([batch, self.units]) if isinstance(batch, tf.Tensor)
                         else (batch, self.units), sequences.dtype)
        return zeros, zeros

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = tf.convert_to_tensor(sequences)
        if sequences.dtype != self.compute_dtype:
            # Integer inputs (and float64 ones) compute in the layer's dtype, as in Keras.
            sequences = tf.cast(sequences, self.compute_dtype)
        mask = first_mask(mask)
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
        if self.use_cudnn is True:
            raise ValueError(_CUDNN_ERROR)
        h0, c0 = self._initial_state(sequences, initial_state)
        kernel, recurrent_kernel = self._weight(self.kernel), self._weight(self.recurrent_kernel)
        bias = self._weight(self.bias) if self.use_bias else None

        if training and self.dropout > 0:
            keep = keras.random.dropout(
                tf.ones_like(sequences[:, 0, :]), self.dropout, seed=self.seed_generator
            )
            sequences = sequences * keep[:, None, :]
        recurrent_mask = None
        if training and self.recurrent_dropout > 0:
            recurrent_mask = keras.random.dropout(
                tf.ones_like(h0), self.recurrent_dropout, seed=self.seed_generator
            )

        target = graph_targets.current_target()
        fusable = self._uses_fast_path() and recurrent_mask is None
        if target == "tflite" and fusable and mask is None and not self.return_state \
                and not self.stateful:
            if sequences.shape[0] is None:
                graph_targets.warn_dynamic_batch(self)
            fused = recurrence.make_tflite_sequence(self.go_backwards)
            if bias is None:
                bias = tf.zeros([4 * self.units], sequences.dtype)
            last, outputs, _, _, _ = fused(sequences, h0, c0, kernel, recurrent_kernel, bias)
            return self._format(outputs if self.return_sequences else last, None, None)
        if target == "tflite":
            graph_targets.warn_not_fused(self, mask is not None, fusable)

        # Time-major and in processing order from here on (Keras reverses the
        # whole sequence and its mask for go_backwards).
        x = tf.transpose(sequences, [1, 0, 2])
        order = None
        lengths = None
        if mask is not None:
            # A masked step keeps the state, so the states are those of the
            # valid steps run one after another: gather them to the front
            # (right padding), run the recurrence with lengths, and put the
            # outputs back in place.
            order = MaskOrder(tf.transpose(mask, [1, 0]), self.go_backwards,
                               skip_for_right_padding=target == "train")
            lengths = order.lengths
            x = order.compact(x)
        elif self.go_backwards:
            x = tf.reverse(x, [0])

        if target == "onnx" and fusable:
            hidden, h_last, c_last = recurrence.onnx_sequence(
                x, h0, c0, kernel, recurrent_kernel, bias, lengths
            )
        else:
            if self._uses_fast_path() and not self.unroll and not training:
                # Nothing to differentiate: skip keeping the gates.
                hidden, cell, _ = recurrence.forward_loop(
                    x, h0, c0, kernel, recurrent_kernel, bias, keep_gates=False
                )
            elif self._uses_fast_path() and not self.unroll:
                zeros = tf.zeros([4 * self.units], x.dtype)
                hidden, cell = recurrence.lstm_sequence(
                    x, h0, c0, kernel, recurrent_kernel, zeros if bias is None else bias,
                    recurrent_mask,
                )
            else:
                hidden, cell = self._generic_loop(x, h0, c0, kernel, recurrent_kernel, bias,
                                                  recurrent_mask)
            if lengths is None:
                h_last, c_last = hidden[-1], cell[-1]
            else:
                h_last = state_at_length(hidden, h0, lengths)
                c_last = state_at_length(cell, c0, lengths)

        if self.stateful:
            self.states[0].assign(tf.cast(h_last, self.states[0].dtype))
            self.states[1].assign(tf.cast(c_last, self.states[1].dtype))
        if order is None:
            output = hidden if self.return_sequences else h_last
        elif self.return_sequences:
            output = order.outputs(hidden, h_last, self.zero_output_for_mask)
        else:
            # Keras' last output is the output of the last step: the last
            # valid h, zeros before any valid step or, with
            # zero_output_for_mask, when the last step is masked.
            seen = order.mask[-1] if self.zero_output_for_mask else lengths > 0
            output = tf.where(seen[:, None], h_last, tf.zeros_like(h_last))
        if self.return_sequences:
            output = tf.transpose(output, [1, 0, 2])
        return self._format(output, h_last, c_last)

    def _weight(self, variable):
        """A weight as a tensor of the compute dtype (float32 variables under mixed policies)."""
        value = tf.convert_to_tensor(variable)
        return value if value.dtype == self.compute_dtype else tf.cast(value, self.compute_dtype)

    def _format(self, output, h, c):
        if self.return_state:
            return output, h, c
        return output

    def _generic_loop(self, x, h0, c0, kernel, recurrent_kernel, bias, recurrent_mask):
        """Any activations, or `unroll`: autodiff through a loop of the same equations."""
        activation = lambda v: self.activation(v)  # noqa: E731
        recurrent_activation = lambda v: self.recurrent_activation(v)  # noqa: E731
        if self.unroll:
            projections = tf.einsum("tbd,dk->tbk", x, kernel)
            if bias is not None:
                projections = projections + bias
            steps = projections.shape[0]
            if steps is None:
                raise ValueError("unroll=True needs a fixed number of timesteps.")
            h, c, hidden, cell = h0, c0, [], []
            for t in range(steps):
                h_in = h if recurrent_mask is None else h * recurrent_mask
                *_, c, h = recurrence._gates(projections[t] + tf.matmul(h_in, recurrent_kernel),
                                             c, activation, recurrent_activation)
                hidden.append(h)
                cell.append(c)
            return tf.stack(hidden), tf.stack(cell)
        hidden, cell, _ = recurrence.forward_loop(
            x, h0, c0, kernel, recurrent_kernel, bias, activation, recurrent_activation,
            recurrent_mask,
        )
        return hidden, cell

    def gates(self, inputs, mask=None, initial_state=None):
        """Per-step gate activations, for looking inside the layer.

        Args:
            inputs: `(batch, timesteps, features)`.
            mask: Optional boolean mask, any pattern. Masked steps leave
                the state unchanged and have no gates: each row lists its
                valid steps first, in processing order, then zeros.
            initial_state: Optional `[h_0, C_0]`.

        Returns:
            A dict of NumPy arrays shaped `(batch, timesteps, units)`, in
            processing order (reversed for `go_backwards`), valid steps
            first: `forget_gate`,
            `input_gate`, `candidate`, `cell_state`, `output_gate`,
            `hidden_state`.

        Example:

        >>> gates = lstm.gates(np.random.random((2, 5, 8)).astype("float32"))
        >>> gates["forget_gate"].shape
        (2, 5, 4)
        """
        inputs = tf.cast(tf.convert_to_tensor(inputs), self.compute_dtype)
        if not self.built:
            self.build(inputs.shape)
        h0, c0 = self._initial_state(inputs, initial_state)
        x = tf.transpose(inputs, [1, 0, 2])
        lengths = None
        if mask is not None:
            order = MaskOrder(tf.transpose(tf.cast(mask, tf.bool), [1, 0]), self.go_backwards)
            lengths = order.lengths
            x = order.compact(x)
        elif self.go_backwards:
            x = tf.reverse(x, [0])
        hidden, cell, gates = recurrence.forward_loop(
            x, h0, c0, self._weight(self.kernel), self._weight(self.recurrent_kernel),
            self._weight(self.bias) if self.use_bias else None,
            lambda v: self.activation(v), lambda v: self.recurrent_activation(v),
        )
        i, f, g, o = tf.split(gates, 4, axis=-1)
        arrays = {"forget_gate": f, "input_gate": i, "candidate": g, "cell_state": cell,
                  "output_gate": o, "hidden_state": hidden}
        result = {}
        for name, value in arrays.items():
            value = tf.transpose(value, [1, 0, 2])
            if lengths is not None:
                valid = tf.sequence_mask(lengths, tf.shape(value)[1])
                value = tf.where(valid[..., None], value, tf.zeros_like(value))
            result[name] = value.numpy()
        return result

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "use_cudnn": self.use_cudnn,
            "implementation": self.implementation,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        return {**super().get_config(), **config}
