"""Poison messages cannot stall the fleet: a device account floods central with malformed
messages while another device streams good events (real mosquitto, real PostgreSQL, the real
CentralApp with its dashboard). Every good event is stored once and in order, `/api/health`
stays ok, and every malformed message is in the quarantine table with its reason and hash.

Before the quarantine, the first deeply nested event raised RecursionError in the parser, the
batch was never acknowledged, and after the broker's receive window (1,000) was full no event
of any device reached PostgreSQL again.

The figure in docs/central.md comes from:  .venv/bin/pytest tests/central/test_poison.py -s -n 0 -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time

import psycopg

from edge.central import quarantine

from .conftest import wait_until

SITE, GOOD, BAD = "hn-q1", "desk-1", "kiosk-9"
DEEP_FIRST = 1_200          # the probe of the issue: 1,200 deep events, more than the receive window
FUZZ = 3_000                # then every other shape, mixed
GOOD_EVENTS = 400


def _event(**overrides) -> dict:
    return {"id": f"bad-{time.monotonic_ns()}", "seq": 1, "ts": time.time(), "type": "scanned", **overrides}


def deep(n: int) -> bytes:
    return b'{"id": "deep-%d", "seq": 1, "ts": 1700000000, "type": "x", "v": ' % n + b"[" * 4000 + b"]" * 4000 + b"}"


def probes(n: int) -> tuple[str, bytes, str]:
    """(topic, payload, expected reason) number n of the fuzz: every shape the issue names."""
    event = f"motcua/v1/{SITE}/{BAD}/qr/event"
    shapes = [
        (event, deep(n), "too_deep"),
        (event, json.dumps(_event()).replace('"ts": ', '"ts": 1e999, "was": ').encode(), "bad_number"),
        (event, b'{"id": "n%d", "seq": 2, "ts": NaN, "type": "x"}' % n, "bad_number"),
        (event, b'{"id": "i%d", "seq": 2, "ts": 1700000000, "type": "x", "v": Infinity}' % n, "bad_number"),
        (event, json.dumps(_event(seq="12")).encode(), "bad_seq"),
        (event, json.dumps(_event(id=7)).encode(), "bad_id"),
        (event, json.dumps(_event(type=5)).encode(), "bad_type"),
        (event, json.dumps(_event(ts="noon")).encode(), "bad_ts"),
        (event, b"[1, 2, 3]", "not_object"),
        (event, b"\xff\xfe\x00garbage", "not_json"),
        (event, json.dumps(_event(pad="x" * 70_000)).encode(), "too_large"),
        (event, json.dumps(_event(code="P-\u0000")).encode(), "bad_string"),
        (event, b'{"id": "s%d", "seq": 2, "ts": 1700000000, "type": "x", "v": "\\ud800"}' % n, "bad_string"),
        (f"motcua/v1/HN Q1/{BAD}/qr/event", json.dumps(_event()).encode(), "bad_topic"),
        (f"motcua/v1/{SITE}/{BAD}/QR/event", json.dumps(_event()).encode(), "bad_topic"),
        (f"motcua/v1/{SITE}/{BAD}/status", b'{"state": "dancing", "ts": 1700000000}', "bad_state"),
        (f"motcua/v1/{SITE}/{BAD}/device/cmd/result", b'{"id": "x", "ok": "yes"}', "bad_result"),
        # A well-formed event under another office: the registry says kiosk-9 is at hn-q1.
        (f"motcua/v1/any-site/{BAD}/qr/event", json.dumps(_event(id=f"phantom-{n}")).encode(), "wrong_site"),
    ]
    return shapes[n % len(shapes)]


def register_devices(dsn: str) -> None:
    from edge.central import db

    with psycopg.connect(dsn, autocommit=True) as conn:
        db.migrate(conn)
        quarantine.register(conn, [(SITE, GOOD), (SITE, BAD)])


def flood(c, good, bad, dsn: str, *, reaches=lambda topic: True) -> None:
    """Publish the probes from `bad` while `good` streams; check everything that `reaches`
    central (the broker ACL may drop some probes first) is quarantined and the good stream is
    stored once, in order, with `/api/health` ok all along."""
    alarms: list = []
    c.app.consumer.on_alarms = alarms.extend          # the alarms the notifiers would send
    wait_until(lambda: good.acked and bad.acked, what="both devices online")
    sent = [(f"motcua/v1/{SITE}/{BAD}/qr/event", deep(n), "too_deep") for n in range(DEEP_FIRST)]
    sent += [probes(n) for n in range(FUZZ)]
    arriving = [probe for probe in sent if reaches(probe[0])]
    health: list = []

    def stream_good():
        for i in range(GOOD_EVENTS):
            good.event("pager", "ticket_issued", ticket=f"A{i:03d}", queue="A")
            if i % 20 == 0:
                health.append(c.get("/api/health"))
                time.sleep(0.01)

    started = time.monotonic()
    streamer = threading.Thread(target=stream_good, daemon=True)
    streamer.start()
    for topic, payload, _ in sent:
        bad.raw(topic, payload)
    streamer.join(120)

    def stored_good() -> list[tuple]:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT id, seq, received FROM events WHERE device = %s ORDER BY seq", (GOOD,)).fetchall()

    def quarantined() -> int:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]

    wait_until(lambda: len(stored_good()) == GOOD_EVENTS and quarantined() == len(arriving), timeout=180,
               what=f"{GOOD_EVENTS} good events stored and {len(arriving)} poison messages quarantined")
    elapsed = time.monotonic() - started
    # The writer thread counts a batch a moment after committing it: the rows above can be in
    # PostgreSQL before the consumer's own count has caught up (asserted exactly below).
    wait_until(lambda: c.app.consumer.stats()["quarantined"] >= len(arriving), what="the quarantine counted")

    rows = stored_good()
    assert [r[0] for r in rows] == good.ids                                  # each once, none lost
    assert [r[1] for r in rows] == list(range(1, GOOD_EVENTS + 1))
    assert all(a[2] <= b[2] for a, b in zip(rows, rows[1:]))                 # stored in the order sent
    assert health and all(h["ok"] for h in health) and c.get("/api/health")["ok"]

    with psycopg.connect(dsn) as conn:
        dead = conn.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall()
        hashes = {r[0] for r in conn.execute("SELECT sha256 FROM quarantine WHERE reason = 'too_deep'")}
        phantom = conn.execute("SELECT count(*) FROM devices WHERE site = 'any-site'").fetchone()[0]
        stored_bad = conn.execute("SELECT count(*) FROM events WHERE device = %s", (BAD,)).fetchone()[0]
        open_alarms = conn.execute("SELECT site, device FROM alarms WHERE kind = 'poison_messages' "
                                   "AND cleared_at IS NULL").fetchall()
    expected: dict = {}
    for _, _, reason in arriving:
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(dead) == expected
    assert hashlib.sha256(deep(0)).hexdigest() in hashes
    assert phantom == 0 and stored_bad == 0                                  # no phantom office, nothing stored
    poison = [a for a in alarms if a["kind"] == "poison_messages"]
    assert [(a["site"], a["device"]) for a in poison] == [(SITE, BAD)]       # one alarm, at the real office
    assert open_alarms == [(SITE, BAD)]
    stats = c.app.consumer.stats()
    assert stats["quarantined"] == len(arriving) and stats["pending"] == 0
    print(f"\npoison flood: {len(sent)} malformed messages ({DEEP_FIRST} deeply nested first) from {BAD}, "
          f"{len(arriving)} of them let through by the broker, beside {GOOD_EVENTS} good events from {GOOD}: "
          f"all quarantined and all good events stored in {elapsed:.1f} s; "
          f"/api/health ok in {len(health)} of {len(health)} probes")


def test_a_flood_of_poison_messages_never_stalls_the_good_ones(broker, pg, devices, central_app):
    register_devices(pg.dsn)
    c = central_app(instance="central-poison")
    flood(c, devices(SITE, GOOD), devices(SITE, BAD), pg.dsn)


def test_the_same_flood_from_a_device_account_through_the_site_bound_acl(pg, tmp_path):
    """As deployed: device accounts with passwords, the ACL make-acl.sh builds from the
    provisioning list; the broker drops what is not under the device's own site and id, central
    quarantines the rest."""
    import subprocess

    from edge.central.ingest import IngestConfig
    from edge.central.service import CentralConfig

    from .conftest import CentralThread, SimDevice, start_acl_broker
    from .test_office_acl import ACL

    devices_file = tmp_path / "devices.txt"
    devices_file.write_text(f"{SITE} {GOOD}\n{SITE} {BAD}\n")
    acl = subprocess.run([str(ACL.parent / "make-acl.sh"), str(devices_file)], capture_output=True, text=True,
                         check=True).stdout
    users = {"central": "central-pw", GOOD: "good-pw", BAD: "bad-pw"}
    broker, workdir = start_acl_broker(users, acl)
    register_devices(pg.dsn)
    c = CentralThread(CentralConfig(ingest=IngestConfig(
        broker=broker.url, dsn=pg.dsn, instance="central-acl-poison", batch_ms=10, periodic_s=0.3,
        username="central", password=users["central"]), host="127.0.0.1", port=0))
    good = SimDevice(broker.port, SITE, GOOD, username=GOOD, password=users[GOOD])
    bad = SimDevice(broker.port, SITE, BAD, username=BAD, password=users[BAD])
    try:
        wait_until(lambda: c.app.consumer.broker_ok, what="central subscribed as user central")
        flood(c, good, bad, pg.dsn, reaches=lambda topic: topic.startswith(f"motcua/v1/{SITE}/{BAD}/"))
    finally:
        for d in (good, bad):
            d.close(graceful=False)
        c.stop()
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_without_a_registry_every_site_is_accepted_and_a_phantom_office_is_refused_once_provisioned(
        broker, pg, devices, central_app):
    c = central_app(instance="central-registry")
    lab = devices("lab", "kiosk-1")
    lab.event("qr", "scanned")
    wait_until(lambda: c.app.consumer.stats()["stored"] == 1, what="an event accepted with an empty registry")
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        quarantine.register(conn, [("lab", "kiosk-1")])
    time.sleep(1.2)      # the consumer re-reads its cached registry on a miss once it is 1 s old
    phantom = devices("any-site", "kiosk-1")             # the same device account, another office
    phantom.event("qr", "scanned")
    stranger = devices("lab", "kiosk-7")                 # a device nobody provisioned
    stranger.event("qr", "scanned")
    lab.event("qr", "scanned")
    wait_until(lambda: c.app.consumer.stats()["stored"] == 2 and c.app.consumer.stats()["quarantined"] >= 4,
               what="the provisioned device stored, the others quarantined")
    with psycopg.connect(pg.dsn) as conn:
        reasons = dict(conn.execute("SELECT site || '/' || device, array_agg(DISTINCT reason)::text FROM quarantine "
                                    "GROUP BY 1").fetchall())
        sites = {r[0] for r in conn.execute("SELECT DISTINCT site FROM devices")}
    assert reasons == {"any-site/kiosk-1": "{wrong_site}", "lab/kiosk-7": "{unregistered}"}
    assert "any-site" not in sites


def test_dead_letters_are_listed_per_site_and_pruned_after_90_days(pg):
    import asyncio

    from edge.central import db

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        db.migrate(conn)
        with conn.transaction():
            quarantine.record(conn, [quarantine.Quarantined.of(f"motcua/v1/{site}/kiosk-1/qr/event", b"[", "not_object",
                                                               "payload is list") for site in ("hn-q1", "hcm-q3")],
                              instance="t")
        conn.execute("UPDATE quarantine SET received = now() - interval '91 days' WHERE site = 'hcm-q3'")

    async def listed(sites):
        async with await psycopg.AsyncConnection.connect(pg.dsn) as aconn:
            return [(r["site"], r["reason"]) for r in await quarantine.recent(aconn, sites=sites)]

    assert asyncio.run(listed({"hn-q1"})) == [("hn-q1", "not_object")]      # only the sites one may see
    assert len(asyncio.run(listed(None))) == 2
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        assert quarantine.prune(conn) == 1
    assert asyncio.run(listed(None)) == [("hn-q1", "not_object")]


def test_devices_cli_imports_lists_and_refuses_bad_names(pg, tmp_path, capsys):
    from edge.cli import main as edge_main

    listing = tmp_path / "devices.txt"
    listing.write_text(f"# Hoan Kiem office\n{SITE} {GOOD}\n{SITE} {BAD}   # the night kiosk\n")
    assert edge_main(["central", "devices", "--db", pg.dsn, "import", str(listing)]) == 0
    assert "2 device(s) added" in capsys.readouterr().out
    assert edge_main(["central", "devices", "--db", pg.dsn, "add", "hcm-q3", "kiosk-1"]) == 0
    capsys.readouterr()
    assert edge_main(["central", "devices", "--db", pg.dsn, "list"]) == 0
    assert capsys.readouterr().out.split("\n")[:3] == ["hcm-q3 kiosk-1", f"{SITE} {GOOD}", f"{SITE} {BAD}"]
    assert edge_main(["central", "devices", "--db", pg.dsn, "add", "HN Q1", "kiosk-1"]) == 2
    assert "site 'HN Q1' is not a name" in capsys.readouterr().err
    listing.write_text("hn-q1 kiosk-1 extra\n")
    assert edge_main(["central", "devices", "--db", pg.dsn, "import", str(listing)]) == 2
    assert "devices.txt:1: expected 'SITE DEVICE'" in capsys.readouterr().err
    assert edge_main(["central", "devices", "--db", pg.dsn, "remove", "hcm-q3", "kiosk-1"]) == 0
    assert edge_main(["central", "devices", "--db", pg.dsn, "remove", "hcm-q3", "kiosk-1"]) == 1
