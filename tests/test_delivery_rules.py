"""The delivery rules as plain functions: lifecycle positions, back-off."""

from __future__ import annotations

import itertools

import pytest

from twilio_events import CallStatus, SmsStatus
from twilio_events.delivery.ordering import is_regression, status_mark
from twilio_events.delivery.retry import RetryPolicy
from twilio_events.events import Params


def params_of(payload: dict[str, str]) -> Params:
    return Params(list(payload.items()))


CALL_LIFECYCLE = [CallStatus.QUEUED, CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS]
SMS_LIFECYCLE = [SmsStatus.QUEUED, SmsStatus.SENDING, SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.READ]


@pytest.mark.parametrize(("channel", "lifecycle"), [("call", CALL_LIFECYCLE), ("sms", SMS_LIFECYCLE)])
def test_each_step_of_a_lifecycle_advances_and_going_back_regresses(
    channel: str, lifecycle: list[str]
) -> None:
    marks = [status_mark(channel, status, None) for status in lifecycle]
    for earlier, later in itertools.pairwise(marks):
        assert not is_regression(earlier, later)
        assert is_regression(later, earlier)
        assert is_regression(later, later)  # the same status again is not new


@pytest.mark.parametrize("final", ["completed", "busy", "failed", "no-answer", "canceled"])
def test_nothing_follows_a_final_call_status(final: str) -> None:
    done = status_mark("call", final, 3)
    for status in [*CALL_LIFECYCLE, CallStatus.COMPLETED]:
        assert is_regression(done, status_mark("call", status, 9))
    assert not is_regression(status_mark("call", "in-progress", 2), done)


def test_sequence_number_breaks_ties_between_call_statuses_of_one_rank() -> None:
    first = status_mark("call", "completed", 4)
    assert first is not None and first.final
    assert is_regression(status_mark("call", "ringing", 2), status_mark("call", "ringing", 1))
    assert not is_regression(status_mark("call", "ringing", 1), status_mark("call", "ringing", 2))


def test_delivered_before_sent_is_a_regression_and_failure_after_delivery_is_not() -> None:
    delivered = status_mark("sms", "delivered", None)
    assert is_regression(delivered, status_mark("sms", "sent", None))
    assert not is_regression(delivered, status_mark("sms", "undelivered", None))
    assert is_regression(status_mark("sms", "failed", None), status_mark("sms", "delivered", None))


def test_unknown_statuses_are_never_called_regressions() -> None:
    assert status_mark("call", "teleported", 1) is None
    assert not is_regression(status_mark("call", "completed", 1), None)
    assert not is_regression(None, status_mark("call", "ringing", 1))


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=8.0)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (7, 8.0)]:
        delays = {policy.delay(attempts) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered, so retries of many events do not arrive together


@pytest.mark.parametrize(
    ("channel", "first", "finals"),
    [
        ("recording", "in-progress", ["completed", "absent", "failed"]),
        ("transcription", "in-progress", ["completed", "failed"]),
    ],
)
def test_a_recording_or_transcription_is_in_progress_then_final(
    channel: str, first: str, finals: list[str]
) -> None:
    started = status_mark(channel, first, None)
    for final in finals:
        done = status_mark(channel, final, None)
        assert done is not None and done.final
        assert not is_regression(started, done)
        assert is_regression(done, started)
        for other in finals:
            assert is_regression(done, status_mark(channel, other, None))


def test_conference_callbacks_follow_their_sequence_number_whatever_the_event() -> None:
    join = status_mark("conference", "participant-join", 3)
    assert join is not None and not join.final
    assert not is_regression(join, status_mark("conference", "conference-start", 4))
    assert is_regression(join, status_mark("conference", "participant-mute", 2))
    assert is_regression(join, status_mark("conference", "participant-join", 3))
    end = status_mark("conference", "conference-end", 9)
    assert not is_regression(end, status_mark("conference", "participant-leave", 10))  # numbered later


def test_answering_machine_detection_has_no_lifecycle() -> None:
    assert status_mark("amd", "human", None) is None
    assert status_mark("amd", "machine_start", None) is None
