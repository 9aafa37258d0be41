"""Signed remote commands end to end: central signs, the real device-side dispatcher checks."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import psycopg
import pytest

from edge.cli import main as edge_main
from edge.config import BrokerConfig
from edge.mqtt import CommandDispatcher, Reporter
from edge.security import new_key
from edge.service import Service, ServiceContext
from edge.store import Store

from .conftest import ANSWER_TIMEOUT_S

SITE, DEVICE = "hanoi-bd", "kiosk-1"


class FakeLocker(Service):
    """A locker service that records which compartments it was told to open."""

    name = "locker"
    commands = {"open": {"compartment": int}, "status": {}}
    signed_commands = frozenset({"open"})

    def __init__(self, ctx):
        super().__init__(ctx)
        self.opened: list[int] = []

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        if type == "open":
            self.opened.append(args["compartment"])
            return {"compartment": args["compartment"]}
        return {"doors": 12}


class Device:
    """The device side as deployed: Store + Reporter (outbox, birth/will) + CommandDispatcher."""

    def __init__(self, tmp_path, broker_url: str, key: bytes, broker: BrokerConfig | None = None):
        self.store = Store(tmp_path / "device.db")
        ctx = ServiceContext(name="locker", site=SITE, device=DEVICE, store=self.store, config=None, data_dir=tmp_path)
        self.locker = FakeLocker(ctx)
        self.dispatcher = CommandDispatcher(self.store, {"locker": self.locker}, site=SITE, device=DEVICE, command_key=key)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.reporter = Reporter(broker or BrokerConfig(url=broker_url), self.store, site=SITE, device=DEVICE, version="1.0",
                                 on_command=self._on_command)
        self.reporter.start()
        assert self.reporter.connected.wait(20)

    def _on_command(self, service: str, payload: bytes) -> None:
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.dispatcher.dispatch(service, payload)))

    def close(self) -> None:
        self.reporter.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.store.close()


def write_key(path, key_hex: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key_hex)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def device(tmp_path, broker):
    key_hex = new_key()
    d = Device(tmp_path, broker.url, bytes.fromhex(key_hex))
    d.key_hex = key_hex
    try:
        yield d
    finally:
        d.close()


def test_cli_command_is_signed_executed_once_and_audited(tmp_path, broker, pg, device, capsys):
    key_file = write_key(tmp_path / "keys" / SITE / f"{DEVICE}.key", device.key_hex)
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--db", pg.dsn, "--site", SITE, "--device", DEVICE,
                    "--service", "locker", "--type", "open", "--args", '{"compartment": 3}', "--key", str(key_file),
                    "--actor", "chi.lan", "--json", "--timeout", str(ANSWER_TIMEOUT_S)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["result"]["ok"] is True and out["result"]["compartment"] == 3
    assert device.locker.opened == [3]
    with psycopg.connect(pg.dsn) as conn:
        row = conn.execute("SELECT actor, type, args, result, status FROM commands WHERE id = %s", (out["id"],)).fetchone()
    assert row == ("chi.lan", "open", {"compartment": 3}, out["result"], "ok")


def test_wrong_key_is_refused_by_the_device(tmp_path, broker, device, capsys):
    wrong = write_key(tmp_path / "wrong.key", new_key())
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--site", SITE, "--device", DEVICE, "--service", "locker",
                    "--type", "open", "--args", '{"compartment": 5}', "--key", str(wrong),
                    "--timeout", str(ANSWER_TIMEOUT_S)])
    assert rc == 1 and "bad signature" in capsys.readouterr().out
    assert device.locker.opened == []


def test_no_device_times_out_with_a_clear_error(tmp_path, broker, capsys):
    key = write_key(tmp_path / "k.key", new_key())
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--site", SITE, "--device", "nobody", "--service", "locker",
                    "--type", "status", "--key", str(key), "--timeout", "1"])
    assert rc == 1 and "no result from hanoi-bd/nobody/locker" in capsys.readouterr().err


def test_bad_args_json_is_refused_before_sending(tmp_path, broker, capsys):
    key = write_key(tmp_path / "k.key", new_key())
    rc = edge_main(["central", "cmd", "--broker", broker.url, "--site", SITE, "--device", DEVICE, "--service", "locker",
                    "--type", "open", "--args", "{compartment: 3", "--key", str(key)])
    assert rc == 2 and "--args is not JSON" in capsys.readouterr().err


def test_dashboard_open_needs_a_role_and_a_second_confirmation(tmp_path, central_app, pg, device):
    write_key(tmp_path / "keys" / SITE / f"{DEVICE}.key", device.key_hex)
    staff = tmp_path / "staff"
    staff.write_text("tok-operator-0123456789 operator Nguyen Van A\ntok-viewer-0123456789ab viewer Tran B\n")
    c = central_app(key_dir=str(tmp_path / "keys"), staff_file=str(staff))
    body = {"site": SITE, "device": DEVICE, "service": "locker", "type": "open", "args": {"compartment": 7}}
    assert c.post("/api/cmd", body)[0] == 401                  # no login at all
    assert c.post("/api/cmd", body, {"Authorization": "Bearer tok-viewer-0123456789ab"})[0] == 403
    operator = {"Authorization": "Bearer tok-operator-0123456789"}
    status, first = c.post("/api/cmd", body, operator)
    assert status == 202 and "confirm" in first and device.locker.opened == []
    assert c.post("/api/cmd", {"confirm": "made-up"}, operator)[0] == 409
    status, done = c.post("/api/cmd", {"confirm": first["confirm"]}, operator)
    assert status == 200 and done["result"]["ok"] is True and device.locker.opened == [7]
    assert c.post("/api/cmd", {"confirm": first["confirm"]}, operator)[0] == 409   # one confirmation, one open
    status, plain = c.post("/api/cmd", {**body, "type": "status", "args": {}}, operator)
    assert status == 200 and plain["result"] == {"id": plain["id"], "ok": True, "doors": 12}
    with psycopg.connect(pg.dsn) as conn:
        rows = conn.execute("SELECT actor, type FROM commands ORDER BY sent_at").fetchall()
    assert rows == [("Nguyen Van A", "open"), ("Nguyen Van A", "status")]


def signed_in(tmp_path, central_app, device):
    """The dashboard with the device's command key, an operator (lan) logged in on /commands."""
    from .webclient import WebClient, login_line

    write_key(tmp_path / "keys" / SITE / f"{DEVICE}.key", device.key_hex)
    staff = tmp_path / "staff"
    staff.write_text(login_line("lan", "482913", "operator", "Nguyen Van A"))
    c = central_app(key_dir=str(tmp_path / "keys"), staff_file=str(staff))
    browser = WebClient(c.url)
    assert browser.login("lan", "482913", next_path="/commands")[0] == 200
    return browser


def test_command_page_form_with_confirmation(tmp_path, central_app, device):
    from .webclient import hidden

    browser = signed_in(tmp_path, central_app, device)
    form = {"csrf": browser.csrf(), "site": SITE, "device": DEVICE, "service": "locker", "type": "open",
            "args": '{"compartment": 2}'}
    assert browser.post("/commands", {**form, "csrf": "forged"})[0] == 403 and device.locker.opened == []
    _, _, confirm_page = browser.post("/commands", form)
    assert "Xác nhận lần nữa?" in confirm_page and device.locker.opened == []
    _, _, done = browser.post("/commands", {"csrf": form["csrf"], "confirm": hidden(confirm_page, "confirm")})
    assert "Thiết bị đã thực hiện lệnh." in done and device.locker.opened == [2]
    _, _, listing = browser.get("/commands")
    assert "Nguyen Van A" in listing and "compartment" in listing


@pytest.mark.parametrize("flag,value,message", [
    ("--listen", "8090", "expected HOST:PORT"),
    ("--broker", "http://broker:1883", "expected mqtt://HOST:PORT or mqtts://HOST:PORT"),
])
def test_run_refuses_bad_flags_with_a_clear_message(flag, value, message, capsys):
    argv = ["central", "run", "--db", "postgresql://nobody@127.0.0.1:1/none", "--listen", "127.0.0.1:0", flag, value]
    assert edge_main(argv) == 2
    assert message in capsys.readouterr().err
