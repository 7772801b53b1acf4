"""A phone menu: answer incoming calls, act on the key pressed, take a voicemail, and log how each call ended.

Set your number's "A CALL COMES IN" webhook and its "CALL STATUS CHANGES" URL to this service (one URL
serves both: a status callback carries CallbackSource, the webhook that asks for TwiML does not).
Run it with `python examples/ivr.py` (port 8090) or `uvicorn examples.ivr:app`.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from twilio_events import CallEvent, TwilioEvents

app = TwilioEvents()

MENU = "Press 1 for opening hours, 2 to leave a message."


@app.call.on_incoming
def answer(event: CallEvent) -> VoiceResponse:
    print(f"{event.call_sid}: {event.from_} is calling")
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=5)
    gather.say(MENU)
    response.append(gather)
    response.redirect("/")  # no key pressed: Twilio asks again and the menu is read again
    return response


@app.call.on_gather
def choose(event: CallEvent) -> VoiceResponse:
    print(f"{event.call_sid}: pressed {event.digits}")
    response = VoiceResponse()
    if event.digits == "1":
        response.say("We are open from nine to five, Monday to Friday. Goodbye.")
        response.hangup()
    elif event.digits == "2":
        response.say("Leave your message after the beep, then hang up or press the hash key.")
        response.record(max_length=60, finish_on_key="#")
    else:
        gather = Gather(num_digits=1, timeout=5)
        gather.say(f"Sorry, {event.digits} is not an option. {MENU}")
        response.append(gather)
    return response


@app.call.on_record_action
def voicemail(event: CallEvent) -> VoiceResponse:
    print(f"{event.call_sid}: voicemail of {event.recording_duration} s at {event.recording_url}")
    response = VoiceResponse()
    response.say("Thank you. Goodbye.")
    response.hangup()
    return response


@app.call.on_completed
def ended(event: CallEvent) -> None:
    print(f"{event.call_sid}: ended after {event.call_duration} s")


if __name__ == "__main__":
    app.run()
