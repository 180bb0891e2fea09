"""The emulator and the bridge as child processes on free loopback ports, and what the
benchmark reads about them from /proc (peak RSS, CPU time, open connections)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The checkout whose bridge and emulator run (``--source``); this repository by default.
SOURCE = ROOT
#: The emulator's documented local credentials (see README, "The sandbox").
ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "sandbox-auth-token"  # noqa: S105 - a documented, local-only value
FLOW_SID = "FW" + "0" * 32
#: The emulator's Flex workspace (the bridge reads queue figures only when told it).
WORKSPACE_SID = "WS" + "0" * 32
BRIDGE_SECRET = "bench-secret-" + "b" * 40
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; return the new limit. Call it before
    starting any child: they inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_ticks() -> dict[str, int]:
    """System-wide CPU time so far (/proc/stat, in clock ticks): all, busy (not idle or
    waiting on I/O), and stolen by the host."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    total = sum(fields[:8])
    return {
        "total": total,
        "busy": total - fields[3] - fields[4],
        "steal": fields[7] if len(fields) > 7 else 0,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One child process serving HTTP on 127.0.0.1:``port``."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    health_path: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self, timeout: float = 30.0) -> Service:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                self.args,
                env=self.env,
                cwd=SOURCE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=1):  # noqa: S310
                    return self
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not come up:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    # --- /proc ----------------------------------------------------------------------------

    def peak_rss_mb(self) -> float:
        """VmHWM: the peak resident set size of the process so far, in MiB."""
        return _status_kb(self.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def nofile_limit(self) -> int:
        """The soft RLIMIT_NOFILE the process runs with (inherited from the driver)."""
        with open(f"/proc/{self.pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        raise LookupError("Max open files")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise LookupError(key)


def connections_from_self(port: int) -> int:
    """This process's TCP connections in ESTABLISHED state to 127.0.0.1:``port``."""
    inodes: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    wanted = f"0100007F:{port:04X}"
    count = 0
    with open("/proc/net/tcp") as lines:
        next(lines)
        for line in lines:
            parts = line.split()
            if parts[2] == wanted and parts[3] == "01" and parts[9] in inodes:
                count += 1
    return count


def emulator(workdir: Path) -> Service:
    port = free_port()
    env = {
        **_clean_env(),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    return Service(
        "emulator",
        [sys.executable, "-m", "bridge.sandbox", "--host", "127.0.0.1", "--port", str(port)],
        env,
        port,
        "/sandbox/control/faults",
        workdir / "emulator.log",
    )


def bridge(
    workdir: Path, emulator_url: str, settings: Mapping[str, str], port: int | None = None
) -> Service:
    """``main.py serve`` in real mode, pointed at the emulator process as at Twilio, with
    ``settings`` over the defaults."""
    port = port or free_port()
    env = {
        **_clean_env(),
        "SANDBOX": "0",
        "ALLOW_INSECURE_NO_AUTH": "1",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FLOW_SID": FLOW_SID,
        "TWILIO_API_BASE_URL": f"{emulator_url}/sandbox/twilio",
        "TWILIO_TASKROUTER_API_BASE_URL": f"{emulator_url}/sandbox/taskrouter",
        "TWILIO_FLEX_API_BASE_URL": f"{emulator_url}/sandbox/flex",
        "TWILIO_STUDIO_API_BASE_URL": f"{emulator_url}/sandbox/studio",
        "BRIDGE_SECRET": BRIDGE_SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite:///{workdir / 'bridge.db'}",
        "AUTH_MODE": "none",
        # The benchmarks open thousands of conversations in seconds, on purpose.
        "NEW_CONVERSATIONS_PER_MINUTE": "1000000",
    }
    env.update(settings)
    return Service(
        "bridge",
        [sys.executable, "main.py", "serve"],
        env,
        port,
        "/healthz",
        workdir / "bridge.log",
    )


def _clean_env() -> dict[str, str]:
    """The driver's environment reduced to what a Python process needs, so no setting of
    the bridge or the emulator leaks in from the caller's shell."""
    keep = ("PATH", "HOME", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("LC_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHON_DOTENV_DISABLED"] = "1"  # a developer's .env must not change the setup
    return env
