"""SavedModel export: raw strings in, probabilities and label names out, tokenization in the graph."""

import tensorflow as tf

from export.graph import exportable
from keras_lstm.text import GraphPreprocessor

__all__ = ["SERVING_SIGNATURE", "TOKEN_IDS_SIGNATURE", "export_saved_model"]

SERVING_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "token_ids"


def export_saved_model(model, path, preprocessor, labels):
    """Writes a SavedModel with two signatures.

    `serving_default(texts: string (batch,))` → `probabilities` float32
    `(batch, classes)` and `labels` string `(batch,)`; `token_ids(token_ids:
    int32 (batch, time))` → `probabilities`. Load it with
    `tf.saved_model.load(path)` after `import tensorflow_text` (its ops);
    keras_lstm is not needed.
    """
    import keras

    model = exportable(model, mask=True)
    preprocessor = GraphPreprocessor(preprocessor)
    label_names = tf.constant(list(labels))

    def serve_texts(texts):
        probabilities = model(preprocessor(texts), training=False)
        return {"probabilities": probabilities,
                "labels": tf.gather(label_names, tf.argmax(probabilities, axis=-1))}

    def serve_ids(token_ids):
        return {"probabilities": model(token_ids, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    with tf.device("/CPU:0"):
        archive.add_endpoint(SERVING_SIGNATURE, serve_texts,
                             input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        archive.add_endpoint(TOKEN_IDS_SIGNATURE, serve_ids,
                             input_signature=[tf.TensorSpec([None, None], tf.int32,
                                                            name="token_ids")])
        archive.write_out(str(path), verbose=False)
