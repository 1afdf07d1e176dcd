# myapp/__init__.py
import os

from flask import Flask

from myapp.extensions import resque


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("MYAPP_SECRET", "change me"),
        RESQUE_REDIS=os.environ.get("RESQUE_REDIS", "redis://localhost:6379/0"),
        ADMIN_PASSWORD=os.environ.get("MYAPP_ADMIN_PASSWORD"),
        WELCOME_LOG="welcomed.txt",
    )
    app.config.from_prefixed_env()  # FLASK_WELCOME_LOG=... and so on
    app.config.update(config or {})

    from myapp import jobs, views  # noqa: F401  (registers the jobs and the routes)

    app.register_blueprint(views.site)
    resque.init_app(app, dashboard="/resque", auth=views.admin_only)
    return app
