"""Scores: classification metrics (accuracy, macro-F1, per class, confusion matrix) and
translation metrics (sacrebleu BLEU and chrF, exact match). TensorFlow-free."""

import numpy as np

__all__ = ["classification_metrics", "describe_decoding", "format_metrics", "format_translation_metrics", "plot_confusion_matrix", "score_translations"]


def classification_metrics(true_ids, predicted_ids, labels):
    """Scores predictions against the truth.

    Args:
        true_ids, predicted_ids: Integer class ids.
        labels: Label names, indexed by id.

    Returns:
        A JSON-ready dict: `accuracy`, `macro_f1`, `per_class`
        ({label: {precision, recall, f1, support}}), `confusion_matrix`
        (rows: truth, columns: prediction) and `labels`.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    ids = list(range(len(labels)))
    true_ids, predicted_ids = np.asarray(true_ids), np.asarray(predicted_ids)
    precision, recall, f1, support = precision_recall_fscore_support(
        true_ids, predicted_ids, labels=ids, zero_division=0
    )
    return {
        "examples": int(len(true_ids)),
        "accuracy": float(np.mean(true_ids == predicted_ids)) if len(true_ids) else 0.0,
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(true_ids, predicted_ids, labels=ids).tolist(),
        "labels": list(labels),
    }


def format_metrics(metrics):
    """A plain-text report: accuracy, macro-F1, a per-class table, the confusion matrix."""
    labels = metrics["labels"]
    width = max(10, *(len(label) for label in labels))
    lines = [
        f"examples  {metrics['examples']}",
        f"accuracy  {metrics['accuracy']:.4f}",
        f"macro-F1  {metrics['macro_f1']:.4f}",
        *_baseline_line(metrics),
        "",
        f"{'label':<{width}}  precision  recall  f1      support",
    ]
    for label in labels:
        s = metrics["per_class"][label]
        lines.append(f"{label:<{width}}  {s['precision']:.4f}     {s['recall']:.4f}  "
                     f"{s['f1']:.4f}  {s['support']}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "  " + "  ".join(f"{label:>10}" for label in labels)]
    for label, row in zip(labels, metrics["confusion_matrix"]):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{v:>10}" for v in row))
    return "\n".join(lines)


def _baseline_line(metrics):
    """The baseline's line where `metrics` carry a "baseline" entry (sentiment evaluations)."""
    if "baseline" not in metrics:
        return []
    from keras_lstm.baseline import comparison

    return [comparison(metrics, metrics["baseline"], metrics.get("baseline_missing"))]


def plot_confusion_matrix(metrics, path):
    """Saves the confusion matrix as a PNG (written to a temporary file, then renamed)."""
    import matplotlib

    from keras_lstm.core.files import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(metrics["confusion_matrix"])
    labels = metrics["labels"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > matrix.max() / 2 else "black")
    ax.set_title(f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def score_translations(hypotheses, references, target_tokenizer):
    """sacrebleu BLEU and chrF, and exact match, against references normalised by `target_tokenizer`.

    The references pass through the target side's tokenizer and back, as the
    model's outputs do, so that scoring sees the same normalisation on both.
    BLEU tokenizes Chinese references with sacrebleu's "zh" tokenizer.
    """
    import sacrebleu

    from lstm_text.tokenizer import detokenize

    normalised = [detokenize(target_tokenizer.tokenize(r)) for r in references]
    chinese = any("\u4e00" <= ch <= "\u9fff" for r in normalised[:50] for ch in r)
    bleu = sacrebleu.corpus_bleu(hypotheses, [normalised], tokenize="zh" if chinese else "13a")
    chrf = sacrebleu.corpus_chrf(hypotheses, [normalised])
    exact = float(np.mean([h == r for h, r in zip(hypotheses, normalised, strict=True)])) \
        if normalised else 0.0
    return {"bleu": bleu.score, "chrf": chrf.score, "exact_match": exact,
            "examples": len(references), "bleu_tokenize": "zh" if chinese else "13a"}


def describe_decoding(metrics):
    """"greedy" or "beam 4, length penalty 0.6", from evaluate's `beam` and `length_penalty`."""
    if metrics["beam"] <= 1:
        return "greedy"
    return f"beam {metrics['beam']}, length penalty {metrics.get('length_penalty')}"


def format_translation_metrics(metrics):
    """A plain-text report: BLEU, chrF, exact match, decoding, and a few samples."""
    return (f"examples     {metrics['examples']}\nBLEU         {metrics['bleu']:.2f} "
            f"(sacrebleu, tokenize={metrics['bleu_tokenize']})\nchrF         {metrics['chrf']:.2f}\n"
            f"exact match  {metrics['exact_match']:.4f}\n"
            f"decoding     {describe_decoding(metrics)}\n\n"
            + "\n".join(f"{s['source']}  →  {s['translation']}   (reference: {s['reference']})"
                        for s in metrics["samples"]))
