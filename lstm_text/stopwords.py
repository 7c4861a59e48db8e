"""Small stop-word lists that keep negations (they flip sentiment)."""

from collections.abc import Iterable

__all__ = ["CHINESE", "ENGLISH", "LISTS", "NEGATIONS", "resolve"]

NEGATIONS = frozenset(
    "not no never nor none nobody nothing nowhere neither cannot can't don't doesn't didn't "
    "isn't aren't wasn't weren't won't wouldn't shouldn't couldn't haven't hasn't hadn't "
    "ain't mustn't needn't without "
    "不 没 没有 别 无 非 未 莫 勿 甭 否".split()
)

ENGLISH = frozenset(
    "a an the and or but if then so than too very of at by for with about against between "
    "into through during before after above below to from up down in out on off over under "
    "again further once here there when where why how all any both each few more most other "
    "some such only own same s t can will just should now i me my myself we our ours "
    "ourselves you your yours yourself yourselves he him his himself she her hers herself it "
    "its itself they them their theirs themselves what which who whom this that these those "
    "am is are was were be been being have has had having do does did doing would could "
    "i'm you're he's she's it's we're they're i've you've we've they've i'd you'd he'd she'd "
    "we'd they'd i'll you'll he'll she'll we'll they'll".split()
) - NEGATIONS

CHINESE = frozenset(
    "的 了 是 在 和 就 都 而 及 与 着 或 一个 也 很 这 那 之 于 上 下 中 把 被 让 给 "
    "我 你 他 她 它 们 我们 你们 他们 吧 吗 呢 啊 哦 嗯 呀 么 个 这个 那个 有 还 又".split()
) - NEGATIONS

LISTS = {"english": ENGLISH, "chinese": CHINESE}


def resolve(stopwords: str | Iterable[str] | None) -> frozenset[str]:
    """A frozenset from `None`, a list name ("english", "chinese") or an iterable.

    Negations never count as stop words (they flip sentiment):

    >>> sorted(resolve(["the", "not", "film"]))
    ['film', 'the']
    >>> "not" in resolve("english")
    False
    """
    if stopwords is None:
        return frozenset()
    if isinstance(stopwords, str):
        if stopwords not in LISTS:
            raise ValueError(f"stopwords must be one of {sorted(LISTS)} or a set, got {stopwords!r}")
        return LISTS[stopwords]
    return frozenset(stopwords) - NEGATIONS
