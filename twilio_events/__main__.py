"""`python -m twilio_events`: the `twilio-events` command."""

from .cli.main import main

raise SystemExit(main())
