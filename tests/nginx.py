"""A real nginx in front of a hub, as operators run it: started per test on a free port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from tests.redis_server import free_port

CONFIG = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    server {{
        listen 127.0.0.1:{port};
        {location}
    }}
}}
"""
# What a typical reverse-proxy guide (and every PaaS router) sets.
LOCATION = """
        location / {
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto {scheme};
        }
"""


class Nginx:
    def __init__(self, directory: str, upstream_port: int, scheme: str = "$scheme", location: str = LOCATION):
        """`scheme`: what nginx tells the hub; "https" stands in for TLS ending at the proxy.
        `location`: the server's location block, with {upstream} and {scheme} filled in."""
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise RuntimeError("nginx is not installed: `apt-get install nginx-light` (make test does this)")
        self.port = free_port()
        path = os.path.join(directory, "nginx.conf")
        with open(path, "w") as file:
            block = location.replace("{upstream}", str(upstream_port)).replace("{scheme}", scheme)
            file.write(CONFIG.format(dir=directory, port=self.port, location=block))
        self.process = subprocess.Popen([binary, "-c", path, "-p", directory], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(directory, "nginx.pid")):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"nginx did not start; see {directory}/error.log")
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
