"""The yardstick beside every sentiment score: TF-IDF + logistic regression.

A bag of n-grams with a linear classifier is the model an LSTM must beat to
earn its keep (on the airline tweets it scores about 82 %, as BiLSTMs with
attention do). `keras-lstm train sentiment` fits one on the run's own training
split and keeps it in the run folder; `keras-lstm evaluate` scores it on the
same texts as the LSTM and prints its line beside the LSTM's.

The recipe: word 1-2-grams (every run of word characters is a token, so
"not" and one-letter words count) and character 2-5-grams within word
boundaries (min_df 2), both TF-IDF with sublinear term frequency, stacked and
fed to `LogisticRegression(C=4, max_iter=2000)`.

Stored without pickle, as the run folder's other files are (loading a run
folder runs no code from it):

```
RUN/baseline/
  baseline.json   recipe, classes, training size, and each vectorizer's terms
                  in column order (the line's index is the feature's column)
  weights.npz     idf_word, idf_char, coef, intercept (float64; allow_pickle=False)
```

The folder is written whole or not at all. Loading rebuilds the scikit-learn
vectorizers with those fixed vocabularies and idf weights and the logistic
regression with those coefficients: the same code then predicts, with the same
features and scores as the fitted objects. scikit-learn is imported when a
baseline is fitted or loaded, never at package import.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from keras_lstm.core.errors import ConfigError

__all__ = ["Baseline", "comparison", "fit", "load"]

NAME = "TF-IDF + logistic regression"
FOLDER = "baseline"
CONFIG_FILE = "baseline.json"
WEIGHTS_FILE = "weights.npz"
FORMAT_VERSION = 1
# Streamed (prepared) data: the baseline sees at most this many training texts.
MAX_STREAMED_TEXTS = 200_000

WORD_NGRAMS = dict(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                   token_pattern=r"(?u)\b\w+\b")
CHAR_NGRAMS = dict(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)
CLASSIFIER = dict(C=4.0, max_iter=2000)


class Baseline:
    """A fitted TF-IDF + logistic regression text classifier.

    Build one with `fit` or `load`; it labels raw texts.

    Args:
        word, char: The fitted word and character n-gram `TfidfVectorizer`s.
        classifier: The fitted `LogisticRegression` over their stacked features.
        training_texts: How many texts it was fitted on.

    Example:

    >>> texts = ["good service", "great crew", "bad delay", "awful seat"] * 3
    >>> labels = ["positive", "positive", "negative", "negative"] * 3
    >>> baseline = fit(texts, labels)
    >>> baseline.predict(["great service", "awful delay"])
    ['positive', 'negative']
    """

    def __init__(self, word, char, classifier, training_texts: int = 0):
        self.word, self.char, self.classifier = word, char, classifier
        self.training_texts = int(training_texts)

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.classifier.classes_]

    def features(self, texts):
        """The stacked TF-IDF features of `texts` (a sparse matrix, one row a text)."""
        import scipy.sparse

        texts = list(texts)
        return scipy.sparse.hstack([self.word.transform(texts),
                                    self.char.transform(texts)]).tocsr()

    def predict(self, texts) -> list[str]:
        """The label of each text."""
        texts = list(texts)
        if not texts:
            return []
        return [str(label) for label in self.classifier.predict(self.features(texts))]

    def score(self, texts, labels) -> dict:
        """`{"accuracy", "macro_f1"}` of the predictions on `texts` against `labels`.

        Macro-F1 averages over the labels of `labels` and of the predictions,
        as `sklearn.metrics.f1_score(average="macro")` does.
        """
        from sklearn.metrics import f1_score

        labels = [str(label) for label in labels]
        predicted = self.predict(texts)
        if not labels:
            return {"accuracy": 0.0, "macro_f1": 0.0}
        accuracy = float(np.mean([p == y for p, y in zip(predicted, labels, strict=True)]))
        return {"accuracy": accuracy,
                "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}

    def save(self, run_dir) -> Path:
        """Writes RUN/baseline/ (replaced whole, or left as it was on failure)."""
        from keras_lstm.core.files import atomic_directory

        folder = Path(run_dir) / FOLDER
        config = {
            "format_version": FORMAT_VERSION,
            "model": NAME,
            "word_ngrams": _jsonable(WORD_NGRAMS),
            "char_ngrams": _jsonable(CHAR_NGRAMS),
            "classifier": CLASSIFIER,
            "classes": self.classes,
            "training_texts": self.training_texts,
            "word_terms": _terms(self.word),
            "char_terms": _terms(self.char),
        }
        weights = io.BytesIO()
        np.savez(weights, idf_word=np.asarray(self.word.idf_, np.float64),
                 idf_char=np.asarray(self.char.idf_, np.float64),
                 coef=np.asarray(self.classifier.coef_, np.float64),
                 intercept=np.asarray(self.classifier.intercept_, np.float64))
        with atomic_directory(folder) as work:
            (work / WEIGHTS_FILE).write_bytes(weights.getvalue())
            (work / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False),
                                            encoding="utf-8")
        return folder


def fit(texts, labels) -> Baseline:
    """Fits the baseline on `texts` and their `labels` (strings).

    Args:
        texts: The training texts.
        labels: Their labels; at least two distinct ones.

    Returns:
        The fitted `Baseline`.
    """
    import scipy.sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = list(texts), [str(label) for label in labels]
    word = TfidfVectorizer(**WORD_NGRAMS)
    char = TfidfVectorizer(**CHAR_NGRAMS)
    features = scipy.sparse.hstack([word.fit_transform(texts),
                                    _fit_char(char, texts)]).tocsr()
    classifier = LogisticRegression(**CLASSIFIER).fit(features, labels)
    return Baseline(word, char, classifier, training_texts=len(texts))


def _fit_char(char, texts):
    """The character n-grams; with too few texts for min_df 2, every n-gram (min_df 1)."""
    try:
        return char.fit_transform(texts)
    except ValueError:  # "After pruning, no terms remain": a handful of distinct texts
        char.set_params(min_df=1)
        return char.fit_transform(texts)


def load(run_dir) -> Baseline | None:
    """The baseline saved in the run folder `run_dir`, or None if the run has none.

    Raises:
        ConfigError: The files are there but unreadable or inconsistent.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from keras_lstm.core.schemas import read_json

    folder = Path(run_dir) / FOLDER
    if not (folder / CONFIG_FILE).is_file():
        return None
    config = read_json(folder / CONFIG_FILE)
    if config.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{folder / CONFIG_FILE}: format_version "
                          f"{config.get('format_version')!r} is not {FORMAT_VERSION}; a newer "
                          "keras-lstm wrote it?")
    try:
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as saved:
            weights = {name: saved[name] for name in ("idf_word", "idf_char", "coef",
                                                      "intercept")}
        classes = list(config["classes"])
        word_terms, char_terms = config["word_terms"], config["char_terms"]
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"{folder}: unreadable baseline ({error}); train the run again or "
                          "remove the folder") from None
    rows = 1 if len(classes) == 2 else len(classes)
    if (len(weights["idf_word"]) != len(word_terms) or len(weights["idf_char"]) != len(char_terms)
            or weights["coef"].shape != (rows, len(word_terms) + len(char_terms))
            or weights["intercept"].shape != (rows,)):
        raise ConfigError(f"{folder}: {WEIGHTS_FILE} does not match {CONFIG_FILE}; train the "
                          "run again or remove the folder")
    word = _vectorizer(TfidfVectorizer, config["word_ngrams"], word_terms, weights["idf_word"])
    char = _vectorizer(TfidfVectorizer, config["char_ngrams"], char_terms, weights["idf_char"])
    classifier = LogisticRegression(**config["classifier"])
    classifier.classes_ = np.asarray(classes)
    classifier.coef_, classifier.intercept_ = weights["coef"], weights["intercept"]
    classifier.n_features_in_ = weights["coef"].shape[1]
    return Baseline(word, char, classifier, training_texts=config.get("training_texts", 0))


def _vectorizer(cls, params, terms, idf):
    """A TfidfVectorizer with a fixed vocabulary and idf weights: the fitted one's transform."""
    params = {**params, "ngram_range": tuple(params["ngram_range"])}
    vectorizer = cls(**params, vocabulary={term: i for i, term in enumerate(terms)})
    vectorizer.idf_ = idf  # also checks the vocabulary and idf sizes agree
    return vectorizer


def _terms(vectorizer) -> list[str]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    return terms


def _jsonable(params):
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in params.items()}


def comparison(model: dict, baseline: dict | None, missing: str | None = None) -> str:
    """The baseline's line, beside a model's `{"accuracy", "macro_f1"}`.

    Says plainly whether the model is below or above the baseline, in points
    of accuracy (and of macro-F1 where that differs in direction).

    Args:
        model: The model's scores.
        baseline: The baseline's scores on the same texts, or None.
        missing: Why there is no baseline (said when `baseline` is None).

    Example:

    >>> comparison({"accuracy": 0.804, "macro_f1": 0.735},
    ...            {"accuracy": 0.824, "macro_f1": 0.766})
    'baseline (TF-IDF + logistic regression, same training split): accuracy 0.8240, macro-F1 0.7660 — the LSTM is 2.0 points below it (macro-F1: 3.1 points below)'
    """
    if baseline is None:
        return f"baseline ({NAME}): {missing or 'none'}"
    line = (f"baseline ({NAME}, same training split): accuracy {baseline['accuracy']:.4f}, "
            f"macro-F1 {baseline['macro_f1']:.4f}")
    accuracy = round(100 * (model["accuracy"] - baseline["accuracy"]), 1)
    macro_f1 = round(100 * (model["macro_f1"] - baseline["macro_f1"]), 1)
    verdict = ("level with it in accuracy" if accuracy == 0
               else f"{abs(accuracy):.1f} points {_side(accuracy)} it")
    note = "level" if macro_f1 == 0 else f"{abs(macro_f1):.1f} points {_side(macro_f1)}"
    return f"{line} — the LSTM is {verdict} (macro-F1: {note})"

def _side(points):
    return "below" if points < 0 else "above"
