"""The TFLite backend of both tasks (ai_edge_litert): one unpadded sequence an invocation, as on a phone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_lstm.core.errors import ArtifactError
from keras_lstm.runtimes.base import Runtime, SentimentRuntime, TranslationRuntime, register

if TYPE_CHECKING:
    from ai_edge_litert.interpreter import Interpreter

__all__ = ["StatefulModel", "TFLiteSentiment", "TFLiteTranslation", "tflite_interpreter"]


@register
class TFLiteSentiment(SentimentRuntime):
    """The TFLite interpreter (ai_edge_litert), one unpadded sequence per invocation.

    Runs the model's one signature the way a phone does: `token_ids`
    `(1, length)` in, `probabilities` out (`export.tflite`).
    """

    backend = "tflite"

    def __init__(self, folder: str | Path, metadata: dict,
                 artifact: str = "model_float32.tflite", **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        self.interpreter = tflite_interpreter(self, self.file(artifact))
        self.interpreter.allocate_tensors()  # reset_all_variables() needs the state allocated
        self.runner = self.interpreter.get_signature_runner()
        self.input_name = next(iter(self.runner.get_input_details()))
        outputs = self.runner.get_output_details()
        # Exports made before the signature had names call the output `output_0`.
        self.output_name = "probabilities" if "probabilities" in outputs else next(iter(outputs))

    def run_ids(self, ids: np.ndarray) -> np.ndarray:
        """One unpadded sequence `(length,)` of ids → its probabilities `(labels,)`."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or len(ids) == 0:
            raise ValueError(f"token ids must be a non-empty 1-D integer array, got "
                             f"{ids.dtype} {ids.shape}")
        with self.lock:  # an interpreter is not thread-safe
            # The fused LSTM keeps its state in variables between invocations;
            # the runner re-allocates (and so zeroes them) only when the length changes.
            self.interpreter.reset_all_variables()
            outputs = self.runner(**{self.input_name: ids.astype(np.int32)[None, :]})
            return outputs[self.output_name][0].copy()

    def predict_ids(self, rows: Sequence[Sequence[int]], batch_size: int | None = None
                    ) -> np.ndarray:
        """One unpadded row an invocation (the fused LSTM op runs batch 1)."""
        if not rows:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.stack([self.run_ids(row) for row in rows])


@register
class TFLiteTranslation(TranslationRuntime):
    """ai_edge_litert: one sentence (one beam) at a time through the fused LSTM op.

    The fused op keeps `(h, C)` in two variable tensors: the encoder's final
    state is read from them after `invoke()`, and the decoder's state is
    written into them before each step (metadata.json names them).
    """

    backend = "tflite"

    def __init__(self, folder: str | Path, metadata: dict, artifact: str | None = None,
                 **kwargs: Any):
        super().__init__(folder, metadata, **kwargs)
        encoder, decoder = self._files()
        self.encoder = StatefulModel(tflite_interpreter(self, encoder),
                                      self.spec["encoder"].get("state_tensors", {}), encoder)
        self.decoder = StatefulModel(tflite_interpreter(self, decoder),
                                      self.spec["decoder"].get("state_tensors", {}), decoder)

    def _encoder(self, source):
        rows = [self.encoder.run({"source_ids": row[row != 0][None, :]}) for row in source]
        outputs = np.zeros((*source.shape, rows[0][0]["encoder_outputs"].shape[-1]), np.float32)
        for i, (result, _, _) in enumerate(rows):
            sequence = result["encoder_outputs"][0]
            outputs[i, : len(sequence)] = sequence
        return (outputs, np.concatenate([h for _, h, _ in rows]),
                np.concatenate([c for _, _, c in rows]))

    def _decoder(self, tokens, h, c, outputs, mask):
        logits, hs, cs, weights = [], [], [], []
        for i in range(len(tokens)):
            inputs = {"token": tokens[i: i + 1]}
            if self.attention:
                inputs |= {"encoder_outputs": outputs[i: i + 1], "source_mask": mask[i: i + 1]}
            result, h_i, c_i = self.decoder.run(inputs, h[i: i + 1], c[i: i + 1])
            logits.append(result["logits"])
            hs.append(h_i)
            cs.append(c_i)
            weights.append(result.get("attention"))
        return (np.concatenate(logits), np.concatenate(hs), np.concatenate(cs),
                np.concatenate(weights) if self.attention else None)


class StatefulModel:
    """A TFLite interpreter around one fused LSTM whose state tensors we set and read."""

    def __init__(self, interpreter: Interpreter, state_tensors: dict[str, str], path: str | Path):
        self.interpreter = interpreter
        self.path = path
        details = {t["name"]: t for t in interpreter.get_tensor_details()}
        try:
            self.state = [details[state_tensors[k]]["index"] for k in ("h", "c")]
        except KeyError as error:
            raise ArtifactError(f"{path}: no state tensor {error} named in metadata.json") from None
        runner = interpreter.get_signature_runner()  # its name → tensor maps; we invoke
        self.inputs = runner.get_input_details()
        self.outputs = {name: d["index"] for name, d in runner.get_output_details().items()}
        self.units = int(details[state_tensors["h"]]["shape"][-1])
        self.shapes = None

    def run(self, inputs: dict[str, np.ndarray], h: np.ndarray | None = None,
            c: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """One invocation from state `(h, c)` (zeros if None) → (outputs, final h, final c)."""
        interpreter = self.interpreter
        shapes = {name: value.shape for name, value in inputs.items()}
        if shapes != self.shapes:
            for name, value in inputs.items():
                interpreter.resize_tensor_input(self._input(name)["index"], value.shape)
            interpreter.allocate_tensors()
            self.shapes = shapes
        for name, value in inputs.items():
            interpreter.set_tensor(self._input(name)["index"], value)
        zeros = np.zeros((1, self.units), np.float32)
        interpreter.set_tensor(self.state[0], zeros if h is None else h)
        interpreter.set_tensor(self.state[1], zeros if c is None else c)
        interpreter.invoke()
        outputs = {name: interpreter.get_tensor(index) for name, index in self.outputs.items()}
        return (outputs, interpreter.get_tensor(self.state[0]).copy(),
                interpreter.get_tensor(self.state[1]).copy())

    def _input(self, name):
        try:
            return self.inputs[name]
        except KeyError:
            raise ArtifactError(f"{self.path}: no input {name!r} (has "
                                f"{', '.join(sorted(self.inputs))})") from None


def tflite_interpreter(runtime: Runtime, path: str | Path) -> Interpreter:
    """A TFLite interpreter of `path`, allocated; a damaged file is one `ArtifactError` line."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_lstm.core.console import quiet_stderr

    def load(p):
        interpreter = Interpreter(model_path=p)
        interpreter.allocate_tensors()  # where the interpreter announces its CPU delegate
        return interpreter

    with quiet_stderr():  # ... on stderr, which a piped `predict` keeps for errors
        return runtime.load_model(load, path, "TFLite")
