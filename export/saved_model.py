"""SavedModel export: raw strings in, probabilities and label names out, tokenization in the graph."""

import tensorflow as tf

from export.graph import exportable
from keras_lstm.data.pipeline import encode_tf, vocabulary_table
from keras_lstm.text import TextTokenizer

SERVING_SIGNATURE = "serving_default"
TOKEN_IDS_SIGNATURE = "token_ids"


class _TextPreprocessor(tf.Module):
    """Holds the vocabulary table so that the SavedModel tracks it."""

    def __init__(self, tokenizer, vocabulary, max_length):
        super().__init__()
        self.tokenizer = tokenizer
        self.table = vocabulary_table(vocabulary)
        self.max_length = max_length

    def __call__(self, texts):
        ids = encode_tf(self.tokenizer.tokenize(texts), self.table, self.max_length)
        return ids.to_tensor(default_value=0)


def export_saved_model(model, path, tokenizer_config, vocabulary, labels, max_length):
    """Writes a SavedModel with two signatures.

    `serving_default(texts: string (batch,))` → `probabilities` float32
    `(batch, classes)` and `labels` string `(batch,)`; `token_ids(token_ids:
    int32 (batch, time))` → `probabilities`. Load it with
    `tf.saved_model.load(path)` after `import tensorflow_text` (its ops);
    keras_lstm is not needed.
    """
    import keras

    model = exportable(model, mask=True)
    preprocessor = _TextPreprocessor(TextTokenizer.from_config(tokenizer_config), vocabulary,
                                     max_length)
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
