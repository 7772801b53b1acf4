"""`simulate recording|transcription|conference|amd|recorded-call|ivr`: the voice callbacks besides a call's
status, built by the library's payload factories and scenarios."""

from __future__ import annotations

import argparse
from typing import Any

from ..events import AnsweredBy, RecordingStatus
from ..payloads import call_payload, gather_payload, incoming_call_payload, new_sid
from ..payloads_voice import amd_payload, recording_status_payload, transcription_payload
from ..scenarios import conference_with_two_participants, recorded_call
from .callbacks import Kind

_TEXT = "Please call me back."
_SHARED_BY_A_RECORDING = ("CallSid", "RecordingSid", "RecordingUrl", "RecordingStartTime")


def recording_lifecycle(outcome: str = "completed") -> list[dict[str, Any]]:
    """A recording's status callbacks: in-progress, then `outcome` (completed, absent or failed), one
    RecordingSid of one call."""
    started = recording_status_payload(RecordingStatus.IN_PROGRESS.value)
    shared = {name: started[name] for name in _SHARED_BY_A_RECORDING}
    return [started, recording_status_payload(outcome, **shared)]


def ivr_call(digits: str | None, speech: str | None) -> list[dict[str, Any]]:
    """An incoming call through an IVR: the webhook asking for TwiML, the `<Gather>` action with the
    caller's digits (or speech), then the call's completed status callback; one CallSid."""
    call_sid = new_sid("CA")
    return [
        incoming_call_payload("ringing", CallSid=call_sid),
        gather_payload(digits, speech, CallSid=call_sid),
        call_payload("completed", CallSid=call_sid, Direction="inbound"),
    ]


def _recording_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outcome",
        choices=[RecordingStatus.COMPLETED.value, RecordingStatus.ABSENT.value, RecordingStatus.FAILED.value],
        default=RecordingStatus.COMPLETED.value,
        help="how the recording ends, after in-progress (default completed)",
    )


def _text_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text", default=_TEXT, help=f"what the transcription says (default {_TEXT!r})")


def _transcription_arguments(parser: argparse.ArgumentParser) -> None:
    _text_argument(parser)
    parser.add_argument(
        "--status",
        choices=["completed", "failed"],
        default="completed",
        help="the TranscriptionStatus (default completed; a failed one carries no text)",
    )


def _conference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default="support-room", help="the conference's FriendlyName (default support-room)"
    )


def _amd_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--answered-by",
        choices=[value.value for value in AnsweredBy],
        default=AnsweredBy.HUMAN.value,
        help="what answered the call (default human)",
    )


def _ivr_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--digits", default="1", help="the keys the caller presses (default 1)")
    which.add_argument("--speech", metavar="TEXT", help="what the caller says instead (SpeechResult)")


_DELIVERY = frozenset({"param", "repeat", "shuffle"})

VOICE_KINDS = (
    Kind(
        "recording",
        "a recording's status callbacks (recordingStatusCallback)",
        "Send a recording's status callbacks: in-progress, then completed (or --outcome).",
        """\
examples:
  twilio-events simulate recording
  twilio-events simulate recording --outcome absent --duplicate
""",
        lambda args: recording_lifecycle(args.outcome),
        _recording_arguments,
        _DELIVERY,
    ),
    Kind(
        "transcription",
        "a transcription (transcribeCallback)",
        'Send a transcription, as Twilio does for <Record transcribe="true" transcribeCallback="...">.',
        """\
examples:
  twilio-events simulate transcription --text "Call me back at five"
  twilio-events simulate transcription --status failed
""",
        lambda args: [transcription_payload(args.text, args.status)],
        _transcription_arguments,
        frozenset({"param", "parties", "repeat"}),
    ),
    Kind(
        "conference",
        "a conference with two participants (statusCallback of <Conference>)",
        "Send a conference's status callbacks: two participants join, the conference starts, the second is "
        "muted, unmuted and leaves, the first leaves and the conference ends (SequenceNumber 1-8).",
        """\
examples:
  twilio-events simulate conference
  twilio-events simulate conference --out-of-order --duplicate --seed 4
""",
        lambda args: list(conference_with_two_participants(friendly_name=args.name)),
        _conference_arguments,
        _DELIVERY,
    ),
    Kind(
        "amd",
        "an answering machine detection result (asyncAmdStatusCallback)",
        "Send an asynchronous answering machine detection result (AnsweredBy).",
        """\
examples:
  twilio-events simulate amd
  twilio-events simulate amd --answered-by machine_end_beep
""",
        lambda args: [amd_payload(args.answered_by)],
        _amd_arguments,
        frozenset({"param", "repeat"}),
    ),
    Kind(
        "recorded-call",
        "a call recorded and transcribed",
        "Send a recorded call: its status callbacks (initiated to completed), its recording's (in-progress, "
        "completed) and its transcription, sharing one CallSid, in Twilio's order.",
        """\
examples:
  twilio-events simulate recorded-call
  twilio-events simulate recorded-call --text "Call me back" --out-of-order --duplicate
""",
        lambda args: list(recorded_call(text=args.text)),
        _text_argument,
        frozenset({"param", "parties", "repeat", "shuffle"}),
    ),
    Kind(
        "ivr",
        "an IVR call: incoming webhook, <Gather> action, completed",
        "Send an incoming call through an IVR: the voice webhook (the service answers its TwiML), the "
        "<Gather> action with the caller's --digits, then the call's completed status callback; prints the "
        "TwiML each webhook was answered with.",
        """\
examples:
  twilio-events simulate ivr
  twilio-events simulate ivr --digits 2 --from +14155550123
  twilio-events simulate ivr --speech "sales please"
""",
        lambda args: ivr_call(None if args.speech else args.digits, args.speech),
        _ivr_arguments,
        frozenset({"param", "parties"}),
    ),
)
"""The kinds of voice callback besides a call's status: each Twilio setting that takes the URL, and the
stories that combine them."""
