"""Integrations with other libraries, each an optional extra: ``flask`` (the ``flask``
extra) and ``sentry`` (the ``sentry`` extra). Nothing here is imported unless you import it."""
