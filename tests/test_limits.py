"""ServerLimits: from the app's arguments, else the environment, else the defaults; nonsense refused."""

from __future__ import annotations

import pytest

from twilio_events import ConfigurationError, TwilioEvents
from twilio_events.limits import ServerLimits

from .conftest import TOKEN

ENV = ("TWILIO_EVENTS_READ_TIMEOUT", "TWILIO_EVENTS_MAX_CONNECTIONS", "TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT")


@pytest.fixture(autouse=True)
def _no_limits_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_suit_twilio() -> None:
    limits = TwilioEvents(auth_token=TOKEN).limits

    assert limits == ServerLimits(read_timeout=10.0, max_connections=1000, keep_alive_timeout=5)
    assert limits.read_timeout < 15  # Twilio gives up on an answer after 15 s


def test_the_environment_sets_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_READ_TIMEOUT", "2.5")
    monkeypatch.setenv("TWILIO_EVENTS_MAX_CONNECTIONS", " 50 ")
    monkeypatch.setenv("TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT", "0")

    limits = TwilioEvents(auth_token=TOKEN).limits

    assert limits == ServerLimits(read_timeout=2.5, max_connections=50, keep_alive_timeout=0)


def test_the_app_s_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_READ_TIMEOUT", "2.5")
    monkeypatch.setenv("TWILIO_EVENTS_MAX_CONNECTIONS", "50")

    limits = TwilioEvents(auth_token=TOKEN, read_timeout=4, max_connections=7, keep_alive_timeout=9).limits

    assert limits == ServerLimits(read_timeout=4.0, max_connections=7, keep_alive_timeout=9)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TWILIO_EVENTS_READ_TIMEOUT", "soon", "TWILIO_EVENTS_READ_TIMEOUT='soon' is not a number"),
        ("TWILIO_EVENTS_READ_TIMEOUT", "0", "read_timeout (TWILIO_EVENTS_READ_TIMEOUT) must be"),
        ("TWILIO_EVENTS_READ_TIMEOUT", "inf", "read_timeout (TWILIO_EVENTS_READ_TIMEOUT) must be"),
        ("TWILIO_EVENTS_MAX_CONNECTIONS", "1.5", "TWILIO_EVENTS_MAX_CONNECTIONS='1.5' is not a number"),
        ("TWILIO_EVENTS_MAX_CONNECTIONS", "0", "max_connections (TWILIO_EVENTS_MAX_CONNECTIONS) must be"),
        ("TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT", "-1", "keep_alive_timeout (TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT)"),
    ],
)
def test_nonsense_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigurationError) as raised:
        TwilioEvents(auth_token=TOKEN)

    assert message in str(raised.value)
