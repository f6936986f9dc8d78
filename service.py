"""Entry point: `python service.py` serves on $PORT; `service:app` is the WSGI app.

gevent's monkey-patching must come before anything else imports socket or
threading, so it is the first thing here and nowhere else.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402

from ssehub.app import create_app  # noqa: E402
from ssehub.cli import main  # noqa: E402
from ssehub.config import Config  # noqa: E402


def __getattr__(name: str):
    """Build `service:app` on first access, for gunicorn -k gevent and other servers."""
    if name != "app":
        raise AttributeError(name)
    globals()["app"] = create_app(Config.from_env(os.environ))
    return globals()["app"]


if __name__ == "__main__":
    sys.exit(main())
