# myapp/extensions.py
from resque.contrib.flask import Resque

resque = Resque()
