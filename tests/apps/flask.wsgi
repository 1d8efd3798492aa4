"""WSGI entry point of tests/apps/flask_app.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask_app import app as application  # noqa: E402
