"""The Flask guide shows examples/flask as it is (its blocks run with every other example in
tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(\w*)\n(.*?)\n```", re.DOTALL)
FILE_HEADER = re.compile(r"^#\s*([\w./-]+\.\w+)\s*$")


def test_the_flask_guide_shows_the_example_app_as_it_is() -> None:
    guide = (ROOT / "docs" / "guides" / "flask.md").read_text()
    shown: dict[str, str] = {}
    for lang, text in BLOCK.findall(guide):
        header = FILE_HEADER.match(text.split("\n", 1)[0])
        if lang == "python" and header:
            shown[header.group(1)] = text
    example = ROOT / "examples" / "flask"
    files = {str(path.relative_to(example)): path.read_text().rstrip("\n")
             for path in sorted(example.rglob("*.py"))}
    assert shown == files
