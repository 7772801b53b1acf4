"""Consumer identities: stable across restarts, never shared by two live processes of one machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twilio_events.stores.identity import ConsumerIdentity

from .conftest import DEADLINE

HOLD = """
import sys, time
from pathlib import Path
from twilio_events.stores.identity import ConsumerIdentity

identity = ConsumerIdentity.acquire(sys.argv[1], Path(sys.argv[2]))
print(identity.name, flush=True)
time.sleep(60)
"""


def test_two_holders_of_one_base_get_two_names_and_a_released_slot_is_taken_again(tmp_path: Path) -> None:
    first = ConsumerIdentity.acquire("web", tmp_path)
    second = ConsumerIdentity.acquire("web", tmp_path)
    try:
        assert (first.name, second.name) == ("web:1", "web:2")
        first.release()
        again = ConsumerIdentity.acquire("web", tmp_path)
        assert again.name == "web:1"
        again.release()
    finally:
        first.release()
        second.release()


def test_the_host_name_is_the_default_base(tmp_path: Path) -> None:
    import socket

    identity = ConsumerIdentity.acquire(None, tmp_path)
    try:
        assert identity.name == f"{socket.gethostname()}:1"
    finally:
        identity.release()


def test_a_killed_process_leaves_its_name_to_the_next_one(tmp_path: Path) -> None:
    command = [sys.executable, "-c", HOLD, "worker/a b", str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "worker/a b:1"
            taken = ConsumerIdentity.acquire("worker/a b", tmp_path)
            assert taken.name == "worker/a b:2"  # the live process keeps its name
            taken.release()
        finally:
            holder.kill()
            holder.wait(DEADLINE)
    after = ConsumerIdentity.acquire("worker/a b", tmp_path)
    try:
        assert after.name == "worker/a b:1"  # gone, however it ended: its name is free again
    finally:
        after.release()
