"""``serve()`` as people run it: a process that prints a complete .env and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

import broadcaster
from broadcaster.sandbox import (
    BORGHOLM_PAGE_ID,
    CREDENTIAL_ENV_NAMES,
    EXERCISE_ENV_NAMES,
    MORBYLANGA_PAGE_ID,
    TEAMS_CHANNEL_IDS,
    TELEGRAM_CHAT,
    URL_ENV_NAMES,
)

LAST_LINE = "# Records, faults and state:"


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: list[str]

    @property
    def env(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.lines if not line.startswith("#"))


def start(*args: str, specs_dir: Path | None) -> Served:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BROADCASTER_SPECS_DIR", None)
    if specs_dir is not None:
        env["BROADCASTER_SPECS_DIR"] = str(specs_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcaster.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(LAST_LINE):
            break
    else:
        process.wait(5)
        raise AssertionError(f"no .env printed: {process.stderr.read() if process.stderr else ''}")
    return Served(process, lines)


def stop(served: Served, sig: int) -> tuple[int, str, str]:
    served.process.send_signal(sig)
    out, err = served.process.communicate(timeout=15)
    return served.process.returncode, out, err


@pytest.fixture
def served(specs_dir: Path | None, tmp_path: Path) -> Iterator[Served]:
    running = start("--env-file", str(tmp_path / ".env"), specs_dir=specs_dir)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.communicate(timeout=15)


def test_stdout_is_a_complete_env(served: Served, tmp_path: Path) -> None:
    for line in served.lines:
        assert line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=\S+", line), line
    assert list(served.env) == [*URL_ENV_NAMES, *CREDENTIAL_ENV_NAMES, *EXERCISE_ENV_NAMES]
    port = re.search(r"127\.0\.0\.1:(\d+)", served.env["BROADCASTER_TWILIO_API_URL"]).group(1)
    for name in URL_ENV_NAMES:
        assert served.env[name].startswith(f"http://127.0.0.1:{port}/"), name
    for name in ("TEAMS_MORBYLANGA_WORKFLOW_URL", "MORBYLANGA_CMS_WEBHOOK_URL"):
        assert served.env[name].startswith(f"http://127.0.0.1:{port}/"), name
    written = dotenv_values(tmp_path / ".env")
    assert written == served.env
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_the_printed_urls_and_credentials_work(served: Served) -> None:
    env = served.env
    me = httpx.get(f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}/getMe")
    assert me.json()["ok"] is True
    sid, token = env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]
    listed = httpx.get(
        f"{env['BROADCASTER_TWILIO_API_URL']}/2010-04-01/Accounts/{sid}/Messages.json",
        auth=(sid, token),
    )
    assert listed.json()["messages"] == []
    page = httpx.get(
        f"{env['BROADCASTER_FACEBOOK_API_URL']}v23.0/me",
        params={"access_token": env["FB_BORGHOLM_PAGE_TOKEN"]},
    )
    assert page.json()["error"]["message"].startswith("API calls from the server require")
    tenant = env["TEAMS_TENANT_ID"]
    discovery = httpx.get(
        f"{env['BROADCASTER_TEAMS_LOGIN_URL']}/{tenant}/v2.0/.well-known/openid-configuration"
    )
    assert discovery.json()["token_endpoint"].endswith(f"/{tenant}/oauth2/v2.0/token")
    token = httpx.post(
        f"{env['BROADCASTER_TEAMS_LOGIN_URL']}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["TEAMS_APP_ID"],
            "client_secret": env["TEAMS_APP_PASSWORD"],
            "scope": "https://api.botframework.com/.default",
        },
    ).json()["access_token"]
    activity = httpx.post(
        f"{env['BROADCASTER_TEAMS_SERVICE_URL']}v3/conversations/{TEAMS_CHANNEL_IDS[1]}/activities",
        json={"type": "message", "text": "Övning"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert activity.status_code == 201
    assert (
        httpx.get(env["BROADCASTER_TEAMS_OPENID_URL"]).json()["issuer"]
        == "https://api.botframework.com"
    )
    card = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": "1.5", "body": []},
            }
        ],
    }
    assert httpx.post(env["TEAMS_MORBYLANGA_WORKFLOW_URL"], json=card).status_code == 202


def test_sigint_stops_cleanly(served: Served) -> None:
    code, out, err = stop(served, signal.SIGINT)
    assert code == 0, err
    assert all(line.startswith("#") for line in out.splitlines())
    assert "Traceback" not in err


def test_sigterm_stops_cleanly(served: Served) -> None:
    code, _, err = stop(served, signal.SIGTERM)
    assert code == 0, err


def test_secrets_are_masked_in_the_request_log(served: Served) -> None:
    env = served.env
    httpx.get(f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}/getMe")
    _, _, err = stop(served, signal.SIGINT)
    assert "telegram GET" in err
    assert env["TELEGRAM_BOT_TOKEN"] not in err
    assert env["TWILIO_AUTH_TOKEN"] not in err


def test_credentials_are_random_per_run(served: Served, specs_dir: Path | None) -> None:
    other = start(specs_dir=specs_dir)
    try:
        assert other.env["TWILIO_AUTH_TOKEN"] != served.env["TWILIO_AUTH_TOKEN"]
        assert other.env["BROADCASTER_TWILIO_API_URL"] != served.env["BROADCASTER_TWILIO_API_URL"]
    finally:
        stop(other, signal.SIGINT)


def test_busy_port_is_a_clear_error(served: Served) -> None:
    port = re.search(r":(\d+)/", served.env["BROADCASTER_TWILIO_API_URL"]).group(1)
    result = subprocess.run(
        [sys.executable, "-m", "broadcaster.sandbox", "--port", port],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stdout == ""


def reference_config() -> dict | None:
    """The reference configuration: BROADCASTER_SHARED_DIR, ../shared or /work/shared."""
    candidates = [
        Path(os.environ.get("BROADCASTER_SHARED_DIR") or "/nonexistent"),
        Path(broadcaster.__file__).resolve().parents[1].parent / "shared",
        Path("/work/shared"),
    ]
    for shared in candidates:
        path = shared / "examples" / "broadcaster.toml"
        if path.is_file():
            return tomllib.loads(path.read_text(encoding="utf-8"))
    return None


def test_names_and_ids_match_the_reference_configuration() -> None:
    config = reference_config()
    if config is None:
        pytest.skip("examples/broadcaster.toml (beside DESIGN.md) is not available")

    def env_names(node: object) -> set[str]:
        if isinstance(node, dict):
            return set().union(*(env_names(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(env_names(v) for v in node))
        return {node[4:]} if isinstance(node, str) and node.startswith("env:") else set()

    assert env_names(config) == set(CREDENTIAL_ENV_NAMES)
    targets = {t["id"]: t for t in config["targets"]}
    assert {targets["fb-borgholm"]["page_id"], targets["fb-morbylanga"]["page_id"]} == {
        BORGHOLM_PAGE_ID,
        MORBYLANGA_PAGE_ID,
    }
    channels = {t["channel_id"] for t in config["targets"] if "channel_id" in t}
    assert channels | {config["approval"]["teams_channel_id"]} == set(TEAMS_CHANNEL_IDS)
    assert targets["telegram-oland"]["chat_id"] == TELEGRAM_CHAT
