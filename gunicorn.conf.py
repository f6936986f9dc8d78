"""`gunicorn -c gunicorn.conf.py service:app`: the settings are ssehub.gunicorn_conf's."""

from ssehub.gunicorn_conf import *  # noqa: F403
