"""The decoding table: BLEU, chrF and time per sentence of one translation model, by beam size
and length penalty.

Usage: python bench/decoding.py [--run FOLDER] [--data cmn-eng|cldr|FILE] [--direction zh-en]
                                [--beams 1,2,4,8] [--length-penalties 0,0.6,1.0]
                                [--examples 0] [--max-examples N]

The model: the run folder `--run` when it holds a trained model (so one training serves
several tables), else one trained there by `keras_lstm.training` as `keras-lstm train
translation` does, with the data's preset (`keras_lstm.presets`: "sentences" for the Tatoeba
pairs ../shared/data/cmn-eng.tsv, "cldr-demo" for the embedded CLDR pairs), seed 0. Every
decoding is scored on the run's held-out test split with sacrebleu (`task.evaluate`'s scoring,
`keras_lstm.evaluation.score_translations`) through the Keras runtime, 256 sentences per call
as `keras-lstm evaluate` decodes; the time is the decoding's only (tokenizing included, scoring
excluded), per sentence; "differs from greedy" is the share of test sentences translated
otherwise than by greedy decoding. Greedy (beam 1) has no length penalty: one row. The default
decoding of predict, evaluate, serve and the runtimes (`keras_lstm.presets.DECODING`) is marked.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_lstm import (
    runtimes,  # noqa: E402
    tasks,  # noqa: E402
)
from keras_lstm.data.pairs import read_pairs  # noqa: E402
from keras_lstm.evaluation import score_translations  # noqa: E402
from lstm_text.decoding import DECODING  # noqa: E402

TATOEBA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cmn-eng.tsv"
BATCH = 256  # sentences per translate call, as TranslationTask.evaluate


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/bench-decoding",
                        help="run folder: reused when it holds a trained model, else trained")
    parser.add_argument("--data", default="cmn-eng",
                        help="cmn-eng (../shared/data/cmn-eng.tsv, preset sentences), cldr (the "
                             "embedded pairs, preset cldr-demo) or a pairs file")
    parser.add_argument("--direction", default="zh-en", choices=("zh-en", "en-zh"),
                        help="for a pairs file (English<TAB>Chinese): zh-en reverses it")
    parser.add_argument("--beams", default="1,2,4,8")
    parser.add_argument("--length-penalties", default="0,0.6,1.0")
    parser.add_argument("--examples", type=int, default=0,
                        help="test pairs scored (0: the whole test split)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="train on the first pairs only (a quick smoke run; default: all)")
    return parser


def trained_run(args):
    """The run folder, trained first unless it already holds a model."""
    from keras_lstm.core import schemas
    from keras_lstm.training import configure, train

    out = Path(args.run)
    if (out / schemas.CONFIG_FILE).is_file() and (out / "model.weights.h5").is_file():
        return out
    task = tasks.get("translation")
    if args.data == "cldr":
        settings, preset = {"data": None, "reverse": False}, "cldr-demo"
    else:
        path = TATOEBA if args.data == "cmn-eng" else Path(args.data)
        if not path.is_file():
            raise SystemExit(f"{path} not found (the real data lives in ../shared/data)")
        settings, preset = {"data": str(path), "reverse": args.direction == "zh-en"}, "sentences"
    config = configure(task, {"out": str(out), "seed": 0, "max_examples": args.max_examples,
                              **settings}, preset, verbose=0)
    train(task, config, verbose=2)
    return out


def decodings(beams, length_penalties):
    """`(beam, length_penalty)` pairs; greedy once, without a length penalty."""
    return [(beam, None if beam == 1 else penalty) for beam in beams
            for penalty in (length_penalties if beam > 1 else (None,))]


def score(translator, sources, references, beam, length_penalty):
    """`{"bleu", "chrf", "ms", "tokenize", "hypotheses"}` of one decoding; `ms` per sentence,
    decoding only."""
    for size in (1, 2, 3):  # by the third shape, tf.function traces one for every batch size
        translator.translate(sources[:size], beam=beam, length_penalty=length_penalty)
    hypotheses, start = [], time.perf_counter()
    for i in range(0, len(sources), BATCH):
        hypotheses += translator.translate(sources[i:i + BATCH], beam=beam,
                                           length_penalty=length_penalty)
    milliseconds = (time.perf_counter() - start) * 1000 / max(len(sources), 1)
    scores = score_translations(hypotheses, references, translator.preprocessors["target"]
                                .tokenizer)
    return {"bleu": scores["bleu"], "chrf": scores["chrf"], "ms": milliseconds,
            "tokenize": scores["bleu_tokenize"], "hypotheses": hypotheses}


def is_default(beam, length_penalty):
    return beam == DECODING["beam"] and (beam == 1 or length_penalty == DECODING["length_penalty"])


def main():
    args = build_parser().parse_args()
    run = trained_run(args)
    config = json.loads((run / "config.json").read_text())
    best = run / "best_score.json"
    best = json.loads(best.read_text()) if best.is_file() else {}
    test = read_pairs(run / "splits" / "test.tsv")
    sources, references = test.sources, test.targets
    if args.examples:
        sources, references = sources[: args.examples], references[: args.examples]
    translator = runtimes.load(run, "keras")
    beams = [int(b) for b in args.beams.split(",")]
    penalties = [float(p) for p in args.length_penalties.split(",")]
    rows, greedy = [], None
    for beam, penalty in decodings(beams, penalties):
        result = score(translator, sources, references, beam, penalty)
        greedy = result["hypotheses"] if beam == 1 else greedy
        result["changed"] = None if greedy is None or beam == 1 else sum(
            a != b for a, b in zip(result["hypotheses"], greedy)) / len(sources)
        rows.append((beam, penalty, result))
        print(f"beam {beam} length penalty {penalty}: BLEU {result['bleu']:.2f} chrF "
              f"{result['chrf']:.2f} {result['ms']:.1f} ms/sentence", flush=True)

    training = config["training"]
    print(f"\nModel: {run} (preset {config.get('preset')}, data "
          f"{Path(training['data']).name if training.get('data') else 'embedded CLDR pairs'}, "
          f"reverse {training.get('reverse')}, seed {training.get('seed')}; best epoch "
          f"{best.get('epoch', '?')} of at most {training.get('epochs')}); {len(sources)} test "
          f"pairs; BLEU tokenizer {rows[0][2]['tokenize']}; Keras runtime, {BATCH} sentences "
          "per call.\n")
    print("| decoding | length penalty | BLEU | chrF | differs from greedy | ms / sentence |")
    print("|---|---|---|---|---|---|")
    for beam, penalty, result in rows:
        name = "greedy" if beam == 1 else f"beam {beam}"
        mark = " (default)" if is_default(beam, penalty) else ""
        changed = "" if result["changed"] is None else f"{result['changed']:.1%}"
        print(f"| {name}{mark} | {'–' if penalty is None else penalty} | {result['bleu']:.2f} | "
              f"{result['chrf']:.2f} | {changed} | {result['ms']:.1f} |")


if __name__ == "__main__":
    main()
