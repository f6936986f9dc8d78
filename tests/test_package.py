"""Issue 14, item 1: a built wheel installs ssehub, its frontend and polyfill,
and the `ssehub` command, which serves on its own, outside the checkout."""

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ssehub.config import Config
from tests.conftest import HubClient, wait_for
from tests.redis_server import free_port
from tests.sse import StreamReader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("pyproject.toml", "README.md", "ssehub", "frontend", "polyfills")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel; its dependencies are this venv's (tests have no network)."""
    work = tmp_path_factory.mktemp("package")
    (work / "src").mkdir()
    for name in SOURCES:  # built from a copy, so the checkout gets no build/ folder
        copy = shutil.copytree if os.path.isdir(os.path.join(ROOT, name)) else shutil.copy
        copy(os.path.join(ROOT, name), work / "src" / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "wheels", "."],
        cwd=work / "src",
        check=True,
    )
    [wheel] = os.listdir(work / "wheels")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True)
    with open(os.path.join(site.strip(), "dependencies.pth"), "w") as pth:
        pth.write(sysconfig.get_path("purelib") + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", work / "wheels" / wheel], check=True)
    return venv


def test_the_command_lists_every_setting_with_its_default(installed, tmp_path):
    for command in ([installed / "bin" / "ssehub", "--help"], [installed / "bin" / "python", "-m", "ssehub", "--help"]):
        shown = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert "REDIS_URL (default: unset)" in shown and "HISTORY_SIZE (default: 1000)" in shown
        for name in Config.__dataclass_fields__:
            assert f"  {name.upper()} (default: " in shown


def test_the_installed_command_serves_streams_and_the_frontend_from_the_package(installed, tmp_path):
    port = free_port()
    log = open(tmp_path / "ssehub.log", "w+")
    env = {"PATH": os.environ["PATH"], "HOST": "127.0.0.1", "PORT": str(port)}
    process = subprocess.Popen(
        [installed / "bin" / "ssehub"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    hub = HubClient()
    hub.port = port
    try:
        wait_for(lambda: "listening on" in open(log.name).read() or process.poll() is not None, timeout=20)
        assert process.poll() is None, open(log.name).read()
        for path in ("/loader.js", "/widget.js", "/", "/polyfills/event-source-polyfill/1.0.31/eventsource.js"):
            status, _ = hub.request_raw("GET", path)
            assert status == 200, path
        reader = StreamReader("127.0.0.1", port, "/events?channel=news")
        reader.read_until(lambda r: r.parser.last_event_id)
        sent = hub.publish("news", "from the wheel")
        assert [(m.data, m.last_event_id) for m in reader.take(1)] == [("from the wheel", sent)]
        reader.close()
    finally:
        process.kill()
        process.wait()
        log.close()


def test_every_package_the_hub_imports_is_declared():
    """pyproject's dependencies, with what they require in turn (this venv's metadata), cover
    every third-party module ssehub imports: the installed test borrows this venv's packages."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as project:
        pending = [Requirement(text) for text in tomllib.load(project)["project"]["dependencies"]]
    covered: set[str] = set()
    while pending:
        requirement = pending.pop()
        if canonicalize_name(requirement.name) in covered:
            continue
        covered.add(canonicalize_name(requirement.name))
        for text in metadata.requires(requirement.name) or []:
            needed = Requirement(text)
            extras = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(extra) for extra in extras):
                pending.append(needed)
    distributions = metadata.packages_distributions()
    for path in pathlib.Path(ROOT, "ssehub").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for module in {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"ssehub"}:
                if path.name == "gunicorn_conf.py" and module == "gunicorn":
                    continue  # the [gunicorn] extra
                owners = {canonicalize_name(owner) for owner in distributions.get(module, [module])}
                assert owners & covered, f"{path.name} imports {module}, which pyproject.toml does not declare"
