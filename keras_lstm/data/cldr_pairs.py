"""The embedded default translation corpus: real localisation data, formatted in two languages.

No sentence-pair corpus ships on PyPI, but the Unicode CLDR data that Babel
installs say how every language writes the same date, time, number or amount:
`Tuesday, March 3, 2026` ↔ `2026年3月3日星期二`, `3:30 PM` ↔ `15:30`,
`$1,234.50` ↔ `US$1,234.50`. This module draws such values with a seed and
formats each in both languages. It is synthetic text built from real
localisation rules, not natural sentences: word order, month and weekday
names, digit grouping, currency signs and 12/24-hour clocks change between
the languages, which an encoder-decoder must learn to map.
"""

import datetime
import random

__all__ = ["CURRENCIES", "LOCALES", "default_pairs", "generate_pairs"]

LOCALES = ("en", "zh", "es", "de")
CURRENCIES = ("USD", "EUR", "CNY", "JPY", "GBP")


def _formatters():
    from babel import dates, numbers

    def date_format(width):
        return lambda value, locale: dates.format_date(value["date"], width, locale=locale)

    return {
        "date_full": date_format("full"),
        "date_long": date_format("long"),
        "date_medium": date_format("medium"),
        "time": lambda v, locale: dates.format_time(v["time"], "short", locale=locale),
        "date_time": lambda v, locale: dates.format_datetime(
            datetime.datetime.combine(v["date"], v["time"]), "medium", locale=locale),
        "decimal": lambda v, locale: numbers.format_decimal(v["number"], locale=locale),
        "currency": lambda v, locale: numbers.format_currency(v["amount"], v["currency"],
                                                              locale=locale),
        "percent": lambda v, locale: numbers.format_percent(v["fraction"], locale=locale),
    }


def _value(rng):
    day = datetime.date(1990, 1, 1) + datetime.timedelta(days=rng.randrange(365 * 50))
    return {
        "date": day,
        "time": datetime.time(rng.randrange(24), rng.randrange(0, 60, 5)),
        "number": round(rng.uniform(0, 10 ** rng.randrange(1, 7)), rng.randrange(0, 3)),
        "amount": round(rng.uniform(0, 10 ** rng.randrange(1, 6)), 2),
        "currency": rng.choice(CURRENCIES),
        "fraction": rng.randrange(0, 1000) / 100,
    }


def generate_pairs(source_locale="en", target_locale="zh", n=30_000, seed=0):
    """`n` distinct (source, target) pairs, the same for the same arguments.

    Args:
        source_locale, target_locale: Two of "en", "zh", "es", "de".
        n: Number of distinct pairs.
        seed: Seeds the values drawn.

    Example:

    >>> generate_pairs("zh", "en", n=2, seed=0)
    [('2022年3月30日', 'Mar 30, 2022'), ...]
    """
    for locale in (source_locale, target_locale):
        if locale not in LOCALES:
            raise ValueError(f"locale must be one of {LOCALES}, got {locale!r}")
    formatters = _formatters()
    kinds = sorted(formatters)
    rng = random.Random(seed)
    # One target per source: CLDR writes some values alike in one language
    # (zh long and medium dates) and differently in the other.
    pairs, seen = [], set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 20 * n:
            raise ValueError(f"could not draw {n} distinct pairs")
        value, kind = _value(rng), rng.choice(kinds)
        pair = (formatters[kind](value, source_locale), formatters[kind](value, target_locale))
        if pair[0] not in seen:
            seen.add(pair[0])
            pairs.append(pair)
    return pairs


def default_pairs(seed=0, n=30_000):
    """The main job's corpus: Chinese → English, as in the notes' example."""
    return generate_pairs("zh", "en", n=n, seed=seed)
