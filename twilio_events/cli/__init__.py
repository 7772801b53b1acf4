"""The `twilio-events` command: one module per sub-command, plus the app loader and terminal output."""
