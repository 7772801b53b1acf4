"""Configuration read the same way everywhere: the auth token checked at start-up (not import), the
store and delivery from the environment, the mount point in the start-up line, and `app.client`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from twilio.base.exceptions import TwilioRestException

from twilio_events import CallEvent, ConfigurationError, TwilioEvents
from twilio_events.rest import explain
from twilio_events.stores.sqlite import SqliteStore
from twilio_events.testing import TEST_ACCOUNT_SID, TwilioTestClient, call_payload

from .conftest import TOKEN, LiveServer, Process, free_port
from .fake_rest_api import Scripted, fake_rest_api


def test_an_app_without_a_token_can_be_imported_and_refuses_to_start() -> None:
    app = TwilioEvents()  # at import time, as a user's module does: no error yet

    with pytest.raises(ConfigurationError) as raised:
        asyncio.run(app.startup())

    message = str(raised.value)
    assert "no Twilio auth token is configured" in message
    assert "TWILIO_AUTH_TOKEN" in message
    assert "auth_token=" in message
    assert "validate_signature=False" in message
    assert isinstance(raised.value, RuntimeError)


@pytest.mark.parametrize("token", ["", None])
def test_an_empty_token_is_no_token(token: str | None) -> None:
    with pytest.raises(ConfigurationError):
        TwilioEvents(auth_token=token, validate_signature=True).check_configuration()


def test_uvicorn_refuses_to_start_an_app_without_a_token(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    (tmp_path / "service.py").write_text("from twilio_events import TwilioEvents\n\napp = TwilioEvents()\n")

    process = spawn(["-m", "uvicorn", "service:app", "--port", str(free_port()), "--lifespan", "on"])

    assert process.wait() != 0
    assert "no Twilio auth token is configured" in process.stderr
    assert "Application startup failed" in process.stderr


def test_a_mounted_app_without_a_token_answers_500_and_runs_nothing(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    events = TwilioEvents()
    ran: list[CallEvent] = []
    events.call.on_ringing(ran.append)
    live = serve(Starlette(routes=[Mount("/twilio", app=events)]))

    response = live.callback(call_payload("ringing"), "/twilio/")

    assert response.status_code == 500
    assert response.text == "Internal Server Error: the service is not configured\n"
    assert ran == []
    assert "cannot start: Signature validation is on but no Twilio auth token" in caplog.text


@pytest.mark.parametrize("environment_token", [None, "a-token-from-the-environment"])
def test_the_test_client_signs_for_a_mounted_app_whatever_the_environment_holds(
    monkeypatch: pytest.MonkeyPatch, environment_token: str | None
) -> None:
    if environment_token:
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", environment_token)
    events = TwilioEvents()
    ran: list[str] = []
    events.call.on_completed(lambda event: ran.append(event.call_sid))
    parent = FastAPI(lifespan=events.lifespan)
    parent.mount("/twilio", events)
    payload = call_payload("completed")

    with TwilioTestClient(parent, auth_token="test-token") as client:
        response = client.callback(payload, path="/twilio/")

    assert response.status_code == 200, response.text
    assert ran == [payload["CallSid"]]


def test_the_test_client_finds_a_mounted_apps_own_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "some-other-token")
    events = TwilioEvents(auth_token="the-apps-own-token")
    parent = Starlette(routes=[Mount("/twilio", app=events)], lifespan=events.lifespan)

    with TwilioTestClient(parent) as client:
        response = client.callback(call_payload("ringing"), path="/twilio/")

    assert client.auth_token == "the-apps-own-token"
    assert response.status_code == 200, response.text


def test_the_start_up_line_shows_where_a_mounted_app_receives(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    events = TwilioEvents(auth_token=TOKEN)
    parent = FastAPI(lifespan=events.lifespan)
    parent.mount("/twilio", events)

    with TwilioTestClient(parent):
        pass

    assert "twilio_events ready at /twilio/ with" in caplog.text


def test_the_start_up_line_of_a_mounted_app_without_lifespan_shows_its_mount_point(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    events = TwilioEvents(auth_token=TOKEN)
    live = serve(Starlette(routes=[Mount("/hooks/twilio", app=events)]))

    assert live.callback(call_payload("ringing"), "/hooks/twilio/").status_code == 200
    assert "twilio_events ready at /hooks/twilio/ with" in caplog.text


def test_the_store_and_delivery_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_STORE", f"sqlite:///{tmp_path / 'events.db'}")
    monkeypatch.setenv("TWILIO_EVENTS_DELIVERY", "durable")

    app = TwilioEvents(auth_token=TOKEN)

    assert app.delivery == "durable"
    assert isinstance(app.store, SqliteStore)
    assert TwilioEvents(auth_token=TOKEN, delivery="inline").delivery == "inline"


def test_a_bad_delivery_or_store_in_the_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_DELIVERY", "sometimes")
    with pytest.raises(ConfigurationError, match="TWILIO_EVENTS_DELIVERY must be 'inline' or 'durable'"):
        TwilioEvents(auth_token=TOKEN)
    monkeypatch.delenv("TWILIO_EVENTS_DELIVERY")
    monkeypatch.setenv("TWILIO_EVENTS_STORE", "mysql://nowhere")
    with pytest.raises(ConfigurationError, match="unknown store URL"):
        TwilioEvents(auth_token=TOKEN)


@pytest.mark.parametrize("account_sid", ["AC123", "ac" + "0" * 32, "AC" + "g" * 32, "XX" + "0" * 32])
def test_an_account_sid_that_is_not_ac_and_32_hex_digits_is_refused(account_sid: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a Twilio account SID: it is AC followed by 32 hex"):
        TwilioEvents(auth_token=TOKEN, account_sid=account_sid)


def test_the_client_talks_to_the_configured_api_with_the_credentials() -> None:
    sid = "SM" + "a" * 32
    with fake_rest_api(TEST_ACCOUNT_SID, TOKEN) as api:
        api.add_message(sid, "delivered")
        app = TwilioEvents(auth_token=TOKEN, account_sid=TEST_ACCOUNT_SID, api_base_url=api.base_url)

        message = app.client.messages(sid).fetch()

    assert message.status == "delivered"
    assert api.fetches(sid) == 1


def test_the_clients_calls_time_out() -> None:
    with fake_rest_api(TEST_ACCOUNT_SID, TOKEN) as api:
        api.script.append(Scripted(delay=3.0))
        app = TwilioEvents(
            auth_token=TOKEN, account_sid=TEST_ACCOUNT_SID, api_base_url=api.base_url, rest_timeout=0.5
        )

        with pytest.raises(Exception, match=r"(?i)timed? ?out"):
            app.client.messages("SM" + "b" * 32).fetch()


def test_a_refusal_of_the_api_is_explained_in_one_line() -> None:
    with fake_rest_api(TEST_ACCOUNT_SID, "another-token") as api:
        app = TwilioEvents(auth_token=TOKEN, account_sid=TEST_ACCOUNT_SID, api_base_url=api.base_url)

        with pytest.raises(TwilioRestException) as raised:
            app.client.messages("SM" + "c" * 32).fetch()

    text = explain(raised.value)
    assert "\n" not in text
    assert text.startswith("Twilio refused the request (HTTP 401, error 20003): Authenticate")
    assert "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in text
    assert "https://www.twilio.com/docs/errors/20003" in text
