"""Integrations with other libraries, each an optional extra: ``flask``, ``django``
(Django's task framework), ``fastapi`` (with ``resque.aio``), ``sentry`` and ``otel``
(OpenTelemetry traces). Nothing here is imported unless you import it."""
