"""Recordings, voicemail transcriptions, conference rooms and answering machines, on one URL.

Run it with `python examples/recordings_and_conferences.py` (port 8090) or
`uvicorn examples.recordings_and_conferences:app`, and give its URL to Twilio as the
`recordingStatusCallback`, `transcribeCallback`, the conference's `statusCallback` and the call's
`AsyncAmdStatusCallback`.
"""

from __future__ import annotations

from twilio_events import (
    AmdEvent,
    AnsweredBy,
    ConferenceEvent,
    RecordingEvent,
    TranscriptionEvent,
    TwilioEvents,
)

app = TwilioEvents(ordering="monotonic")  # a late in-progress never follows a completed recording


@app.recording.on_completed
def recording_ready(event: RecordingEvent) -> None:
    print(f"{event.recording_sid} ready: {event.recording_duration} s at {event.recording_url}", flush=True)


@app.recording.on_absent
@app.recording.on_failed
def no_recording(event: RecordingEvent) -> None:
    print(f"{event.recording_sid} {event.status}: error {event.error_code}", flush=True)


@app.transcription.on_completed
def voicemail(event: TranscriptionEvent) -> None:
    print(f"voicemail from {event.from_}: {event.transcription_text}", flush=True)


@app.conference.on("join")
@app.conference.on("leave")
def comings_and_goings(event: ConferenceEvent) -> None:
    print(f"{event.friendly_name}: {event.participant_label or event.call_sid} {event.status}", flush=True)


@app.conference.on_conference_end
def conference_over(event: ConferenceEvent) -> None:
    print(f"{event.friendly_name} ended: {event.reason_conference_ended}", flush=True)


@app.amd.on_any
def who_answered(event: AmdEvent) -> None:
    machine = isinstance(event.status, AnsweredBy) and event.status.is_machine
    who = "a machine" if machine else event.status
    print(f"{event.call_sid} answered by {who} ({event.machine_detection_duration} ms)", flush=True)


if __name__ == "__main__":
    app.run()
