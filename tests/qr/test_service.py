"""QrService end to end: frames in, events out, and at the desk real pager tickets and check-ins."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from edge.config import from_dict
from edge.errors import ConfigError, DeviceNotReady
from edge.pager.config import CounterDef, PagerConfig, ServiceDef
from edge.pager.service import PagerService
from edge.pager.sim import ANSWER_WAIT_S
from edge.qr.config import QrConfig
from edge.qr.service import QrService
from edge.qr.sim import SimCamera
from edge.qr.synth import OLD_PORTAL, qr_image
from edge.service import ServiceContext
from edge.testing import FakeClock, FakePager, office_clock, until

VIETQR = ("00020101021138570010A00000072701270006970403011200110123456780208QRIBFTTA"
          "53037045802VN6304F4E5")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def frame_of(*texts: str) -> np.ndarray:
    """A gray frame with each text's QR code side by side on white."""
    images = [qr_image(t, module_px=4) for t in texts]
    height = max(i.shape[0] for i in images)
    return np.hstack([np.pad(i, ((0, height - i.shape[0]), (0, 16)), constant_values=255) for i in images])


def qr_events(store, type="code_scanned"):
    rows = store.query("SELECT payload FROM outbox WHERE topic = 'qr/event' ORDER BY row_id")
    return [e for e in (json.loads(r["payload"]) for r in rows) if e["type"] == type]


def make_qr(store, tmp_path, *, peers=None, clock=time.time, **settings):
    settings.setdefault("camera", "none")
    ctx = ServiceContext(name="qr", site="hn-badinh", device="desk-01", store=store, config=QrConfig(**settings),
                         data_dir=tmp_path, clock=clock, peers=peers or {})
    return QrService(ctx)


def make_pager(store, tmp_path):
    # ANSWER_WAIT_S: a late ACK from the simulator's thread must not become a retry (a second page)
    config = PagerConfig(driver="waveware", port="sim", ack_timeout_s=ANSWER_WAIT_S, retries=1,
                         services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch"),
                                   "chung-thuc": ServiceDef(prefix="B", name="Chứng thực")},
                         counters={"1": CounterDef(services=["ho-tich", "chung-thuc"])})
    ctx = ServiceContext(name="pager", site="hn-badinh", device="desk-01", store=store, config=config,
                         data_dir=tmp_path, clock=office_clock())  # no queue-day change mid-test
    return PagerService(ctx)


def test_desk_scan_issues_real_pager_tickets_and_checks_appointments_in(store, tmp_path):
    async def scenario():
        pager = make_pager(store, tmp_path)
        await pager.start()
        qr = make_qr(store, tmp_path, action="ticket", peers={"pager": pager})
        await qr.start()
        try:
            poster = OLD_PORTAL + "1.001193"
            (birth,) = await qr.scan_frame(frame_of(poster))
            (copy,) = await qr.scan_frame(frame_of("2.000815"))
            code = f"LH-hn-badinh-{time.strftime('%y%m%d')}-0001"
            pager.engine.add_appointment(code, "chung-thuc", pager.ctx.clock())
            (visit,) = await qr.scan_frame(frame_of(code))
            (land,) = await qr.scan_frame(frame_of("1.011441"))  # queue 'dat-dai' is not on this desk
            (nowhere,) = await qr.scan_frame(frame_of("3.999999"))
            return birth, copy, visit, land, nowhere
        finally:
            await qr.stop()
            await pager.stop()

    birth, copy, visit, land, nowhere = run(scenario())
    assert birth["kind"] == "procedure_url" and birth["code"] == "1.001193"
    assert birth["queue_service"] == "ho-tich" and birth["ticket"].startswith("A")
    assert copy["ticket"].startswith("B")
    assert visit["action"] == "checkin" and visit["ticket"].startswith("B")
    assert "dat-dai" in land["refused"] and "ticket" not in land
    assert nowhere["refused"] == "procedure not in the catalog"
    tickets = [json.loads(r["payload"]) for r in store.query("SELECT payload FROM outbox WHERE topic = 'pager/event'")]
    issued = [e for e in tickets if e["type"] == "ticket_issued"]
    assert [e["source"] for e in issued][:2] == ["qr", "qr"]
    assert [e["code"] for e in qr_events(store)] == ["1.001193", "2.000815", visit["code"], "1.011441", "3.999999"]


def test_default_queue_service_for_procedures_without_one(store, tmp_path):
    pager = FakePager()
    qr = make_qr(store, tmp_path, action="ticket", peers={"pager": pager}, default_queue_service="general")

    async def scenario():
        await qr.start()
        return await qr.scan_frame(frame_of("3.999999"))

    (event,) = run(scenario())
    assert pager.issued == [("general", None, "qr")]
    assert event["ticket"] == "A001"


def test_appointment_of_another_office_is_refused(store, tmp_path):
    pager = FakePager()
    qr = make_qr(store, tmp_path, action="ticket", peers={"pager": pager})

    async def scenario():
        await qr.start()
        mine = await qr.scan_frame(frame_of("LH-hn-badinh-260115-0001"))
        other = await qr.scan_frame(frame_of("LH-hcm-q1-260115-0001"))
        return mine, other

    (mine,), (other,) = run(scenario())
    assert mine["ticket"] == "B001"
    assert other["refused"] == "appointment for another office (hcm-q1)"
    assert pager.checked_in == ["LH-hn-badinh-260115-0001"]


def test_without_a_pager_nothing_is_issued(store, tmp_path):
    qr = make_qr(store, tmp_path, action="ticket")

    async def scenario():
        await qr.start()
        return await qr.scan_frame(frame_of("1.001193"))

    (event,) = run(scenario())
    assert event["refused"] == "no pager service on this device"


def test_kiosk_mode_only_reports(store, tmp_path):
    pager = FakePager()
    qr = make_qr(store, tmp_path, action="none", peers={"pager": pager})

    async def scenario():
        await qr.start()
        return await qr.scan_frame(frame_of("1.001193", "000.00.01.H29-240115-0001"))

    events = run(scenario())
    assert sorted(e["kind"] for e in events) == ["procedure", "receipt"]
    assert pager.issued == [] and pager.checked_in == []


def test_same_code_within_the_window_is_handled_once(store, tmp_path):
    clock = FakeClock()
    pager = FakePager()
    qr = make_qr(store, tmp_path, action="ticket", peers={"pager": pager}, clock=clock, dedupe_s=10)
    frame = frame_of("1.001193")

    async def scenario():
        await qr.start()
        first = await qr.scan_frame(frame)
        clock.now += 5
        second = await qr.scan_frame(frame)
        clock.now += 5  # seen at +5, so still within 10 s of the last sighting
        third = await qr.scan_frame(frame)
        clock.now += 11
        fourth = await qr.scan_frame(frame)
        return first, second, third, fourth

    first, second, third, fourth = run(scenario())
    assert (len(first), len(second), len(third), len(fourth)) == (1, 0, 0, 1)
    assert len(pager.issued) == 2


def test_events_carry_references_never_urls_or_free_text(store, tmp_path):
    qr = make_qr(store, tmp_path)
    secret_url = OLD_PORTAL + "1.001193&cccd=001099012345&sdt=0912345678"
    free_text = "Nguyễn Văn A 0912345678"

    async def scenario():
        await qr.start()
        await qr.scan_frame(frame_of(secret_url, free_text))
        await qr.scan_frame(frame_of(VIETQR))

    run(scenario())
    events = qr_events(store)
    assert {e["kind"] for e in events} == {"procedure_url", "unknown", "payment"}
    payloads = " ".join(r["payload"] for r in store.query("SELECT payload FROM outbox"))
    for leak in ("0912345678", "001099012345", "https://", "Nguyễn", "0123456789"):
        assert leak not in payloads
    unknown = next(e for e in events if e["kind"] == "unknown")
    assert unknown["chars"] == len(free_text) and "code" not in unknown
    payment = next(e for e in events if e["kind"] == "payment")
    assert "ignored" in payment["reason"]


def test_subscribers_get_each_scan_with_its_procedure(store, tmp_path):
    qr = make_qr(store, tmp_path)

    async def scenario():
        await qr.start()
        queue = qr.subscribe(maxsize=2)
        for text in ("1.001193", "2.000815", "1.000894"):
            await qr.scan_frame(frame_of(text))
        return [queue.get_nowait() for _ in range(queue.qsize())]

    items = run(scenario())
    assert [i["code"] for i in items] == ["2.000815", "1.000894"]  # the oldest was dropped
    assert items[0]["procedure"]["name"] == "Chứng thực bản sao từ bản chính"


def test_catalog_lookup_api_and_command(store, tmp_path):
    qr = make_qr(store, tmp_path)

    async def scenario():
        await qr.start()
        return await qr.handle_command("lookup", {"code": "1.001193.000.00.00.H29"})

    answer = run(scenario())
    assert answer["procedure"]["matched"] == "1.001193"
    assert qr.catalog_lookup("1.001193")["name"] == "Đăng ký khai sinh"
    assert qr.catalog_lookup("9.000000") is None


def test_catalog_from_config_is_imported_once(store, tmp_path):
    path = tmp_path / "office.csv"
    path.write_text("code,name,queue_service\n1.001193,Đăng ký khai sinh,hotich\n", encoding="utf-8")

    async def scenario():
        for _ in range(2):
            qr = make_qr(store, tmp_path, catalog=str(path))
            await qr.start()
            await qr.stop()

    run(scenario())
    assert len(qr_events(store, "catalog_imported")) == 1
    assert store.query("SELECT count(*) FROM qr_procedure")[0][0] == 1


def test_bad_frames_from_a_camera_are_skipped(store, tmp_path):
    qr = make_qr(store, tmp_path)

    async def scenario():
        await qr.start()
        return await qr.scan_frame(np.zeros((4, 4), np.float64))

    assert run(scenario()) == []


class FlakyCamera:
    def __init__(self, frame, failures):
        self.frame, self.failures = frame, failures

    def read(self):
        if self.failures > 0:
            self.failures -= 1
            raise DeviceNotReady("camera unplugged")
        return self.frame


def test_camera_outage_degrades_then_recovers(store, tmp_path):
    qr = make_qr(store, tmp_path, fps=50)
    rgb = np.repeat(frame_of("1.001193")[:, :, None], 3, axis=2)

    async def scenario():
        await qr.start()
        qr.source = FlakyCamera(rgb, failures=1)
        task = asyncio.create_task(qr.run())
        try:
            seen = []  # the health at each look, until the first scan after the outage
            await until(lambda: seen.append(qr.health()) or qr.scans > 0, what="a scan after the outage")
            return "degraded" in seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await qr.stop()

    assert run(scenario()) is True
    assert qr.health() == "ok"
    assert qr.scans == 1


def test_sim_camera_shows_every_demo_code(store, tmp_path):
    from edge.qr import catalog

    catalog.import_file(store, catalog.SAMPLE)
    clock = FakeClock(0.0)
    camera = SimCamera(tmp_path / "sim", catalog.procedures(store), site="demo-office", interval_s=1.0, clock=clock)
    qr = make_qr(store, tmp_path, clock=clock)

    async def scenario():
        await qr.start()
        kinds = []
        for slot in range(len(camera.frames)):
            clock.now = slot + 0.5
            kinds += [e["kind"] for e in await qr.scan_frame(camera.read(), rgb=True)]
        return kinds

    kinds = run(scenario())
    assert set(kinds) == {"procedure_url", "procedure", "receipt", "appointment", "payment", "unknown"}
    assert len(list((tmp_path / "sim").glob("*.png"))) == len(camera.frames)


def test_service_runs_on_the_sim_camera_and_cleans_up(store, tmp_path):
    qr = make_qr(store, tmp_path, camera="sim", fps=20, sim_interval_s=0.1)

    async def scenario():
        await qr.start()
        folder = qr._sim_dir
        task = asyncio.create_task(qr.run())
        await until(lambda: qr.scans >= 3, what="three scans of the sim camera")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await qr.stop()
        return folder

    folder = run(scenario())
    assert qr.scans >= 3
    assert not folder.exists()
    state = store.query("SELECT payload FROM outbox WHERE topic = 'qr/state' ORDER BY row_id DESC LIMIT 1")
    assert json.loads(state[0]["payload"])["scans"] >= 3


def test_config_section_errors_name_each_key():
    base = {"site": "s", "device": "d", "role": "desk"}
    config = from_dict({**base, "qr": {"camera": "replay:/tmp/x", "action": "ticket", "dedupe_s": 3}})
    assert config.services["qr"].action == "ticket"
    with pytest.raises(ConfigError) as caught:
        from_dict({**base, "qr": {"camera": "webcam", "budget_ms": 0, "allowed_hosts": ["https://gov.vn"],
                                  "action": "print", "dedupe": 3}})
    text = "\n".join(caught.value.problems)
    for key in ("qr.camera", "qr.budget_ms", "qr.allowed_hosts", "qr.action", "qr.dedupe"):
        assert key in text
    assert "did you mean 'dedupe_s'" in text
