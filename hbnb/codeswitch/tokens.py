"""Word segmentation shared by the aligner, the lexicons and the code-switch transform.

A text is cut into tokens with their character spans: words (letters and combining
marks, with inner apostrophes and hyphens), numbers, and single other characters
(punctuation, symbols). Only words are lexicon entries and can be replaced.

Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao,
Khmer, Myanmar) are cut into single characters (with their combining marks): no
segmenter from PyPI covers all of them, and the aligner and the replacement must cut
alike. The limit, measured in the held-out hit rates: a lexicon entry of zh, ja or th
is one character, so an English word maps to its most aligned character (government
-> 政, not 政府), and a switched Chinese text shows single characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_LETTER = rf"(?:(?![{UNSPACED}])[\p{{L}}\p{{M}}])"
_TOKEN = regex.compile(
    rf"(?P<char>[{UNSPACED}]\p{{M}}*)"
    rf"|(?P<word>{_LETTER}+(?:['’\-]{_LETTER}+)*)"
    r"|(?P<number>\p{N}+(?:[.,:]\p{N}+)*)"
    r"|(?P<other>\S)"
)
_CASED = regex.compile(r"\p{Lu}|\p{Ll}")
MAX_TOKENS = 1000  # longer texts are cut before alignment (the aligner's sentence limit)


@dataclass(frozen=True)
class Token:
    """One token of a text: its characters, span and whether it is a word (a lexicon entry)."""

    text: str
    start: int
    end: int
    word: bool
    unspaced: bool = False  # a character of a script written without spaces

    @property
    def key(self) -> str:
        """The form lexicons store: lower case."""
        return self.text.lower()


def tokenize(text: str) -> list[Token]:
    """The tokens of a text, in order, with spans into it."""
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        out.append(Token(m.group(), m.start(), m.end(), kind in ("word", "char"), kind == "char"))
    return out


def aligner_line(text: str) -> str:
    """A text as the aligner reads it: lower-cased tokens joined by single spaces."""
    return " ".join(t.key for t in tokenize(text)[:MAX_TOKENS])


def is_word(key: str) -> bool:
    """Is a token form a word (not a number or punctuation)?"""
    tokens = tokenize(key)
    return len(tokens) == 1 and tokens[0].word


def match_case(source: str, translation: str) -> str:
    """The translation in the source word's case: Title, UPPER (two letters or more) or as stored."""
    if not _CASED.search(translation):
        return translation
    if len(source) > 1 and source.isupper():
        return translation.upper()
    if source[:1].isupper():
        return translation[:1].upper() + translation[1:]
    return translation
