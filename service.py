"""Entry point: `python service.py` serves on $PORT; `service:app` is the WSGI app.

gevent's monkey-patching must come before anything else imports socket or
threading, so it is the first thing here and nowhere else.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import sys  # noqa: E402

from ssehub.app import create_app  # noqa: E402
from ssehub.config import Config, ConfigError  # noqa: E402
from ssehub.server import configure_logging, serve  # noqa: E402
from ssehub.workers import serve_workers  # noqa: E402


def main() -> int:
    configure_logging()
    try:
        config = Config.from_env(os.environ)
        if config.web_concurrency > 1:
            return serve_workers(config)
        return serve(create_app(config))
    except ConfigError as error:
        print(f"ssehub: {error}", file=sys.stderr)
        return 2


def __getattr__(name: str):
    """Build `service:app` on first access, for gunicorn -k gevent and other servers."""
    if name != "app":
        raise AttributeError(name)
    globals()["app"] = create_app(Config.from_env(os.environ))
    return globals()["app"]


if __name__ == "__main__":
    sys.exit(main())
