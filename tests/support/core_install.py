"""``python tests/support/core_install.py ARGS`` runs ``resque ARGS`` as on the core install: the
``scheduler`` extra's packages (croniter, PyYAML) cannot be imported, as when they are not
installed (a ``None`` in ``sys.modules`` makes ``import`` raise ``ImportError``)."""

import sys

for name in ("croniter", "yaml"):
    sys.modules[name] = None  # type: ignore[assignment]

from resque.cli import main  # noqa: E402

if __name__ == "__main__":
    main(prog_name="resque")
