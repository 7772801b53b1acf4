# The two commands: `make run` starts the example service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "twilio_events needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make run`: the call-status example on port 8090 (listener "twilioListener"; TWILIO_EVENTS_PORT=... to
# change it), served by `twilio-events run`, which prints how to send it a test callback. Without
# TWILIO_AUTH_TOKEN it runs for local use only, with signature validation off (and says so). The live
# console is on, at http://127.0.0.1:8090/console/ (this machine only).
run: $(STAMP)
	@[ -n "$$TWILIO_AUTH_TOKEN" ] || \
		echo "TWILIO_AUTH_TOKEN is not set: starting with --no-validate-signature (set it to check signatures)."
	$(BIN)/twilio-events run examples/call_status.py --console $(if $(TWILIO_AUTH_TOKEN),,--no-validate-signature)

test: $(STAMP)
	$(BIN)/ruff check twilio_events tests examples bench
	$(BIN)/ruff format --check twilio_events tests examples bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check twilio_events tests examples bench
	$(BIN)/ruff format --check twilio_events tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# `make bench`: the benchmark (bench/run.py; BENCH_ARGS="--duration 10" etc. to change it). Installs the
# `bench` extra (Flask, gunicorn, Celery) and, as root, wrk with apt-get; without wrk a Python load generator is used.
.PHONY: bench
bench: $(STAMP)
	@$(BIN)/python -c 'import flask, gunicorn, celery' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[bench]'
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing wrk with apt-get"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -qq wrk >/dev/null 2>&1 || \
				{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } || \
				echo "could not install wrk: using the Python load generator instead"; \
		else \
			echo "wrk is not installed (apt-get install wrk, as root): using the Python load generator instead"; \
		fi; \
	}
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# `make demo`: start the call-status and message-status examples (on free ports, or PORT and PORT+1), send
# them a whole simulated call and message lifecycle signed like Twilio, print what their handlers did, and
# stop them. Uses TWILIO_AUTH_TOKEN when set, else a demo token on both sides.
.PHONY: demo
demo: $(STAMP)
	@free_port() { $(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }; \
	call_port=$${PORT:-$$(free_port)}; sms_port=$$( [ -n "$$PORT" ] && echo $$((PORT + 1)) || free_port); \
	export TWILIO_AUTH_TOKEN="$${TWILIO_AUTH_TOKEN:-demo-auth-token}"; \
	calls=$$(mktemp); messages=$$(mktemp); \
	$(BIN)/twilio-events run examples/call_status.py --host 127.0.0.1 --port $$call_port >$$calls 2>&1 & call_pid=$$!; \
	$(BIN)/twilio-events run examples/message_status.py --host 127.0.0.1 --port $$sms_port >$$messages 2>&1 & sms_pid=$$!; \
	trap 'kill $$call_pid $$sms_pid 2>/dev/null; rm -f $$calls $$messages' EXIT; \
	echo "== twilio-events simulate call --lifecycle =="; \
	$(BIN)/twilio-events simulate call --lifecycle --url http://127.0.0.1:$$call_port/ --wait 15 && \
	echo && echo "== twilio-events simulate sms --lifecycle ==" && \
	$(BIN)/twilio-events simulate sms --lifecycle --url http://127.0.0.1:$$sms_port/ --wait 15; \
	status=$$?; \
	kill $$call_pid $$sms_pid 2>/dev/null; wait $$call_pid $$sms_pid; \
	echo; echo "== what examples/call_status.py did =="; cat $$calls; \
	echo; echo "== what examples/message_status.py did =="; cat $$messages; \
	exit $$status
