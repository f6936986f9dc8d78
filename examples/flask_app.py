"""A Flask app with ssehub mounted at /hub, publishing from a view (issue 14, item 4).

    pip install . flask
    python examples/flask_app.py        # http://localhost:8000/ ; the hub is at /hub/

The page embeds the hub's widget with one tag from /hub/widget.js; the
widget finds the hub's address, path included, from that tag. POST /orders
publishes to the widget's channel through ssehub.client.Publisher.
"""

from gevent import monkey

monkey.patch_all()  # before anything else: the hub runs on gevent

import itertools  # noqa: E402
import os  # noqa: E402

from flask import Flask  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from werkzeug.middleware.dispatcher import DispatcherMiddleware  # noqa: E402

from ssehub.app import create_app  # noqa: E402
from ssehub.client import Publisher  # noqa: E402
from ssehub.config import Config  # noqa: E402

PORT = int(os.environ.get("PORT", "8000"))
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body>
  <h1>Orders, live</h1>
  <div id="orders"></div>
  <script async src="/hub/widget.js" data-channel="orders" data-title="Orders" data-target="orders"></script>
</body></html>
"""

shop = Flask(__name__)
hub = create_app(Config.from_env(os.environ))
publisher = Publisher(f"http://127.0.0.1:{PORT}/hub")
numbers = itertools.count(1)


@shop.get("/")
def index():
    return PAGE


@shop.post("/orders")
def place_order():
    number = next(numbers)
    return {"order": number, "event": publisher.publish("orders", f"order {number} placed")}, 201


application = DispatcherMiddleware(shop, {"/hub": hub})

if __name__ == "__main__":
    print(f"shop on http://127.0.0.1:{PORT}/, ssehub at http://127.0.0.1:{PORT}/hub/", flush=True)
    WSGIServer((os.environ.get("HOST", "0.0.0.0"), PORT), application).serve_forever()
