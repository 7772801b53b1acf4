"""`twilio-events run`: a real server in a subprocess on 127.0.0.1, reached by `twilio-events simulate`."""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from twilio_events.testing import sign

from .conftest import DEADLINE, TOKEN, Process, assert_one_line_error, free_port, wait_for

SCRIPT = Path(sys.executable).with_name("twilio-events")

APP = """
from twilio_events import TwilioEvents

app = TwilioEvents()


@app.call.on_ringing
def ringing(event):
    print("handled ringing", event.call_sid, flush=True)


@app.sms.on_any
async def message(event):
    print("handled message", event.status, event.message_sid, flush=True)
"""

Spawn = Callable[..., Process]


def sid(prefix: str, digit: str) -> str:
    return prefix + digit * 32


def cli(*args: str, token: str | None = TOKEN, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script with a clean Twilio environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    if token is not None:
        env["TWILIO_AUTH_TOKEN"] = token
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=DEADLINE * 2
    )


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start(spawn: Spawn, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Process:
    """`python -m twilio_events run ARGS` in tmp_path, with the test app in app.py."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    base = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_VALIDATE_SIGNATURE": ""}
    return spawn(["-m", "twilio_events", "run", *args], base | (env or {}))


def wait_serving(process: Process, *ports: int) -> None:
    def up() -> bool:
        if process.popen.poll() is not None:
            pytest.fail(f"`twilio-events run` exited ({process.popen.returncode}):\n{process.stderr}")
        return all(accepting(port) for port in ports)

    wait_for(up, f"ports {ports}")


def stdout_of(process: Process) -> str:
    return process.stdout_path.read_text(encoding="utf-8")


def listener_rows(output: str, *names: str) -> dict[str, list[str]]:
    """The start-up summary's row of each listener: name -> [local URL, URL for Twilio...]."""
    rows = [
        line.split() for line in output.split("CHANNEL", 1)[0].split("EVENT STREAMS SINK", 1)[0].splitlines()
    ]
    return {row[0]: row[1:] for row in rows if row and row[0] in names}


def test_run_serves_two_ports_and_says_where(spawn: Spawn, tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    process = start(
        spawn,
        tmp_path,
        "app.py",
        "--host",
        "127.0.0.1",
        "--port",
        str(first),
        "--port",
        str(second),
        "--listener-name",
        "alpha",
        "--listener-name",
        "beta",
    )
    wait_serving(process, first, second)

    for port, digit in ((first, "1"), (second, "2")):
        url = f"http://127.0.0.1:{port}/"
        result = cli(
            "simulate", "call", "--status", "ringing", "--url", url, "--param", f"CallSid={sid('CA', digit)}"
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = cli("simulate", "sms", "--lifecycle", "--url", f"http://127.0.0.1:{second}/")
    assert result.returncode == 0, result.stdout + result.stderr

    output = stdout_of(process)
    assert f"handled ringing {sid('CA', '1')}" in output and f"handled ringing {sid('CA', '2')}" in output
    assert [line.split()[2] for line in output.splitlines() if line.startswith("handled message")] == [
        "queued",
        "sent",
        "delivered",
    ]
    wait_for(lambda: f"[alpha] call ringing {sid('CA', '1')} -> ringing()" in process.stderr, "alpha's log")
    assert f"[beta] call ringing {sid('CA', '2')} -> ringing()" in process.stderr
    # the start-up summary: a row per listener, the Console fields, and the handlers by channel
    rows = listener_rows(output, "alpha", "beta")
    assert (
        rows["alpha"][0] == f"http://127.0.0.1:{first}/" and rows["beta"][0] == f"http://127.0.0.1:{second}/"
    )
    assert "ngrok http" in " ".join(rows["alpha"])  # no public URL yet: how to get one
    assert '"A MESSAGE COMES IN"' in output and "STATUS CALLBACK URL" in output
    handlers = [line.split() for line in output.splitlines() if line.strip().startswith(("call ", "sms "))]
    assert handlers == [["call", "ringing", "ringing()"], ["sms", "(any", "other)", "message()"]]


def test_run_stops_cleanly_on_sigterm(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(spawn, tmp_path, "app.py", "--host", "127.0.0.1", "--port", str(port))
    wait_serving(process, port)

    process.terminate()

    assert process.wait() == 0
    assert "Traceback" not in process.stderr


def test_every_option_reads_its_environment_variable(spawn: Spawn, tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    env = {
        "TWILIO_EVENTS_APP": "app:app",  # module:attr, imported from the working directory
        "TWILIO_EVENTS_HOST": "127.0.0.1",
        "TWILIO_EVENTS_PORT": f"{first},{second}",
        "TWILIO_EVENTS_LISTENER_NAME": "calls",
        "TWILIO_EVENTS_PUBLIC_URL": "https://hooks.example.com",
        "TWILIO_EVENTS_LOG_LEVEL": "warning",
    }
    process = start(spawn, tmp_path, env=env)
    wait_serving(process, first, second)

    rows = listener_rows(stdout_of(process), "calls", f"calls-{second}")
    assert rows["calls"] == [f"http://127.0.0.1:{first}/", "https://hooks.example.com/"]
    assert rows[f"calls-{second}"] == [f"http://127.0.0.1:{second}/", "https://hooks.example.com/"]
    assert "receiving Twilio callbacks" not in process.stderr  # info is below --log-level warning
    url = f"http://127.0.0.1:{second}/"
    signed = cli(
        "simulate", "call", "--status", "ringing", "--url", url, "--public-url", "https://hooks.example.com"
    )
    assert signed.returncode == 0, signed.stdout + signed.stderr


def test_public_url_is_what_signatures_are_checked_for(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    public = "https://abc.ngrok.app"
    process = start(
        spawn, tmp_path, "app.py", "--host", "127.0.0.1", "--port", str(port), "--public-url", public
    )
    wait_serving(process, port)
    url = f"http://127.0.0.1:{port}/"

    behind_proxy = cli("simulate", "call", "--status", "ringing", "--url", url, "--public-url", public)
    direct = cli("simulate", "call", "--status", "ringing", "--url", url)

    assert behind_proxy.returncode == 0, behind_proxy.stdout + behind_proxy.stderr
    assert f"signed for {public}/" in behind_proxy.stdout
    assert direct.returncode == 1 and "403 Forbidden" in direct.stdout
    assert stdout_of(process).count("handled ringing") == 1
    assert f"{public}/" in stdout_of(process)  # the URL to give Twilio


def try_it_lines(output: str) -> tuple[list[str], list[str]]:
    """The Try-it block of the start-up summary: its `curl` and `twilio-events simulate` command lines."""
    lines = [line.strip() for line in output.split("Try it", 1)[1].splitlines()]
    curl = next(line for line in lines if line.startswith("curl "))
    simulate = next(shlex.split(line) for line in lines if " simulate " in line)
    # runnable as printed: the bare name on PATH, else the script's own path
    assert simulate[0] == "twilio-events" or Path(simulate[0]).resolve() == SCRIPT.resolve(), simulate
    return shlex.split(curl), ["twilio-events", *simulate[1:]]


def test_try_it_lines_work_behind_a_public_url(spawn: Spawn, tmp_path: Path) -> None:
    port, public, account = free_port(), "https://abc.ngrok.app", sid("AC", "3")
    process = start(
        spawn,
        tmp_path,
        "app.py",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--public-url",
        public,
        env={"TWILIO_ACCOUNT_SID": account},
    )
    wait_serving(process, port)
    curl, simulate = try_it_lines(stdout_of(process))
    url = f"http://127.0.0.1:{port}/"

    # the curl line goes to the local port, signed for the public URL the app checks, for its account
    assert curl[:4] == ["curl", "-X", "POST", url]
    form = dict(value.split("=", 1) for flag, value in itertools.pairwise(curl) if flag == "--data-urlencode")
    signature = next(value for flag, value in itertools.pairwise(curl) if flag == "-H").split(":", 1)[1]
    assert (form["CallStatus"], form["AccountSid"]) == ("ringing", account)
    assert signature == sign(f"{public}/", form, TOKEN)
    response = httpx2.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=DEADLINE)
    assert response.status_code == 200, response.text
    wait_for(lambda: f"handled ringing {form['CallSid']}" in stdout_of(process), "the curl line's callback")

    assert simulate == [
        "twilio-events", "simulate", "call", "--lifecycle", "--url", url, "--public-url", public,
        "--account-sid", account,
    ]  # fmt: skip
    result = cli(*simulate[1:])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("signed", [True, False])
def test_each_paste_of_the_curl_line_is_a_new_callback(spawn: Spawn, tmp_path: Path, signed: bool) -> None:
    assert shutil.which("curl"), "curl is needed: the printed line runs it (.ci/run installs it)"
    port = free_port()
    options = [] if signed else ["--no-validate-signature"]
    env = {} if signed else {"TWILIO_AUTH_TOKEN": ""}
    process = start(spawn, tmp_path, "app.py", "--host", "127.0.0.1", "--port", str(port), *options, env=env)
    wait_serving(process, port)
    [line] = [line.strip() for line in stdout_of(process).splitlines() if line.strip().startswith("curl ")]

    for _ in range(2):  # pasted into a shell twice, as printed
        pasted = subprocess.run(
            ["sh", "-c", f"{line} --silent --show-error --fail"],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert pasted.returncode == 0, pasted.stderr

    assert stdout_of(process).count("handled ringing") == 2  # neither paste taken for a retry
    assert "duplicate" not in process.stderr


def test_try_it_and_simulate_need_no_http_client_library() -> None:
    # `pip install twilio-events` alone (no httpx2, no starlette.testclient) must run both.
    code = (
        "import sys; sys.modules['httpx2'] = sys.modules['httpx'] = None\n"
        "from twilio_events import TwilioEvents\n"
        "from twilio_events.cli import callbacks, main, sending, simulate\n"
        "from twilio_events.cli.service import Service\n"
        "from twilio_events.cli.try_it import try_it\n"
        f"print('\\n'.join(try_it(Service.of(TwilioEvents(auth_token={TOKEN!r}), 'app.py'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE)

    assert result.returncode == 0, result.stderr
    assert "curl -X POST" in result.stdout and "X-Twilio-Signature:" in result.stdout


def test_trust_forwarded_headers(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(
        spawn, tmp_path, "app.py", "--host", "127.0.0.1", "--port", str(port), "--trust-forwarded-headers"
    )
    wait_serving(process, port)

    result = cli(
        "simulate",
        "sms",
        "--status",
        "sent",
        "--url",
        f"http://127.0.0.1:{port}/",
        "--public-url",
        "https://proxy.example.com:8443",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "handled message sent" in stdout_of(process)


def test_no_validate_signature_is_loud_and_accepts_any_signature(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(
        spawn,
        tmp_path,
        "app.py",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-validate-signature",
        env={"TWILIO_AUTH_TOKEN": ""},
    )
    wait_serving(process, port)

    url = f"http://127.0.0.1:{port}/"
    result = cli("simulate", "call", "--status", "ringing", "--url", url, token="anything")
    unsigned = cli("simulate", "call", "--status", "ringing", "--url", url, token=None)

    assert result.returncode == unsigned.returncode == 0, result.stdout + unsigned.stdout
    assert stdout_of(process).count("handled ringing") == 2
    assert "*** WARNING: X-Twilio-Signature validation is OFF" in process.stderr
    assert process.stderr.count("validation is OFF") == 1  # the app's own log lines would repeat it
    assert "NOT validated" in stdout_of(process)


def test_reload_restarts_on_a_change(tmp_path: Path) -> None:
    port = free_port()
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")} | {"TWILIO_AUTH_TOKEN": TOKEN}
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(SCRIPT), "run", "app.py", "--host", "127.0.0.1", "--port", str(port), "--reload"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: accepting(port), "the first start")
        app.write_text(APP.replace("handled ringing", "reloaded ringing"), encoding="utf-8")
        wait_for(lambda: "app.py changed: restarting" in log.read_text(), "the restart")

        def reloaded() -> bool:
            result = cli(
                "simulate", "call", "--status", "ringing", "--url", f"http://127.0.0.1:{port}/", "--wait", "5"
            )
            return result.returncode == 0 and "reloaded ringing" in log.read_text()

        wait_for(reloaded, "the changed handler to answer")
    finally:
        server.send_signal(signal.SIGTERM)  # the watcher stops the serving child first
        try:
            server.wait(DEADLINE)
        finally:
            with contextlib.suppress(ProcessLookupError):  # anything left of the group it started
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(DEADLINE)
    assert not accepting(port)


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_is_one_clear_line(tmp_path: Path, occupied_port: int) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")

    result = cli("run", "app.py", "--host", "127.0.0.1", "--port", str(occupied_port), cwd=tmp_path)

    assert_one_line_error(result, f"port {occupied_port} is already in use", "--port", "TWILIO_EVENTS_PORT")


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("x = 1\n", "app.py", "no TwilioEvents app found in app.py"),
        (APP + "other = TwilioEvents()\n", "app.py", "several TwilioEvents apps in app.py (app, other)"),
        (APP, "app.py:missing", "app.py has no attribute 'missing'"),
        (APP, "nowhere.py", "no such file: nowhere.py"),
        (APP, "nowhere:app", "no module named 'nowhere'"),
        (
            "import not_installed_anywhere\n",
            "app",
            "ModuleNotFoundError: No module named 'not_installed_anywhere'",
        ),
        ("def broken(:\n", "app.py", "SyntaxError"),
    ],
)
def test_a_target_without_a_usable_app_is_one_clear_line(
    tmp_path: Path, source: str, target: str, expected: str
) -> None:
    (tmp_path / "app.py").write_text(source, encoding="utf-8")

    assert_one_line_error(cli("run", target, cwd=tmp_path), expected)


def test_a_missing_auth_token_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")

    result = cli("run", "app.py", cwd=tmp_path, token=None)

    assert_one_line_error(result, "TWILIO_AUTH_TOKEN", "--no-validate-signature")


def test_a_bad_port_in_the_environment_is_named(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env |= {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_EVENTS_PORT": "80a"}

    result = subprocess.run(
        [str(SCRIPT), "run", "app.py"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )

    assert_one_line_error(result, "TWILIO_EVENTS_PORT: '80a' is not a port number")


def test_version_from_the_script_and_the_module() -> None:
    from twilio_events import __version__

    script = cli("--version")
    module = subprocess.run(
        [sys.executable, "-m", "twilio_events", "--version"], capture_output=True, text=True, timeout=DEADLINE
    )

    assert script.stdout.strip() == module.stdout.strip() == f"twilio-events {__version__}"


def test_help_documents_every_option_and_its_environment_variable() -> None:
    result = cli("run", "--help")

    assert result.returncode == 0
    for text in (
        "examples:",
        "--host",
        "TWILIO_EVENTS_HOST",
        "--port",
        "TWILIO_EVENTS_PORT",
        "--listener-name",
        "TWILIO_EVENTS_LISTENER_NAME",
        "--public-url",
        "TWILIO_EVENTS_PUBLIC_URL",
        "--trust-forwarded-headers",
        "TWILIO_EVENTS_TRUST_FORWARDED_HEADERS",
        "--no-validate-signature",
        "TWILIO_EVENTS_VALIDATE_SIGNATURE",
        "--reload",
        "TWILIO_EVENTS_RELOAD",
        "--log-level",
        "TWILIO_EVENTS_LOG_LEVEL",
        "TWILIO_EVENTS_APP",
    ):
        assert text in result.stdout
    top = cli("--help")
    assert all(command in top.stdout for command in ("run", "simulate", "configure", "examples:"))


def test_try_it_sends_what_the_app_handles() -> None:
    from twilio_events import TwilioEvents
    from twilio_events.cli.service import Service
    from twilio_events.cli.try_it import try_it

    inbound = TwilioEvents(auth_token=TOKEN)
    inbound.sms.on_received(lambda event: None)
    statuses = TwilioEvents(auth_token=TOKEN)
    statuses.sms.on_undelivered(lambda event: None)
    calls = TwilioEvents(auth_token=TOKEN)
    calls.call.on_completed(lambda event: None)

    inbound_text, statuses_text, calls_text = (
        "\n".join(try_it(Service.of(app, "app.py"))) for app in (inbound, statuses, calls)
    )

    assert "SmsStatus=received" in inbound_text and " simulate inbound-sms " in inbound_text
    assert "MessageStatus=undelivered" in statuses_text and " simulate sms --lifecycle " in statuses_text
    assert "CallStatus=completed" in calls_text and " simulate call --lifecycle " in calls_text


# any ASGI app: a FastAPI app that mounts the TwilioEvents app, or a plain one

FASTAPI_APP = """
from fastapi import FastAPI

from twilio_events import TwilioEvents

events = TwilioEvents()
app = FastAPI(lifespan=events.lifespan)
app.mount("/twilio", events)


@events.call.on_ringing
def ringing(event):
    print("handled ringing", event.call_sid, flush=True)


@app.get("/health")
def health():
    return {"status": "ok"}


def create_app():
    return app
"""


@pytest.mark.parametrize("target", ["app.py:app", "app.py", "app:create_app"])
def test_run_serves_a_fastapi_app_that_mounts_twilio_events(
    spawn: Spawn, tmp_path: Path, target: str
) -> None:
    (tmp_path / "app.py").write_text(FASTAPI_APP, encoding="utf-8")
    first, second = free_port(), free_port()
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_VALIDATE_SIGNATURE": ""}
    ports = ["--port", str(first), "--port", str(second)]
    process = spawn(["-m", "twilio_events", "run", target, "--host", "127.0.0.1", *ports], env)
    wait_serving(process, first, second)

    output = stdout_of(process)
    rows = listener_rows(output, "twilioListener", f"twilioListener-{second}")
    assert rows["twilioListener"][0] == f"http://127.0.0.1:{first}/twilio/"  # under the mount
    assert rows[f"twilioListener-{second}"][0] == f"http://127.0.0.1:{second}/twilio/"
    assert ["call", "ringing", "ringing()"] in [line.split() for line in output.splitlines()]
    for port in (first, second):  # the FastAPI app's own routes are served too
        response = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=DEADLINE)
        assert response.json() == {"status": "ok"}
    _, simulate = try_it_lines(output)
    assert simulate[-2:] == ["--url", f"http://127.0.0.1:{first}/twilio/"]
    result = cli(*simulate[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert stdout_of(process).count("handled ringing") == 1
    assert process.stderr.count("twilio_events ready") == 1  # one lifespan for both listeners

    process.terminate()
    assert process.wait() == 0
    assert "Traceback" not in process.stderr


PLAIN_ASGI_APP = """
async def app(scope, receive, send):
    assert scope["type"] in ("http", "lifespan")
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})


class App:
    async def __call__(self, scope, receive, send):
        pass
"""


def test_run_serves_an_async_function_app_without_calling_it(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PLAIN_ASGI_APP, encoding="utf-8")
    port = free_port()
    args = ["-m", "twilio_events", "run", "app.py:app", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(args, {"TWILIO_AUTH_TOKEN": TOKEN})
    wait_serving(process, port)

    assert httpx2.get(f"http://127.0.0.1:{port}/", timeout=DEADLINE).text == "plain"
    assert "no TwilioEvents app mounted in it" in stdout_of(process)


def test_a_class_is_not_called_as_a_factory(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PLAIN_ASGI_APP, encoding="utf-8")

    assert_one_line_error(cli("run", "app.py:App", cwd=tmp_path), "app.py:App is a class")


def test_store_and_delivery_options_reach_the_app_and_inbox_reads_the_same_store(
    spawn: Spawn, tmp_path: Path
) -> None:
    port = free_port()
    db = tmp_path / "events.db"
    process = start(
        spawn,
        tmp_path,
        "app.py",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        f"sqlite:///{db}",
        "--delivery",
        "durable",
    )
    wait_serving(process, port)

    assert "durable delivery: events are stored in SqliteStore" in process.stderr
    stats = cli("inbox", "--store", f"sqlite:///{db}", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "queued" in stats.stdout.lower()
    process.terminate()
    assert process.wait() == 0
