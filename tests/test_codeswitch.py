"""Code-switching: induced lexicons (eflomal on WMT22), the switch transform, its CLI and its
evaluation sets, on the real offline data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hbnb import cli, seeds
from hbnb.codeswitch import lexicon as lx
from hbnb.codeswitch.align import grow_diag_final_and
from hbnb.codeswitch.sources import LexiconFile, ParallelText, parallel_lines
from hbnb.codeswitch.switch import CodeSwitcher, realised
from hbnb.codeswitch.tokens import match_case, tokenize
from hbnb.errors import HbnbError, UnknownNameError


@pytest.fixture(scope="module")
def en_de() -> lx.Lexicon:
    """The en-de lexicon of WMT22 (both directions' test sets, 4,074 lines)."""
    return lx.lexicon(["wmt22"], "en-de")


def test_wmt22_lexicon_finds_common_translations_with_counts_and_probabilities(en_de) -> None:
    for word, translation in (("year", "jahr"), ("week", "woche"), ("government", "regierung"), ("we", "wir")):
        words, probs = en_de.translations(word)
        assert words[int(np.argmax(probs))] == translation, (word, words)
        assert np.isclose(probs.sum(), 1.0)
    entries = en_de.entries
    assert list(entries.columns) == ["src", "tgt", "count", "p", "pivoted"]
    assert (entries["count"] >= lx.MIN_COUNT).all() and (entries["p"] >= lx.MIN_PROB).all()
    assert entries["count"].is_monotonic_decreasing and not entries["pivoted"].any()
    # no numbers, no punctuation
    assert not entries["src"].str.contains(r"^[\d\W]+$", regex=True).any()
    # the reverse direction comes from the same links: equal counts, its own probabilities
    de_en = lx.lexicon(["wmt22"], "de-en")
    jahr = de_en.entries[(de_en.entries.src == "jahr") & (de_en.entries.tgt == "year")]
    year = entries[(entries.src == "year") & (entries.tgt == "jahr")]
    assert int(jahr["count"].iloc[0]) == int(year["count"].iloc[0])
    # stricter thresholds keep a subset
    strict = lx.lexicon(["wmt22"], "en-de", min_count=10, min_prob=0.3)
    assert 0 < strict.size < en_de.size and (strict.entries["count"] >= 10).all()


def test_grow_diag_final_and_keeps_the_intersection_and_grows_to_unaligned_neighbours() -> None:
    forward = {(0, 0), (0, 3), (2, 5)}
    reverse = {(0, 0), (1, 1)}
    # (0, 0): both agree; (1, 1): a diagonal neighbour aligning two unaligned words; (2, 5): far
    # from the rest, but both words unaligned (final-and); (0, 3): source 0 is already aligned
    assert grow_diag_final_and(forward, reverse) == {(0, 0), (1, 1), (2, 5)}


def test_a_pair_no_source_covers_is_pivoted_through_english_and_marked() -> None:
    de_es = lx.lexicon(["tatoeba"], "de-es")  # Tatoeba has de-en and es-en, not de-es
    assert de_es.pivot == "en" and de_es.entries["pivoted"].all() and de_es.size > 100
    assert de_es.best("nicht") == "no" and de_es.best("ist") == "es" and de_es.best("ein") == "un"
    with pytest.raises(
        UnknownNameError,
        match=r"no source covers ko-fi \(sources: wmt22\), and no pivot .*ko-en and en-fi not covered.*tatoeba",
    ):
        lx.lexicon(["wmt22"], "ko-fi")
    with pytest.raises(UnknownNameError, match="unknown lexicon source 'wmt23'"):
        lx.lexicon(["wmt23"], "en-de")


def test_users_lexicon_files_and_parallel_text(tmp_path: Path) -> None:
    tab = tmp_path / "de-en.txt"
    tab.write_text("haus\thouse\nhaus\thome\nkatze\tcat\n")
    muse = tmp_path / "muse.txt"
    muse.write_text("hund dog\n")
    lex = lx.lexicon([LexiconFile("de-en", str(tab)), LexiconFile("de-en", str(muse))], "de-en", min_count=1)
    assert set(lex.translations("haus")[0]) == {"house", "home"} and lex.best("hund") == "dog"
    reverse = lx.lexicon([LexiconFile("de-en", str(tab))], "en-de", min_count=1)
    assert reverse.best("cat") == "katze"
    bad = tmp_path / "bad.txt"
    bad.write_text("one two three\n")
    with pytest.raises(HbnbError, match=r"bad.txt, line 1: expected 'src<TAB>tgt'"):
        lx.lexicon([LexiconFile("de-en", str(bad))], "de-en")
    # parallel text of the user's: the Tatoeba German-English files, copied
    xs, ys = parallel_lines("tatoeba", "de", "en")
    (tmp_path / "a.de").write_text("\n".join(xs) + "\n")
    (tmp_path / "b.en").write_text("\n".join(ys) + "\n")
    mine = lx.lexicon([ParallelText("de-en", files=(str(tmp_path / "a.de"), str(tmp_path / "b.en")))], "de-en")
    assert mine.best("ich") == "i" and mine.size > 100
    (tmp_path / "b.en").write_text("\n".join(ys[:-1]) + "\n")
    with pytest.raises(HbnbError, match="must be line-aligned"):
        lx.lexicon([ParallelText("de-en", files=(str(tmp_path / "a.de"), str(tmp_path / "b.en")))], "de-en")


def test_link_counts_are_cached_by_sources_and_pair(monkeypatch) -> None:
    lx.pair_counts(["wmt22"], "de", "en")  # built (or found) once

    def no_alignment(*args, **kwargs):
        raise AssertionError("aligned again instead of reading the cache")

    monkeypatch.setattr(lx, "align_counts", no_alignment)
    assert len(lx.pair_counts(["wmt22"], "de", "en")) > 1000
    with pytest.raises(AssertionError, match="aligned again"):
        lx.pair_counts(["wmt22", "tatoeba"], "de", "en")  # other sources: another key


def test_heldout_hit_rate_of_the_wmt22_lexicon() -> None:
    h = lx.heldout_hit_rate(["wmt22"], "en-de")
    assert 350 < h["heldout_lines"] < 450 and h["replaced"] > 3000  # 10% of each direction's lines
    assert 0.3 < h["hit_rate"] < 0.9 and 0.6 < h["coverage"] <= 1.0


def test_tokens_keep_spans_case_and_cut_unspaced_scripts_into_characters() -> None:
    tokens = tokenize("Don't stop: 3.5 km, well-known!")
    assert [(t.text, t.word) for t in tokens] == [
        ("Don't", True),
        ("stop", True),
        (":", False),
        ("3.5", False),
        ("km", True),
        (",", False),
        ("well-known", True),
        ("!", False),
    ]
    assert [t.text for t in tokenize("政府很忙")] == ["政", "府", "很", "忙"]
    assert [t.text for t in tokenize("हिंदी भाषा")] == ["हिंदी", "भाषा"]  # combining marks stay in the word
    assert match_case("House", "haus") == "Haus" and match_case("NASA", "nasa") == "NASA"
    assert match_case("Jahr", "год") == "Год" and match_case("Ja", "是") == "是"


@pytest.fixture(scope="module")
def toy_lexicon(tmp_path_factory) -> LexiconFile:
    """A user lexicon en-de of 20 words, so eligible words are easy to count."""
    words = "the house is big and old cat dog year week we you they red green blue small good bad new".split()
    path = tmp_path_factory.mktemp("lex") / "en-de.tsv"
    path.write_text("".join(f"{w}\t{w.upper()}x\n" for w in words))
    return LexiconFile("en-de", str(path))


def test_switching_is_deterministic_respects_rate_and_keeps_punctuation(toy_lexicon) -> None:
    switcher = CodeSwitcher([toy_lexicon], ["de"], rate=0.3, min_count=1)
    text = "The house is big, and the cat is old! (We 2 saw him.)"
    a = [switcher.switch(text, "en", seeds.rng(7, "code-switch", i)) for i in range(200)]
    b = [switcher.switch(text, "en", seeds.rng(7, "code-switch", i)) for i in range(200)]
    assert [s.text for s in a] == [s.text for s in b]
    assert len({s.text for s in a}) > 20
    stats = realised(a)
    assert stats["eligible_words"] == 200 * 10  # the, house, is, big, and, the, cat, is, old, we (not "saw", "2")
    se = np.sqrt(0.3 * 0.7 / stats["eligible_words"])
    assert abs(stats["realised_rate"] - 0.3) < 3 * se
    for s in a:
        # punctuation, numbers and spacing survive; case follows the source word
        assert s.text.count(",") == 1 and s.text.endswith("saw him.)") and " 2 " in s.text
        for src, tgt, lang in s.replaced:
            assert lang == "de" and tgt.lower() == src.lower() + "x" and tgt[0].isupper() == src[0].isupper()
    zero = CodeSwitcher([toy_lexicon], ["de"], rate=0.0, min_count=1)
    assert all(zero.switch(text, "en", seeds.rng(s, "code-switch")).text == text for s in range(50))
    with pytest.raises(UnknownNameError, match=r"rate 1.5 is outside \[0, 1\]"):
        CodeSwitcher([toy_lexicon], ["de"], rate=1.5)


def test_per_word_targets_mix_several_languages() -> None:
    switcher = CodeSwitcher(["tatoeba"], ["de", "es"], rate=1.0, per="word")
    out = switcher.switch(
        "We will meet the government next week in the year of the house.", "en", seeds.rng(0, "code-switch")
    )
    assert {lang for _, _, lang in out.replaced} == {"de", "es"}
    per_text = CodeSwitcher(["tatoeba"], ["de", "es"], rate=1.0, per="text")
    for i in range(5):
        one = per_text.switch("We will meet the government next week.", "en", seeds.rng(i, "code-switch"))
        assert len({lang for _, _, lang in one.replaced}) == 1


def test_cli_lexicon_json_and_text(en_de, capsys) -> None:
    assert cli.main(["data", "lexicon", "--source", "wmt22", "--pair", "en-de", "--top", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pair"] == "en-de" and out["size"] == en_de.size and len(out["entries"]) == 5
    counts = [e["count"] for e in out["entries"]]
    assert counts == sorted(counts, reverse=True) and set(out["entries"][0]) >= {"src", "tgt", "p", "count"}
    assert 0.5 < out["coverage"] <= 1.0
    assert cli.main(["data", "lexicon", "--pair", "en-de", "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "en-de from wmt22: " in text and "coverage:" in text and "und" in text


def test_cli_code_switch_prints_replacements_and_rate_zero_keeps_the_originals(en_de, capsys) -> None:
    argv = ["data", "code-switch", "--source", "wmt22", "--languages", "en", "de", "--sample", "20", "--seed", "0"]
    assert cli.main([*argv, "--rate", "0.5", "--json"]) == 0
    switched = json.loads(capsys.readouterr().out)
    assert len(switched) == 20 and all(s["lang"] == "en" for s in switched)
    assert sum(bool(s["replaced"]) for s in switched) >= 15
    for s in switched:
        assert all(lang == "de" for _, _, lang in s["replaced"])
        if not s["replaced"]:
            assert s["switched"] == s["original"]
    assert cli.main([*argv, "--rate", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == switched  # same seed, same output
    assert cli.main([*argv, "--rate", "0", "--json"]) == 0
    unchanged = json.loads(capsys.readouterr().out)
    assert [s["original"] for s in unchanged] == [s["original"] for s in switched]
    assert all(s["switched"] == s["original"] and s["replaced"] == [] for s in unchanged)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "lexicon", "--source", "wmt23", "--pair", "en-de"], "unknown lexicon source 'wmt23'"),
        (["data", "lexicon", "--source", "wmt22", "--pair", "ko-fi"], "no source covers ko-fi"),
        (["data", "code-switch", "--languages", "de", "--rate", "1.5"], r"rate 1.5 is outside \[0, 1\]"),
    ],
)
def test_cli_bad_input_is_one_clear_error(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hbnb: error: ") and re.search(message, err[0])


def test_code_switched_mkqa_is_a_registered_evaluation_set() -> None:
    from hbnb.evaluation import tasks

    task = tasks.get_task("mkqa-cs")
    base = tasks.get_task("mkqa").load(["es", "en"])
    data = task.load(["es", "en"])
    assert data.queries["id"] == base.queries["id"] and data.relevance["query_id"] == base.relevance["query_id"]
    assert data.candidates["id"] == base.candidates["id"]
    changed = [(lang, a != b) for lang, a, b in zip(base.queries["lang"], base.queries["text"], data.queries["text"])]
    assert not any(c for lang, c in changed if lang == "en")  # English queries stay as they are
    spanish = [c for lang, c in changed if lang == "es"]
    assert 0.5 < np.mean(spanish) < 1.0
    again = task.load(["es"])  # a query reads the same whichever languages are loaded
    assert again.queries["text"] == [t for t, lang in zip(data.queries["text"], data.queries["lang"]) if lang == "es"]
    assert {"mkqa-cs", "xquad-r-cs", "mlqa-r-cs"} <= set(tasks.names())
