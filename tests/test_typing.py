"""The typed task API as users' type checkers see it: mypy and pyright over tests/typing/.

Each file there holds right and wrong uses; a wrong line ends with ``# expect-error``. Both
checkers must report exactly those lines, and no other: a wrong call that type-checks is a
hole in the API's types, and a right call that does not is a false alarm users would hit.
pyright (the ``test`` extra) fetches its Node package on first run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TYPING = Path(__file__).resolve().parent / "typing"
ROOT = TYPING.parent.parent
FILES = sorted(TYPING.glob("*.py"))
MARK = "# expect-error"


def expected_lines(path: Path) -> set[int]:
    lines = path.read_text().splitlines()
    return {number for number, line in enumerate(lines, 1) if line.rstrip().endswith(MARK)}


def mypy_errors(path: Path) -> set[int]:
    relative = str(path.relative_to(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--hide-error-context",
         "--no-error-summary", "--show-error-codes", relative],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    found = re.findall(rf"^{re.escape(relative)}:(\d+): error:", done.stdout, re.MULTILINE)
    assert found or done.returncode == 0, done.stdout + done.stderr
    return {int(line) for line in found}


def pyright_errors(path: Path) -> set[int]:
    binary = shutil.which("pyright") or str(Path(sys.executable).parent / "pyright")
    if not Path(binary).exists():
        pytest.skip("pyright is not installed (pip install -e '.[test]')")
    done = subprocess.run([binary, "--outputjson", str(path)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.skip(f"pyright could not run here: {(done.stdout + done.stderr)[-300:]}")
    return {diagnostic["range"]["start"]["line"] + 1
            for diagnostic in report["generalDiagnostics"] if diagnostic["severity"] == "error"}


def test_there_are_files_with_marked_wrong_uses() -> None:
    assert FILES and all(expected_lines(path) for path in FILES)


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_mypy_reports_exactly_the_wrong_uses(path: Path) -> None:
    assert sorted(mypy_errors(path)) == sorted(expected_lines(path))


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_pyright_reports_exactly_the_wrong_uses(path: Path) -> None:
    assert sorted(pyright_errors(path)) == sorted(expected_lines(path))
