"""The `ssehub` console script and `python -m ssehub`: monkey-patch, then run the CLI.

Importing this module imports nothing that opens sockets, so the patching in
main() still comes before everything else, as gevent needs.
"""


def main() -> int:
    from gevent import monkey

    monkey.patch_all()
    from .cli import main as run

    return run()
