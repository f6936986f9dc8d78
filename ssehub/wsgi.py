"""`ssehub.wsgi:app`, the WSGI app for gunicorn's gevent workers and other servers
that patch with gevent first; built on first access, from the environment."""

import os

from .app import create_app
from .config import Config


def __getattr__(name: str):
    if name != "app":
        raise AttributeError(name)
    globals()["app"] = create_app(Config.from_env(os.environ))
    return globals()["app"]
