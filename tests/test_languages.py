"""Language codes are canonical across data sets."""

from __future__ import annotations

import pytest

from hbnb.errors import UnknownNameError
from hbnb.languages import canonical, check_subset, known, name


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("deu", "de"),
        ("de", "de"),
        ("zh_cn", "zh"),
        ("cmn", "zh"),
        ("ZH-CN", "zh"),
        ("zsm", "ms"),
        ("pes", "fa"),
        ("arq", "arq"),
        ("eng", "en"),
        ("lvs", "lv"),
    ],
)
def test_canonical(raw: str, code: str) -> None:
    assert canonical(raw) == code


def test_names_and_known() -> None:
    assert name("deu") == "German"
    assert "yue" in known() and "zh" in known()


def test_unknown_code_and_subset_errors() -> None:
    with pytest.raises(UnknownNameError, match="unknown language code 'klingon'"):
        canonical("klingon")
    assert check_subset(["deu", "en", "de"], ["en", "de"], "x") == ["de", "en"]
    with pytest.raises(UnknownNameError, match="language 'fr' is not in xquad-r; available: en, de"):
        check_subset(["fr"], ["en", "de"], "xquad-r")
