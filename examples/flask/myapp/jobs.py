# myapp/jobs.py
from flask import current_app

from myapp.extensions import resque


@resque.job(queue="mail")
def send_welcome(user):
    # Runs in the worker, inside the app's application context.
    with open(current_app.config["WELCOME_LOG"], "a") as log:
        log.write(f"welcome, {user}\n")
