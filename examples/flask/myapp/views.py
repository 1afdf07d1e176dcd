# myapp/views.py
import hmac

from flask import Blueprint, current_app, redirect, request, session, url_for

from myapp.extensions import resque
from myapp.jobs import send_welcome

site = Blueprint("site", __name__)


@site.post("/signup")
def signup():
    resque.enqueue(send_welcome, request.form["user"])
    return {"queued": True}, 202


@site.route("/login", methods=["GET", "POST"])
def login():
    # A stand-in for your real login (Flask-Login, your SSO...): one admin password.
    wanted = current_app.config.get("ADMIN_PASSWORD") or ""
    given = request.form.get("password", "")
    if request.method == "POST" and wanted and hmac.compare_digest(given, wanted):
        session["admin"] = True
        next_page = request.args.get("next", "/")
        return redirect(next_page if next_page.startswith("/resque") else "/")
    return '<form method="post"><input name="password" type="password"><button>Log in</button></form>'


def admin_only():
    """The dashboard's before_request: only a logged-in admin gets through."""
    if not session.get("admin"):
        return redirect(url_for("site.login", next=request.path))
    return None
