"""The encoder-decoder: the step decoder reproduces the teacher-forced training model."""

import numpy as np
import pytest
import tensorflow as tf

from keras_lstm.models.seq2seq import Seq2Seq, Seq2SeqConfig


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("lstm", ["custom", "keras"])
def test_step_decoder_matches_teacher_forcing(attention, lstm):
    seq2seq = Seq2Seq(Seq2SeqConfig(20, 25, embedding_dim=8, units=6, attention=attention,
                                    lstm=lstm, dropout=0.0))
    model, encoder, decoder = (seq2seq.training_model(), seq2seq.encoder_model(),
                               seq2seq.decoder_model())
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    source = np.array([[3, 4, 5, 0], [6, 7, 8, 9]], "int32")
    target = np.array([[1, 5, 6, 0, 0], [1, 7, 8, 9, 10]], "int32")
    logits = np.asarray(model([source, target]))
    encoder_outputs, h, c = encoder(source)
    steps = []
    for t in range(target.shape[1]):
        out = decoder([tf.constant(target[:, t:t + 1]), h, c, encoder_outputs,
                       tf.constant(source != 0)])
        steps.append(np.asarray(out[0]))
        h, c = out[1], out[2]
        if attention:
            weights = np.asarray(out[3])
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
            assert np.all(weights[0, 3:] < 1e-6)  # padding gets no attention
    steps = np.stack(steps, axis=1)
    np.testing.assert_allclose(steps[0, :3], logits[0, :3], atol=1e-5)
    np.testing.assert_allclose(steps[1], logits[1], atol=1e-5)
    # The context vector is the encoder's final state at each source's own length.
    _, h_short, _ = encoder(source[:1, :3])
    np.testing.assert_allclose(encoder(source)[1][:1], h_short, atol=1e-5)
