"""Text to search terms as upstream's Lucene index makes them (pyserini's default English analyzer):
StandardTokenizer (Unicode word boundaries), English possessive filter, lower case, Lucene's 33
English stop words, Porter stemming.

The tokenizer follows the Unicode word-boundary rules (UAX #29) that matter for product text: runs
of letters, decimal digits and connectors (`_`) are words; a word continues across one `.`, `'`, `’`
or `:` between two letters ("men's", "u.s.a", "description:solid") and across one `.`, `,`, `;`,
`'`, `’` or `⁄` between two digits ("9.5", "1,000", "1⁄2"); CJK ideographs and hiragana are one word
each; an emoji (Unicode's Extended_Pictographic, with its variation selectors, skin tones and
zero-width-joined parts) is a word of its own, as Lucene 9 emits them. Other symbols (`°`, `☆`, `+`)
are not words.

The stemmer is NLTK's Porter stemmer in its `MARTIN_EXTENSIONS` mode: Martin Porter's own
implementation, from which Lucene's `PorterStemmer` derives ("technology" -> "technolog", "assembly"
-> "assembl", where the published algorithm, which Snowball's `porter` follows, gives "technologi",
"assembli"); like Lucene's, it leaves words of one or two characters as they are.
"""

from __future__ import annotations

from functools import lru_cache

import regex
from nltk.stem.porter import PorterStemmer

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)

_LETTER_JOINERS = r"'.:\u00b7\u0387\u05f4\u2018\u2019\u2024\u2027\ufe13\ufe52\ufe55\uff07\uff0e\uff1a"
_DIGIT_JOINERS = r"'.,;\u037e\u0589\u060c\u060d\u066c\u07f8\u2018\u2019\u2024\u2044\ufe10\ufe14\ufe50\ufe52\ufe54\uff07\uff0c\uff0e\uff1b"
_SINGLE = r"\p{Han}\p{Hiragana}"  # one token per character
_PART = rf"[\p{{L}}\p{{M}}\p{{Nd}}\p{{Pc}}--{_SINGLE}]"
_LETTER = rf"[\p{{L}}--{_SINGLE}]"
# Extended_Pictographic as Lucene 9's StandardTokenizer knows it (Unicode's emoji-data.txt)
_PICTOGRAPHIC = (
    r"\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u2388\u23cf"
    r"\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u2605\u2607-\u2612"
    r"\u2614-\u2685\u2690-\u2705\u2708-\u2712\u2714\u2716\u271d\u2721\u2728\u2733\u2734\u2744\u2747"
    r"\u274c\u274e\u2753-\u2755\u2757\u2763-\u2767\u2795-\u2797\u27a1\u27b0\u27bf\u2934\u2935"
    r"\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001f0ff"
    r"\U0001f10d-\U0001f10f\U0001f12f\U0001f16c-\U0001f171\U0001f17e\U0001f17f\U0001f18e"
    r"\U0001f191-\U0001f19a\U0001f1ad-\U0001f1e5\U0001f201-\U0001f20f\U0001f21a\U0001f22f"
    r"\U0001f232-\U0001f23a\U0001f23c-\U0001f23f\U0001f249-\U0001f3fa\U0001f400-\U0001f53d"
    r"\U0001f546-\U0001f64f\U0001f680-\U0001f6ff\U0001f774-\U0001f77f\U0001f7d5-\U0001f7ff"
    r"\U0001f80c-\U0001f80f\U0001f848-\U0001f84f\U0001f85a-\U0001f85f\U0001f888-\U0001f88f"
    r"\U0001f8ae-\U0001f8ff\U0001f90c-\U0001f93a\U0001f93c-\U0001f945\U0001f947-\U0001faff"
    r"\U0001fc00-\U0001fffd"
)
_EMOJI_PART = rf"[{_PICTOGRAPHIC}][\ufe0f\U0001f3fb-\U0001f3ff]*"
_WORD = regex.compile(
    rf"(?=[\p{{L}}\p{{Nd}}])"  # a word holds a letter or a digit (a lone `_` is none)
    rf"{_PART}+(?:(?<={_LETTER})[{_LETTER_JOINERS}](?={_LETTER}){_PART}+"
    rf"|(?<=\p{{Nd}})[{_DIGIT_JOINERS}](?=\p{{Nd}}){_PART}+)*"
    rf"|[{_SINGLE}]|{_EMOJI_PART}(?:\u200d{_EMOJI_PART})*",
    regex.V1,
)
_POSSESSIVE = ("'s", "’s", "\uff07s")
_PORTER = PorterStemmer(mode=PorterStemmer.MARTIN_EXTENSIONS)


def words(text: str) -> list[str]:
    """StandardTokenizer's words, as written."""
    return _WORD.findall(text)


@lru_cache(maxsize=1_000_000)
def stem(term: str) -> str:
    return _PORTER.stem(term, to_lowercase=False)


def analyze(text: str) -> list[str]:
    """The terms Lucene indexes for `text`, in order (repeats kept)."""
    terms = []
    for word in words(text):
        if word[-2:].lower() in _POSSESSIVE:  # EnglishPossessiveFilter
            word = word[:-2]
        word = word.lower()
        if word and word not in STOP_WORDS:
            terms.append(stem(word))
    return terms
