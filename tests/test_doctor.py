"""``python main.py doctor``: every check passes against a running bridge, and each broken
setting gives a failing check with its fix and a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import httpx
import pytest

from bridge.config import (
    SANDBOX_ACCOUNT_SID,
    SANDBOX_AUTH_TOKEN,
    SANDBOX_FLOW_SID,
    SANDBOX_WORKFLOW_SID,
    SANDBOX_WORKSPACE_SID,
    load_settings,
)
from bridge.doctor import (
    CHECK_NAMES,
    CheckResult,
    check_routing,
    exit_code,
    is_under,
    mask,
    render,
    run_checks,
)
from bridge.doctor.checks import check_settings
from bridge.routing import build_router
from bridge.sandbox.studio.state import flex_flow_definition
from tests.conftest import LiveServer, free_port, sandbox_env, twilio_client
from tests.fakes import FakeTwilio

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_SID = "AC" + "1234abcd" * 4
AUTH_TOKEN = "5e1f0c9a7b3d42e8a6c1f09d7e2b4a38"  # 32 hex digits, as Twilio issues
BRIDGE_SECRET = "Zr4nW8qL2xV6mT9pK3bJ7cH5dF1gS0yA"
API_KEY = "kQ7vXz3Lm9PwT2rB8nYd4Hs6"

Started = tuple[LiveServer, dict[str, str]]
Starter = Callable[..., Started]


@pytest.fixture
def start_bridge(tmp_path: Path) -> Iterator[Starter]:
    """Start a live bridge (sandbox mode); returns it with the environment it was given."""
    started: list[LiveServer] = []

    def start(**overrides: str) -> Started:
        env = sandbox_env(tmp_path, **overrides)
        server = LiveServer(load_settings(env)).start()
        started.append(server)
        return server, env

    yield start
    for server in started:
        server.stop()


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    assert [r.name for r in results] == list(CHECK_NAMES)
    return {r.name: r for r in results}


def statuses(results: list[CheckResult]) -> dict[str, str]:
    return {r.name: r.status for r in results}


# --- against a running bridge -----------------------------------------------------------


async def test_every_check_passes_against_a_running_sandbox(start_bridge: Starter) -> None:
    server, env = start_bridge()
    results = await run_checks(env)
    assert set(statuses(results).values()) == {"pass"}, render(results)
    assert exit_code(results) == 0
    checks = by_name(results)
    assert "sandbox" in checks["settings"].detail
    assert "AUTH_MODE=none" in checks["settings"].detail
    assert "hours: always open" in checks["settings"].detail
    assert "UNAVAILABLE_POLICY=take_message" in checks["settings"].detail
    assert str(server.settings.database_path) in checks["database"].detail
    report = render(results)
    assert "✓ settings" in report
    assert "All checks passed." in report
    assert "fix:" not in report
    # The write probe was rolled back and the probe webhook stored nothing.
    async with aiosqlite.connect(server.settings.database_path) as db:
        probes = await db.execute_fetchall("SELECT key FROM settings WHERE key LIKE 'doctor%'")
        conversations = await db.execute_fetchall("SELECT COUNT(*) FROM conversations")
    assert list(probes) == []
    assert next(iter(conversations))[0] == 0


async def test_every_check_passes_against_an_emulator_at_its_base_url(
    start_bridge: Starter,
) -> None:
    server, env = start_bridge()
    emulator_env = {
        **env,
        "SANDBOX": "0",
        "TWILIO_ACCOUNT_SID": SANDBOX_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": SANDBOX_AUTH_TOKEN,
        "TWILIO_FLOW_SID": SANDBOX_FLOW_SID,
        "TWILIO_API_BASE_URL": f"{server.url}/sandbox/twilio",
        "TWILIO_FLEX_API_BASE_URL": f"{server.url}/sandbox/flex",
        "TWILIO_TASKROUTER_API_BASE_URL": f"{server.url}/sandbox/taskrouter",
        "TWILIO_STUDIO_API_BASE_URL": f"{server.url}/sandbox/studio",
        "TWILIO_WORKSPACE_SID": SANDBOX_WORKSPACE_SID,
        "BRIDGE_SECRET": BRIDGE_SECRET,
        "ALLOW_INSECURE_NO_AUTH": "1",
    }
    results = await run_checks(emulator_env)
    assert set(statuses(results).values()) == {"pass"}, render(results)
    checks = by_name(results)
    assert "not Twilio" in checks["settings"].detail
    assert "Incoming Conversation → SendToFlex (Send to Flex)" in checks["routing"].detail
    assert "/twilio/taskrouter" in checks["taskrouter"].detail
    # Without the workspace named, the event callback cannot be looked at.
    results = await run_checks({**emulator_env, "TWILIO_WORKSPACE_SID": ""})
    assert by_name(results)["taskrouter"].status == "skip"
    # Routing through Interactions: the workspace, workflow and task channel are checked.
    interactions = {
        **emulator_env,
        "ROUTING": "interactions",
        "TWILIO_FLOW_SID": "",
        "TWILIO_WORKFLOW_SID": SANDBOX_WORKFLOW_SID,
    }
    results = await run_checks(interactions)
    assert set(statuses(results).values()) == {"pass"}, render(results)
    routing = by_name(results)["routing"].detail
    assert "workspace Flex Task Assignment" in routing
    assert "workflow Assign to Anyone" in routing
    assert "task channel chat" in routing
    for name, value, words in (
        ("TWILIO_WORKFLOW_SID", "WW" + "1" * 32, "is not a workflow"),
        ("TWILIO_TASK_CHANNEL", "webchat", "is not a task channel"),
        ("TWILIO_WORKSPACE_SID", "WS" + "1" * 32, "was refused"),
    ):
        results = await run_checks({**interactions, name: value})
        broken = by_name(results)["routing"]
        assert broken.status == "fail", render(results)
        assert words in broken.detail
        assert name in broken.fix


async def test_a_studio_flow_that_would_not_reach_flex_fails_with_its_fix(
    start_bridge: Starter,
) -> None:
    """The flow as Studio has it: unknown, a draft, or not sending conversations to Flex."""
    server, env = start_bridge()
    studio = twilio_client(server).studio.v2.flows
    good = flex_flow_definition(SANDBOX_WORKFLOW_SID, "chat")
    nowhere = json.loads(json.dumps(good))
    nowhere["states"][0]["transitions"][2].pop("next")  # Incoming Conversation → nothing
    draft = await asyncio.to_thread(
        studio.create, friendly_name="Draft", status="draft", definition=good
    )
    loose = await asyncio.to_thread(
        studio.create, friendly_name="Loose end", status="published", definition=nowhere
    )
    mine = await asyncio.to_thread(
        studio.create, friendly_name="Ours", status="published", definition=good
    )
    for flow_sid, words in (
        ("FW" + "1" * 32, "was refused by Studio (HTTP 404)"),
        (draft.sid, "'Draft' (FW"),
        (loose.sid, "does not lead to a Send to Flex widget"),
    ):
        results = await run_checks({**env, "TWILIO_FLOW_SID": flow_sid})
        broken = by_name(results)["routing"]
        assert broken.status == "fail", render(results)
        assert words in broken.detail
        assert "Studio > Flows" in broken.fix
    results = await run_checks({**env, "TWILIO_FLOW_SID": mine.sid})
    assert by_name(results)["routing"].status == "pass", render(results)
    assert "'Ours'" in by_name(results)["routing"].detail


async def test_an_event_callback_elsewhere_fails_with_its_fix(start_bridge: Starter) -> None:
    server, env = start_bridge()
    base = f"{server.url}/sandbox/taskrouter/v1/Workspaces/{SANDBOX_WORKSPACE_SID}"
    auth = (SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN)
    async with httpx.AsyncClient(auth=auth) as http:
        moved = await http.post(base, data={"EventCallbackUrl": ""})
        assert moved.status_code == 200, moved.text
        results = await run_checks(env)
        unset = by_name(results)["taskrouter"]
        assert unset.status == "fail"
        assert "not set" in unset.detail
        assert "/twilio/taskrouter" in unset.fix
        narrowed = await http.post(
            base,
            data={
                "EventCallbackUrl": server.settings.taskrouter_event_url,
                "EventsFilter": "task.created,task.completed",
            },
        )
        assert narrowed.status_code == 200, narrowed.text
        results = await run_checks(env)
    check = by_name(results)["taskrouter"]
    assert check.status == "fail"
    assert "reservation.accepted, task.wrapup, task.canceled" in check.detail
    assert exit_code(results) == 1


async def test_wrong_auth_token_is_rejected_with_its_fix(start_bridge: Starter) -> None:
    _, env = start_bridge(SANDBOX="1", TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    assert statuses(await run_checks(env))["twilio"] == "pass"
    results = await run_checks({**env, "TWILIO_AUTH_TOKEN": "a-wrong-token-9876543210"})
    checks = by_name(results)
    assert checks["twilio"].status == "fail"
    assert "401" in checks["twilio"].detail
    assert "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN rejected" in checks["twilio"].fix
    # The bridge checks webhook signatures with its own token: the doctor's is refused too.
    assert checks["webhook"].status == "fail"
    assert "403" in checks["webhook"].detail
    assert "TWILIO_AUTH_TOKEN" in checks["webhook"].fix
    assert exit_code(results) == 1
    report = render(results)
    assert "a-wrong-token" not in report
    assert AUTH_TOKEN not in report
    assert ACCOUNT_SID not in report
    assert mask(ACCOUNT_SID) in report


async def test_public_url_where_nothing_listens(start_bridge: Starter) -> None:
    server, env = start_bridge()
    results = await run_checks({**env, "PUBLIC_URL": f"http://127.0.0.1:{free_port()}"})
    checks = by_name(results)
    assert checks["public_url"].status == "fail"
    assert "unreachable" in checks["public_url"].detail
    # The bridge itself is up, so the fix says PUBLIC_URL does not lead to it.
    assert server.url in checks["public_url"].fix
    assert "PUBLIC_URL" in checks["public_url"].fix
    assert checks["manifest"].status == "skip"
    assert checks["webhook"].status == "skip"
    assert checks["twilio"].status == "pass"
    assert checks["database"].status == "pass"
    assert exit_code(results) == 1
    assert "\u2013 manifest" in render(results)


async def test_public_url_differing_from_the_running_bridge(start_bridge: Starter) -> None:
    server, env = start_bridge()
    other = f"http://localhost:{server.settings.port}"  # reaches the bridge, but is not its URL
    results = await run_checks({**env, "PUBLIC_URL": other})
    checks = by_name(results)
    assert checks["public_url"].status == "pass"
    assert checks["manifest"].status == "fail"
    assert server.url in checks["manifest"].detail
    assert "https" in checks["manifest"].fix
    assert "restart the bridge" in checks["manifest"].fix
    assert checks["webhook"].status == "fail"
    assert "403" in checks["webhook"].detail
    assert server.url in checks["webhook"].fix
    assert "PUBLIC_URL" in checks["webhook"].fix
    assert exit_code(results) == 1


async def test_database_under_a_regular_file(start_bridge: Starter, tmp_path: Path) -> None:
    _, env = start_bridge()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file")
    results = await run_checks({**env, "DATABASE_URL": f"sqlite:///{blocker}/bridge.db"})
    checks = by_name(results)
    assert checks["database"].status == "fail"
    assert str(blocker / "bridge.db") in checks["database"].detail
    assert "is a file, not a directory" in checks["database"].detail
    assert "DATABASE_URL" in checks["database"].fix
    assert "permission" in checks["database"].fix
    assert exit_code(results) == 1


async def test_database_where_nothing_can_be_written(start_bridge: Starter) -> None:
    """/proc takes no new files, for root either (file modes do not stop root)."""
    _, env = start_bridge()
    results = await run_checks({**env, "DATABASE_URL": "sqlite:////proc/flex-bridge/bridge.db"})
    checks = by_name(results)
    assert checks["database"].status == "fail"
    assert "/proc/flex-bridge/bridge.db" in checks["database"].detail
    assert "DATABASE_URL" in checks["database"].fix
    assert exit_code(results) == 1


# --- without a running bridge -----------------------------------------------------------


async def test_malformed_setting_fails_settings_and_skips_the_rest(tmp_path: Path) -> None:
    results = await run_checks(sandbox_env(tmp_path, TWILIO_FLOW_SID="FW1234"))
    checks = by_name(results)
    assert checks["settings"].status == "fail"
    assert "TWILIO_FLOW_SID" in checks["settings"].fix
    assert all(checks[name].status == "skip" for name in CHECK_NAMES[1:])
    assert exit_code(results) == 1
    assert not (tmp_path / "bridge.db").exists()


def test_settings_say_what_waiting_users_are_told() -> None:
    today = datetime.now(UTC).date()
    hours = f"UTC; Mon-Sun 00:00-24:00; closed {today}, {today + timedelta(days=1)}"
    env = {"BUSINESS_HOURS": hours, "ASSIGNMENT_TIMEOUT_SECONDS": "off"}
    detail = check_settings(load_settings(env)).detail
    assert f"hours: closed now, opens {today + timedelta(days=2)}T00:00:00Z" in detail
    assert "choice after never (off)" in detail
    assert "queue figures from WS00…0000" in detail  # the sandbox's workspace, masked


async def test_missing_setting_names_the_variable(tmp_path: Path) -> None:
    env = sandbox_env(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    results = await run_checks(env)  # real Twilio: no flow SID, no BRIDGE_SECRET
    settings = by_name(results)["settings"]
    assert settings.status == "fail"
    assert "TWILIO_FLOW_SID" in settings.fix


async def test_sandbox_needs_the_bridge_running(tmp_path: Path) -> None:
    results = await run_checks(sandbox_env(tmp_path))  # a free port: nothing listens there
    checks = by_name(results)
    assert checks["twilio"].status == "fail"
    assert "`make run`" in checks["twilio"].fix
    assert checks["public_url"].status == "fail"
    assert checks["database"].status == "pass"
    assert "created now" in checks["database"].detail
    assert exit_code(results) == 1


async def test_flow_placeholder_fails_against_real_twilio() -> None:
    settings = load_settings(
        {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FLOW_SID": SANDBOX_FLOW_SID,
            "BRIDGE_SECRET": BRIDGE_SECRET,
            "ALLOW_INSECURE_NO_AUTH": "1",
        }
    )
    result = await check_routing(build_router(settings, FakeTwilio()))
    assert result.status == "fail"
    assert "placeholder" in result.detail
    assert "Studio" in result.fix
    sandbox = load_settings({"TWILIO_FLOW_SID": "FW" + "ab" * 16})
    real = await check_routing(build_router(sandbox, FakeTwilio()))
    assert real.status == "pass"
    assert real.detail.startswith("flow 'Flex Bridge to Flex' (FWab…abab), published")


def test_masks_and_url_prefixes() -> None:
    assert mask("AC" + "12" * 15 + "cdef") == "AC12…cdef"
    assert mask("short") == "sh…"
    assert is_under("https://x.example/openapi.yaml", "https://x.example")
    assert is_under("https://x.example:443/legal", "https://x.example")
    assert is_under("https://x.example/bridge/legal", "https://x.example/bridge")
    assert not is_under("https://x.example/bridgeX/legal", "https://x.example/bridge")
    assert not is_under("http://x.example/legal", "https://x.example")
    assert not is_under("https://x.example:8443/legal", "https://x.example")
    assert not is_under("https://y.example/legal", "https://x.example")


# --- the command line -------------------------------------------------------------------


def run_cli(env: dict[str, str], encoding: str = "utf-8") -> subprocess.CompletedProcess[str]:
    """The doctor's command line in a fresh process with exactly ``env`` (no .env)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from bridge.doctor import main; sys.exit(main())"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHON_DOTENV_DISABLED": "1",
            "PYTHONIOENCODING": encoding,
            **env,
        },
        capture_output=True,
        text=True,
        encoding=encoding,
        timeout=60,
        check=False,
    )


def test_cli_passes_against_a_running_bridge(start_bridge: Starter) -> None:
    _, env = start_bridge()
    done = run_cli(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ webhook" in done.stdout
    assert "All checks passed." in done.stdout


def test_cli_fails_without_printing_secrets(start_bridge: Starter) -> None:
    secrets = {
        "SANDBOX": "1",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "BRIDGE_SECRET": BRIDGE_SECRET,
        "AUTH_MODE": "apikey",
        "API_KEYS": API_KEY,
    }
    _, env = start_bridge(**secrets)
    done = run_cli({**env, "TWILIO_AUTH_TOKEN": "a-wrong-token-9876543210"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✗ twilio" in done.stdout
    assert "fix: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN rejected" in done.stdout
    assert "AUTH_MODE=apikey (1 key)" in done.stdout
    for secret in (AUTH_TOKEN, "a-wrong-token", BRIDGE_SECRET, API_KEY, ACCOUNT_SID):
        assert secret not in done.stdout + done.stderr


def test_cli_bad_setting_with_an_ascii_terminal(tmp_path: Path) -> None:
    done = run_cli(sandbox_env(tmp_path, TWILIO_FLOW_SID="FW1234"), encoding="ascii")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.isascii()
    lines = done.stdout.splitlines()
    assert any(line.startswith("FAIL settings") for line in lines)
    assert any(line.strip().startswith("fix: TWILIO_FLOW_SID") for line in lines)
    assert any(line.startswith("skip database") for line in lines)
