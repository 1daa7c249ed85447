"""The sandbox's Python API and control API: instances, records, state, structural fallbacks."""

from __future__ import annotations

import socket

import httpx
import pytest

from broadcaster.sandbox import (
    CREDENTIAL_ENV_NAMES,
    EXERCISE_ENV_NAMES,
    TELEGRAM_CHAT,
    URL_ENV_NAMES,
    Sandbox,
)
from broadcaster.sandbox.specs import Specs
from broadcaster.sandbox.telegram_fields import FALLBACK_METHODS

from .conftest import CARD


def send(sb: Sandbox, text: str) -> httpx.Response:
    env = sb.env()
    url = f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}/sendMessage"
    return httpx.post(url, data={"chat_id": TELEGRAM_CHAT, "text": text})


def test_exported_names_exist() -> None:
    import broadcaster.sandbox as package

    assert all(hasattr(package, name) for name in package.__all__)


def test_env_has_the_urls_credentials_and_exercise_settings(sandbox) -> None:
    env = sandbox.env()
    assert list(env) == [*URL_ENV_NAMES, *CREDENTIAL_ENV_NAMES, *EXERCISE_ENV_NAMES]
    assert len(URL_ENV_NAMES) == 6
    assert len(CREDENTIAL_ENV_NAMES) == 11
    assert env["BROADCASTER_EXERCISE"] == "1"
    assert env["BROADCASTER_SANDBOX_URL"] == sandbox.base_url
    assert env["MORBYLANGA_CMS_WEBHOOK_URL"].startswith(sandbox.base_url + "/cms/")
    assert httpx.get(f"{sandbox.base_url}/_sandbox/env").json() == env


def test_two_sandboxes_share_nothing(specs_dir) -> None:
    with Sandbox(specs_dir=specs_dir) as one, Sandbox(specs_dir=specs_dir) as two:
        assert one.base_url != two.base_url
        assert one.env()["TELEGRAM_BOT_TOKEN"] != two.env()["TELEGRAM_BOT_TOKEN"]
        assert send(one, "Bara här").status_code == 200
        assert len(one.telegram.messages()) == 1
        assert two.telegram.messages() == []
        assert two.records.find() == []
        one.faults.down("*", 10)
        assert send(two, "Här också").status_code == 200
        # The other sandbox's token means nothing here.
        env = two.env()
        wrong = httpx.post(
            f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{one.env()['TELEGRAM_BOT_TOKEN']}/getMe"
        )
        assert wrong.status_code == 401


def test_seed_makes_credentials_reproducible(specs_dir) -> None:
    first, second = Sandbox(specs_dir=specs_dir, seed=7), Sandbox(specs_dir=specs_dir, seed=7)
    assert first.credentials == second.credentials
    assert Sandbox(specs_dir=specs_dir, seed=8).credentials != first.credentials


def test_stop_releases_the_port(specs_dir) -> None:
    sb = Sandbox(specs_dir=specs_dir).start()
    port = int(sb.base_url.rsplit(":", 1)[1])
    sb.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_records_over_http_with_filters(sandbox) -> None:
    send(sandbox, "Ett")
    httpx.get(f"{sandbox.base_url}/graph/v23.0/me")
    everything = httpx.get(f"{sandbox.base_url}/_sandbox/records").json()["records"]
    assert [r["platform"] for r in everything] == ["telegram", "facebook"]
    telegram = httpx.get(
        f"{sandbox.base_url}/_sandbox/records",
        params={"platform": "telegram", "target": TELEGRAM_CHAT},
    ).json()["records"]
    assert len(telegram) == 1
    assert telegram[0]["form"]["text"] == ["Ett"]
    assert telegram[0]["response"]["result"]["message_id"] == 1
    assert httpx.delete(f"{sandbox.base_url}/_sandbox/records").status_code == 200
    assert sandbox.records.find() == []


def test_state_and_reset_over_http(sandbox) -> None:
    send(sandbox, "Ett")
    state = httpx.get(f"{sandbox.base_url}/_sandbox/state").json()
    assert [m["text"] for m in state["telegram"]] == ["Ett"]
    assert httpx.post(f"{sandbox.base_url}/_sandbox/reset").json() == {"ok": True}
    assert sandbox.telegram.messages() == []
    assert send(sandbox, "Två").json()["result"]["message_id"] == 1


def test_settings_over_http(sandbox) -> None:
    control = f"{sandbox.base_url}/_sandbox"
    assert (
        httpx.post(f"{control}/telegram/remove-bot", json={"chat": TELEGRAM_CHAT}).status_code
        == 200
    )
    assert send(sandbox, "x").status_code == 403
    assert (
        httpx.post(f"{control}/twilio/opt-out", json={"number": "+46701234567"}).status_code == 200
    )
    assert "+46701234567" in sandbox.twilio.opted_out
    assert httpx.post(f"{control}/nothing/here", json={}).status_code == 404
    assert httpx.post(f"{control}/twilio/opt-out", json={}).status_code == 400


def test_wait_for_records(sandbox) -> None:
    send(sandbox, "x")
    [record] = sandbox.records.wait_for(lambda r: r.platform == "telegram", timeout=1)
    assert record.field("text") == "x"
    with pytest.raises(TimeoutError):
        sandbox.records.wait_for(lambda r: r.platform == "cms", timeout=0.05)


def test_structural_card_check_without_specs() -> None:
    specs = Specs(None)
    assert not specs.full
    assert specs.card_problems(CARD) == []
    assert specs.card_problems({**CARD, "version": None})
    assert specs.card_problems({**CARD, "body": [{"text": "no type"}]})
    assert specs.card_problems({"type": "Message"})
    assert specs.telegram_methods is FALLBACK_METHODS
    assert specs.twilio_create_message is None
    assert specs.connector_problems("Activity", {"type": "message"}) == []


def test_fallback_telegram_fields_match_api_json(full_specs) -> None:
    full = Specs(full_specs).telegram_methods
    for name, method in FALLBACK_METHODS.items():
        assert method == {
            "name": full[name]["name"],
            "fields": [
                {k: f[k] for k in ("name", "types", "required")}
                for f in full[name].get("fields", [])
            ],
        }


def test_env_needs_a_started_sandbox(specs_dir) -> None:
    sb = Sandbox(specs_dir=specs_dir)
    with pytest.raises(RuntimeError, match="start the sandbox first"):
        sb.env()
    with sb:
        assert sb.env()["BROADCASTER_TWILIO_API_URL"].startswith(sb.base_url)
        with pytest.raises(RuntimeError, match="already running"):
            sb.start()
