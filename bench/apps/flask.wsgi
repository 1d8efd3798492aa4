"""flask: the small Flask app in flaskapp/ (served from the bench virtualenv)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from flaskapp import app as application  # noqa: E402
