"""`python -m twilio_events`: the `twilio-events` command."""

from .cli import main

raise SystemExit(main())
