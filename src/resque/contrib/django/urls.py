"""The dashboard's URLs, for staff: ``path("admin/resque/",
include("resque.contrib.django.urls"))`` (needs the ``web`` extra)."""

from __future__ import annotations

from django.urls import path, re_path

from resque.contrib.django.views import dashboard

app_name = "resque"
urlpatterns = [
    path("", dashboard, {"path": ""}, name="dashboard"),
    re_path(r"^(?P<path>[\s\S]+)$", dashboard),  # any name, newlines included
]
