"""The integration guides show their example apps as they are (their blocks run with every
other example in tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(\w*)\n(.*?)\n```", re.DOTALL)
FILE_HEADER = re.compile(r"^#\s*([\w./-]+\.\w+)\s*$")


def shown_files(guide: str) -> dict[str, str]:
    shown: dict[str, str] = {}
    for lang, text in BLOCK.findall((ROOT / "docs" / "guides" / guide).read_text()):
        header = FILE_HEADER.match(text.split("\n", 1)[0])
        if lang == "python" and header:
            shown[header.group(1)] = text
    return shown


def example_files(name: str) -> dict[str, str]:
    """The example's Python files, empty package markers left out."""
    example = ROOT / "examples" / name
    return {str(path.relative_to(example)): path.read_text().rstrip("\n")
            for path in sorted(example.rglob("*.py")) if path.read_text().strip()}


def test_the_flask_guide_shows_the_example_app_as_it_is() -> None:
    assert shown_files("flask.md") == example_files("flask")


@pytest.mark.parametrize("guide, example", [("django.md", "django"),
                                           ("fastapi.md", "fastapi")])
def test_a_guide_shows_every_file_of_its_example_as_it_is(guide: str, example: str) -> None:
    files = example_files(example)
    shown = shown_files(guide)
    assert {name: shown.get(name) for name in files} == files
