# shop/settings.py
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "only-for-the-example")
DEBUG = os.environ.get("SHOP_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "resque.contrib.django",  # manage.py resque_work, resque_scheduler, resque <verb>
    "orders",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "shop.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("SHOP_DB", HERE / "db.sqlite3"),
}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Tasks are Resque jobs: enqueued when the view's transaction commits, performed by
# `manage.py resque_work`, their results kept a day.
TASKS = {
    "default": {
        "BACKEND": "resque.contrib.django.ResqueBackend",
        "QUEUES": ["default"],
        "OPTIONS": {
            "REDIS": os.environ.get("RESQUE_REDIS", "redis://localhost:6379/0"),
            "RESULT_TTL": 24 * 3600,
        },
    },
}

RECEIPTS_LOG = os.environ.get("SHOP_RECEIPTS", HERE / "receipts.txt")
