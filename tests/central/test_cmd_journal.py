"""The central command audit: `sent` is recorded before the command is published, then
`ok`/`refused`/`timeout`; who may command which site; the one list of door-moving commands."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest

from edge.central import cmd as central_cmd
from edge.cli import main as edge_main
from edge.locker.commands import DOOR_COMMANDS
from edge.locker.service import LockerService
from edge.security import new_key

from .conftest import ANSWER_TIMEOUT_S, wait_until
from .test_cmd import DEVICE, SITE, device, write_key  # noqa: F401  (the `device` fixture)


def rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT type, status, result IS NOT NULL FROM commands ORDER BY sent_at").fetchall()


class SilentDevice:
    """Receives its commands and never answers (the link dropped after the door opened);
    notes the central row of each command at the moment it arrives.

    Its connection to PostgreSQL is open before any command comes: the look at arrival is one
    query, well inside the sender's wait (a connection opened then, on a loaded machine, could
    take long enough for the sender to have written `timeout` already)."""

    def __init__(self, broker_port: int, dsn: str):
        self.conn, self.seen = psycopg.connect(dsn, autocommit=True), []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="silent", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(f"motcua/v1/{SITE}/silent-1/+/cmd", qos=1)
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, msg):
        cmd_id = json.loads(msg.payload)["id"]
        self.seen.append(self.conn.execute("SELECT status FROM commands WHERE id = %s", (cmd_id,)).fetchone())

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
        self.conn.close()


# How long `edge central cmd` waits for the silent device: the device must have looked at the
# row before the sender gives up and writes `timeout` (1 s was too short on a loaded CI machine).
SILENCE_S = 3


def test_a_command_is_recorded_as_sent_before_it_is_published_then_timeout(tmp_path, broker, pg, capsys):
    key = write_key(tmp_path / "k.key", new_key())
    silent = SilentDevice(broker.port, pg.dsn)
    try:
        rc = edge_main(["central", "cmd", "--broker", broker.url, "--db", pg.dsn, "--site", SITE, "--device", "silent-1",
                        "--service", "locker", "--type", "open", "--args", '{"compartment": 4}', "--key", str(key),
                        "--timeout", str(SILENCE_S)])
        assert rc == 1 and "no result from" in capsys.readouterr().err
        wait_until(lambda: silent.seen, what="the device received the command")
        assert silent.seen == [("sent",)]                       # the row existed when the door could move
        assert rows(pg.dsn) == [("open", "timeout", False)]     # ... and says nobody knows how it ended
    finally:
        silent.close()


def test_a_refused_command_is_recorded_as_refused(tmp_path, broker, pg, device, capsys):  # noqa: F811
    wrong = write_key(tmp_path / "wrong.key", new_key())
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--db", pg.dsn, "--site", SITE, "--device", DEVICE,
                    "--service", "locker", "--type", "open", "--args", '{"compartment": 5}', "--key", str(wrong),
                    "--timeout", str(ANSWER_TIMEOUT_S)])
    assert rc == 1 and "bad signature" in capsys.readouterr().out
    assert rows(pg.dsn) == [("open", "refused", True)] and device.locker.opened == []


def test_nothing_is_published_when_the_command_cannot_be_recorded(tmp_path, broker, device, capsys):  # noqa: F811
    key_file = write_key(tmp_path / "k.key", device.key_hex)
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--db", "postgresql://nobody@127.0.0.1:1/none",
                    "--site", SITE, "--device", DEVICE, "--service", "locker", "--type", "open",
                    "--args", '{"compartment": 6}', "--key", str(key_file), "--timeout", "2"])
    assert rc == 1 and "cannot record the command in PostgreSQL" in capsys.readouterr().err
    assert device.locker.opened == []


def test_operators_only_and_only_their_sites():
    central_cmd.check_allowed("operator", None, "any-site")
    central_cmd.check_allowed("admin", {"hn-q1"}, "hn-q1")
    with pytest.raises(central_cmd.CommandForbidden, match="role 'viewer' may not send commands"):
        central_cmd.check_allowed("viewer", None, "hn-q1")
    with pytest.raises(central_cmd.CommandForbidden, match="not allowed to command site 'hcm-q3'"):
        central_cmd.check_allowed("operator", {"hn-q1"}, "hcm-q3")


def test_one_list_of_door_commands_for_signature_and_confirmation():
    # The device requires a signature for exactly the commands the dashboard confirms twice.
    assert LockerService.signed_commands == DOOR_COMMANDS
    assert {"open", "load", "audit_open_all"} <= DOOR_COMMANDS <= set(LockerService.commands)
    confirmed = {t for t in LockerService.commands if central_cmd.needs_confirmation("locker", t)}
    assert confirmed == set(DOOR_COMMANDS)
    assert not central_cmd.needs_confirmation("pager", "open")


def test_central_refuses_to_send_to_a_site_the_staff_member_may_not_command(tmp_path, central_app, pg):
    import asyncio
    from types import SimpleNamespace

    c = central_app(key_dir=str(tmp_path / "keys"))
    body = {"site": "hcm-q3", "device": "kiosk-1", "service": "locker", "type": "open", "args": {"compartment": 1}}
    limited = SimpleNamespace(role="operator", sites=frozenset({"hn-q1"}))
    sending = asyncio.run_coroutine_threadsafe(c.app.send_command("Nguyen Van A", body, staff=limited), c.loop)
    with pytest.raises(central_cmd.CommandForbidden, match="not allowed to command site 'hcm-q3'"):
        sending.result(20)
    assert rows(pg.dsn) == []                    # nothing recorded, nothing published
