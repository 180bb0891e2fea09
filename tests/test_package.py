"""The installable command, as a newcomer gets it: a wheel built from this checkout,
installed in a clean virtual environment, run from a directory outside the checkout.
Every asset must come from the installed package.

Needs the package index (pip downloads the dependencies, from its cache when it can).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and the built wheel
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    # A copy without build leftovers, so the wheel holds only what the package declares.
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "node_modules", "*.egg-info", "build", "__pycache__", ".*_cache"
        ),
    )
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        work / "dist",
        source,
        cwd=work,
    )
    (wheel,) = (work / "dist").glob("flex_bridge-*.whl")
    _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    _run(work / "venv" / "bin" / "pip", "install", "-q", wheel, cwd=work)
    return work / "venv" / "bin"


def test_the_command_reports_its_version(installed: Path, tmp_path: Path) -> None:
    said = _run(installed / "flex-bridge", "--version", cwd=tmp_path)
    assert said.strip() == "flex-bridge 0.1.0"
    helped = _run(installed / "flex-bridge", "--help", cwd=tmp_path)
    for command in ("serve", "doctor", "sandbox"):
        assert command in helped


def test_the_installed_service_serves_every_asset_from_the_package(
    installed: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}",
        "PYTHON_DOTENV_DISABLED": "1",
        "REPLY_WAIT_SECONDS": "1",
    }
    service = subprocess.Popen(  # noqa: S603 - the installed command
        [str(installed / "flex-bridge"), "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the installed service did not start")
        for path, kind in [
            ("/openapi.yaml", "yaml"),
            ("/docs/static/swagger-ui-bundle.js", "javascript"),
            ("/docs", "text/html"),
            ("/.well-known/ai-plugin.json", "application/json"),
            ("/logo.png", "image/png"),
            ("/legal", "text/plain"),
            ("/sandbox/", "text/html"),
            ("/sandbox/console/static/console.js", "javascript"),
        ]:
            got = httpx.get(f"{base}{path}", timeout=5)
            assert got.status_code == 200, path
            assert kind in got.headers["content-type"], path
        sent = httpx.post(f"{base}/send/newcomer", json={"msg": "hello"}, timeout=30)
        assert sent.json()["status"] == "waiting"  # migrations ran from the package
    finally:
        service.terminate()
        output, _ = service.communicate(timeout=20)
    assert "Flex Bridge 0.1.0 listening" in output
    # The package it ran is the installed one, not this checkout's.
    where = _run(installed / "python", "-c", "import bridge; print(bridge.__file__)", cwd=tmp_path)
    assert where.strip().startswith(str(installed.parent)) and str(ROOT) not in where
