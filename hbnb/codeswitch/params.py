"""Parameters of code-switching and bitext in the training stream (`training.code_switching`,
`training.bitext`), and of a user's own lexicon or parallel text."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from hbnb.schema import Params, canonical_list, canonical_pair


class TextSource(Params):
    """A user's own lexicon or parallel text of one language pair (beside the built-in sources
    wmt22, tatoeba and xquad): a lexicon file, two line-aligned files, or a `datasets` data set."""

    pair: str = Field(description="the languages, e.g. 'de-en': the lexicon's direction, or file / column order")
    lexicon: str | None = Field(None, description="a lexicon file: 'src<TAB>tgt' or MUSE 'src tgt' lines")
    files: list[str] | None = Field(None, min_length=2, max_length=2, description="two line-aligned text files")
    dataset: str | None = Field(None, description="a hub name or local path of a data set with two text columns")
    columns: list[str] | None = Field(None, min_length=2, max_length=2, description="the dataset's two columns")
    split: str = "train"

    @field_validator("pair")
    @classmethod
    def _pair(cls, v: str) -> str:
        return canonical_pair(v)

    @model_validator(mode="after")
    def _one_kind(self) -> TextSource:
        given = [k for k in ("lexicon", "files", "dataset") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of lexicon, files, dataset (given: {', '.join(given) or 'none'})")
        if self.dataset is not None and self.columns is None:
            raise ValueError("a dataset source needs columns: [its column of language a, of language b]")
        return self

    def source(self):
        """As `hbnb.codeswitch.lexicon` takes it."""
        from hbnb.codeswitch.sources import LexiconFile, ParallelText

        if self.lexicon is not None:
            return LexiconFile(self.pair, self.lexicon)
        if self.files is not None:
            return ParallelText(self.pair, files=(self.files[0], self.files[1]))
        return ParallelText(self.pair, dataset=self.dataset, columns=tuple(self.columns or ()), split=self.split)


def _sources(v: Any) -> list[str | TextSource]:
    """Built-in source names or mappings of a user's source, each checked with one clear message."""
    from hbnb.codeswitch.sources import SOURCES

    if not isinstance(v, list) or not v:
        raise ValueError(
            f"give a non-empty list of sources: {', '.join(SOURCES)}, or mappings (pair, lexicon/files/dataset)"
        )
    out: list[str | TextSource] = []
    for i, item in enumerate(v):
        if isinstance(item, TextSource):
            out.append(item)
        elif isinstance(item, dict):
            try:
                out.append(TextSource.model_validate(item))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'source'}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"source {i} ({item}): {problems.replace('Value error, ', '')}") from None
        elif item in SOURCES:
            out.append(item)
        else:
            raise ValueError(
                f"unknown source {item!r}; built in: {', '.join(SOURCES)}, or a mapping (pair, lexicon/files/dataset)"
            )
    return out


SourceList = Annotated[list[Any], AfterValidator(_sources)]


def resolved_sources(sources: list[str | TextSource]) -> list:
    """Sources as `hbnb.codeswitch` takes them: built-in names, or a user's ParallelText / LexiconFile."""
    return [s.source() if isinstance(s, TextSource) else s for s in sources]


class CodeSwitchingParams(Params):
    """Artificial code-switching of the training stream (`hbnb.codeswitch`): a share of the training
    examples have words of their query and/or positive replaced by translations from a lexicon."""

    sources: SourceList = Field(
        default_factory=lambda: ["wmt22"], description="lexicon sources: wmt22, tatoeba, xquad, yours"
    )
    languages: list[str] | None = Field(None, description="languages to switch into; default: the training languages")
    rate: float = Field(0.5, ge=0.0, le=1.0, description="probability of replacing an eligible word")
    switch: Literal["query", "positive", "both"] = Field("query", description="which side of a pair is switched")
    share: float = Field(0.5, ge=0.0, le=1.0, description="share of the training examples that are switched")
    per: Literal["text", "word"] = Field("text", description="one target language per text, or per word")
    min_count: int = Field(2, ge=1, description="lexicon entries need at least this many alignment links")
    min_prob: float = Field(0.05, ge=0.0, le=1.0, description="lexicon entries need p(tgt|src) at least this")

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("give at least one language, or leave it out for the training languages")
        return canonical_list(v)

    def sources_(self) -> list:
        return resolved_sources(self.sources)


class BitextParams(Params):
    """Translation pairs (a sentence and its translation) as extra contrastive pairs of the training
    stream: a `share` of the batches are bitext batches, all cross-lingual, and no batch holds two
    translations of one sentence."""

    sources: SourceList = Field(
        default_factory=lambda: ["wmt22"], description="parallel text: wmt22, tatoeba, xquad, yours"
    )
    languages: list[str] | None = Field(
        None, description="use the pairs among these languages; default: the training languages"
    )
    share: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of the batches (random: of the examples) that are bitext"
    )

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(v) < 2:
            raise ValueError("give at least two languages, or leave it out for the training languages")
        return canonical_list(v)

    @field_validator("sources")
    @classmethod
    def _no_lexicons(cls, v: list) -> list:
        if any(isinstance(s, TextSource) and s.lexicon is not None for s in v):
            raise ValueError("bitext needs parallel text (files or dataset), not a lexicon file")
        return v

    def sources_(self) -> list:
        return resolved_sources(self.sources)
