"""The Prometheus, Flask and error-tracker guides: their examples run, in page order, in a
fresh folder against the suite's Redis, and the Flask guide shows examples/flask as it is.

The rules are those of the docs' own runner (tests/test_docs.py where the docs site is
built): a block whose first line names a file (``# myapp/jobs.py``) is written there and
imported; other ``python`` blocks run as scripts and ``sh`` blocks with ``bash -e``; a
``console`` block's commands must print what it shows; a block marked
``<!-- docs-test: serves ... -->`` runs until stopped and is left to that runner.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("prometheus.md", "flask.md", "error-trackers.md")
BLOCK = re.compile(r"(<!-- docs-test: (\w+)[^>]*-->\n)?```(\w*)\n(.*?)\n```", re.DOTALL)
FILE_HEADER = re.compile(r"^#\s*([\w./-]+\.\w+)\s*$")


def blocks(page: str) -> list[tuple[str, str, str]]:
    """(marker, language, text) of each fenced block of a guide."""
    text = (ROOT / "docs" / "guides" / page).read_text()
    return [(m.group(2) or "", m.group(3), m.group(4)) for m in BLOCK.finditer(text)]


def run(command: list[str], folder: Path, redis_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESQUE_", "FLASK_"))}
    env.update(RESQUE_REDIS=redis_url, PYTHONPATH=str(folder), PYTHONUNBUFFERED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.parametrize("page", PAGES)
def test_the_guides_examples_run(page: str, redis_url: str, r: object, tmp_path: Path) -> None:
    ran = 0
    for marker, lang, text in blocks(page):
        header = FILE_HEADER.match(text.split("\n", 1)[0])
        if header and not header.group(1).startswith("/"):
            target = tmp_path / header.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n")
            if lang == "python":
                run([sys.executable, "-c", f"import {header.group(1)[:-3].replace('/', '.')}"],
                    tmp_path, redis_url)
        elif marker == "serves" or lang not in ("python", "sh", "console"):
            continue
        elif lang == "console":
            for step in text.split("\n$ ")[0:]:
                command, *shown = step.removeprefix("$ ").split("\n")
                assert run(["bash", "-c", command], tmp_path, redis_url).rstrip("\n") \
                    == "\n".join(shown)
        else:
            script = tmp_path / f"_block{ran}.{'py' if lang == 'python' else 'sh'}"
            script.write_text(text + "\n")
            run([sys.executable if lang == "python" else "bash", *(["-e"] if lang == "sh"
                 else []), str(script)], tmp_path, redis_url)
        ran += 1
    assert ran >= 4


def test_the_flask_guide_shows_the_example_app_as_it_is() -> None:
    shown = {FILE_HEADER.match(text.split("\n", 1)[0]).group(1): text  # type: ignore[union-attr]
             for _, lang, text in blocks("flask.md")
             if lang == "python" and FILE_HEADER.match(text.split("\n", 1)[0])}
    example = ROOT / "examples" / "flask"
    files = {str(path.relative_to(example)): path.read_text().rstrip("\n")
             for path in sorted(example.rglob("*.py"))}
    assert shown == files
