"""Artificial code-switching (Litschko et al., 2023): words of a text replaced by their translations.

For a text in language A, each word that has an entry in the lexicon from A into the
chosen target language is replaced with probability `rate` by a translation drawn by
its probability. The target is one language per text (`per: text`, drawn uniformly from
the targets other than A) or one per word (`per: word`). Case is kept where the script
has case (Title, UPPER), and everything between words (punctuation, spacing) is kept;
a replacement written with spaces that lands beside a character of an unspaced script
(Chinese, Japanese, Thai) gets a space on that side. `rate` counts over the *eligible*
words (those with an entry), so the realised share of replaced eligible words is `rate`
up to sampling error. Every choice comes from the generator passed in, so a seeded
stream gives the same text every time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hbnb.codeswitch.lexicon import Lexicon, lexicon, route
from hbnb.codeswitch.sources import Source
from hbnb.codeswitch.tokens import match_case, tokenize
from hbnb.errors import UnknownNameError


@dataclass(frozen=True)
class Switched:
    """A text after code-switching: the new text, what was replaced (src, tgt, tgt_lang) in
    order, and how many of its words could have been (had an entry)."""

    original: str
    text: str
    lang: str
    replaced: list[tuple[str, str, str]] = field(default_factory=list)
    eligible: int = 0

    def to_json(self) -> dict:
        return {
            "lang": self.lang,
            "original": self.original,
            "switched": self.text,
            "replaced": [list(r) for r in self.replaced],
        }


class CodeSwitcher:
    """Switches texts of some languages into target languages with lexicons from the sources.

    Lexicons are built on first use of a (language, target) direction, or up front with
    `prepare`, which raises the error of a direction no source (nor a pivot) covers.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        targets: Sequence[str],
        rate: float,
        per: Literal["text", "word"] = "text",
        min_count: int = 2,
        min_prob: float = 0.05,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise UnknownNameError(f"code-switching rate {rate} is outside [0, 1]; give a share like 0.5")
        if per not in ("text", "word"):
            raise UnknownNameError(f"code-switching per {per!r}: use 'text' or 'word'")
        if not targets:
            raise UnknownNameError("code-switching needs at least one target language")
        self.sources = list(sources)
        self.targets = list(dict.fromkeys(targets))
        self.rate = rate
        self.per = per
        self.thresholds = {"min_count": min_count, "min_prob": min_prob}
        self.lexicons: dict[tuple[str, str], Lexicon] = {}

    def lexicon(self, lang: str, target: str) -> Lexicon:
        if (lang, target) not in self.lexicons:
            self.lexicons[(lang, target)] = lexicon(self.sources, f"{lang}-{target}", **self.thresholds)
        return self.lexicons[(lang, target)]

    def targets_of(self, lang: str) -> list[str]:
        return [t for t in self.targets if t != lang]

    def prepare(self, languages: Sequence[str]) -> dict[str, Lexicon]:
        """Build every lexicon that texts of these languages need; {"a-b": lexicon}."""
        return {f"{a}-{t}": self.lexicon(a, t) for a in languages for t in self.targets_of(a)}

    def check(self, languages: Sequence[str]) -> None:
        """Raise the error `prepare` would, without aligning anything (a plan's check)."""
        for a in languages:
            for t in self.targets_of(a):
                if (a, t) not in self.lexicons:
                    route(self.sources, f"{a}-{t}", **self.thresholds)

    def switch(self, text: str, lang: str, rng: np.random.Generator) -> Switched:
        """The text with its eligible words replaced with probability `rate` (see the module docstring)."""
        targets = self.targets_of(lang)
        if not targets or self.rate == 0.0:
            return Switched(text, text, lang)
        text_target = targets[int(rng.integers(len(targets)))] if self.per == "text" else None
        pieces: list[str] = []
        replaced: list[tuple[str, str, str]] = []
        eligible, last = 0, 0
        tokens = tokenize(text)
        for k, token in enumerate(tokens):
            if not token.word:
                continue
            target = text_target or targets[int(rng.integers(len(targets)))]
            found = self.lexicon(lang, target).translations(token.key)
            if found is None:
                continue
            eligible += 1
            if rng.random() >= self.rate:
                continue
            words, probs = found
            choice = match_case(token.text, words[int(rng.choice(len(words), p=probs))])
            pieces += [text[last : token.start], self._padded(choice, text, token, tokens, k)]
            last = token.end
            replaced.append((token.text, choice, target))
        if not replaced:
            return Switched(text, text, lang, [], eligible)
        pieces.append(text[last:])
        return Switched(text, "".join(pieces), lang, replaced, eligible)

    @staticmethod
    def _padded(choice: str, text: str, token, tokens, k: int) -> str:
        """A space on each side where a spaced word meets an unspaced character with no space between."""
        spaced = not tokenize(choice)[0].unspaced if choice else True
        if not spaced:
            return choice
        before = k > 0 and tokens[k - 1].unspaced and tokens[k - 1].end == token.start
        after = k + 1 < len(tokens) and tokens[k + 1].unspaced and tokens[k + 1].start == token.end
        before = before or (token.unspaced and token.start > 0 and not text[token.start - 1].isspace())
        after = after or (token.unspaced and token.end < len(text) and not text[token.end].isspace())
        return f"{' ' if before else ''}{choice}{' ' if after else ''}"


def switch_all(
    switcher: CodeSwitcher, texts: Sequence[str], langs: Sequence[str], rng: np.random.Generator
) -> list[Switched]:
    """Switch texts in order with one generator (the CLI's sample, an evaluation set's queries)."""
    return [switcher.switch(text, lang, rng) for text, lang in zip(texts, langs)]


def realised(switched: Sequence[Switched]) -> Mapping[str, object]:
    """What a set of switched texts holds: texts changed, words replaced per target, realised rate."""
    per_target: dict[str, int] = {}
    for s in switched:
        for _, _, t in s.replaced:
            per_target[t] = per_target.get(t, 0) + 1
    replaced = sum(len(s.replaced) for s in switched)
    eligible = sum(s.eligible for s in switched)
    return {
        "texts": len(switched),
        "texts_switched": sum(bool(s.replaced) for s in switched),
        "eligible_words": eligible,
        "words_replaced": replaced,
        "realised_rate": round(replaced / eligible, 4) if eligible else None,
        "words_replaced_per_language": dict(sorted(per_target.items())),
    }
