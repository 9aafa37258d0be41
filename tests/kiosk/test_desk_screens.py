"""Reception, counter panel and wall display in Chromium against the REAL qr service (its catalog,
its decoder on a QR image) and the REAL pager service on its JTECH pty simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.kiosk.config import KioskConfig
from edge.service import ServiceContext
from kiosk_harness import Served, at_step, served_desk, shot
from kiosk_fakes import FakeLocker
from edge.testing import DEADLINE_S, office_clock, until

pytestmark = pytest.mark.browser

CODE = "000.00.01.H29-240115-0001"


@pytest.fixture
def desk(loop_thread, store, tmp_path):
    from edge.qr.config import QrConfig

    with served_desk(loop_thread, store, tmp_path, qr=QrConfig(camera="none", action="none"), queue_name_en="Civil status",
                     make_peers=lambda: {"locker": FakeLocker({CODE: {"status": "waiting", "compartment": 4, "pin": "1357"}})}) as services:
        yield services


def camera_reads(loop_thread, qr, text):
    """The QR service's camera sees a printed code (a clean QR image, decoded for real)."""
    from edge.qr.synth import qr_image
    frame = qr_image(text, module_px=6)
    handled = loop_thread.call(qr.scan_frame(frame))
    assert handled and handled[0].get("code"), handled


def test_reception_shows_the_catalog_entry_and_gives_a_card_the_counter_then_calls(desk, page, loop_thread, tmp_path):
    kiosk, qr, pager = desk["kiosk"], desk["qr"], desk["pager"]
    page.goto(kiosk.url + "/reception")
    page.wait_for_selector("body[data-ready='1']")
    # the desk camera reads a procedure poster: the screen follows by itself
    camera_reads(loop_thread, qr, "https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc=1.001193")
    page.wait_for_selector("#procedure:not([hidden])")
    assert page.inner_text("#proc-name") == "Đăng ký khai sinh"
    assert "Giấy chứng sinh" in page.locator("#proc-papers li").all_inner_texts()
    assert page.inner_text("#proc-time") == "Trong ngày" and page.inner_text("#proc-service") == "Hộ tịch"
    page.select_option("#priority", "elderly")  # staff see an elderly citizen
    shot(page, tmp_path, "reception")
    page.click("#issue")
    page.wait_for_selector("#ticket:not([hidden])")
    ticket = page.inner_text("#ticket-number")
    card = int(page.inner_text("#ticket-card").rsplit(" ", 1)[1])
    assert ticket == "Số thứ tự A001" and 1 <= card <= 99
    view = pager.view()
    assert view["services"]["ho-tich"]["waiting"] == 1
    # a typed code that is not a procedure gets a clear answer
    page.fill("#scan", CODE)
    page.press("#scan", "Enter")
    page.wait_for_function("document.querySelector('#scan-error').textContent.includes('không phải mã thủ tục')")

    page.goto(kiosk.url + "/counter?c=1")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#call_next")
    page.wait_for_function("document.querySelector('#serving').textContent === 'A001'")
    shot(page, tmp_path, "counter")

    # The page goes out after the call's commit, through the transmitter's queue and the pty: real
    # work, given the suite's deadline (it was 4 s); the loop thread's call outlasts that deadline.
    loop_thread.call(until(lambda: card in pager.sim.vibrated, what="the citizen's card vibrating on the simulator"),
                     timeout_s=2 * DEADLINE_S)

    page.goto(kiosk.url + "/display")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("document.querySelector('#latest-ticket').textContent === 'A001'")
    shot(page, tmp_path, "display")


def test_receipt_read_by_the_camera_fills_in_the_code_of_a_started_pickup(desk, page, loop_thread):
    kiosk, qr = desk["kiosk"], desk["qr"]
    page.goto(kiosk.url + "/kiosk")
    page.wait_for_selector("body[data-ready='1']")
    camera_reads(loop_thread, qr, "000.00.01.H29-240115-0009")  # a receipt left in view: nobody pressed start
    assert kiosk.flow.view()["step"] == "start"
    page.click("#start")
    at_step(page, "code")
    camera_reads(loop_thread, qr, CODE)
    page.wait_for_function(f"document.querySelector('#code').value === '{CODE}'")  # offered, not submitted
    assert kiosk.flow.view()["attempts_left"] == 3
    page.click("#code-submit")
    at_step(page, "pin")  # no face consent here: straight to the PIN
    page.fill("#pin", "1357")
    page.click("#pin-submit")
    at_step(page, "open")
    assert page.locator(".locker div.open").all_inner_texts() == ["4"]


# -- issue 19: messages for people, the connection banner, the wall display ----------------------------

def _desk(loop_thread, store, tmp_path, *, cards=99, port=0, highlight_s=8.0, counters=("1", "2"), **kiosk_config):
    """The real pager (JTECH pty simulator, on an `office_clock`) and kiosk services; returns (services, served)."""
    from edge.kiosk.service import KioskService
    from edge.pager.config import CounterDef, PagerConfig, ServiceDef
    from edge.pager.service import PagerService
    from edge.qr.config import QrConfig
    from edge.qr.service import QrService

    peers: dict = {}

    def ctx(name, cfg, **more):
        return ServiceContext(name=name, site="test", device="desk-01", store=store, config=cfg,
                              data_dir=tmp_path, peers=peers, **more)

    pager_cfg = PagerConfig(port="sim", cards=cards, double_press_s=0,
                            services={"ho-tich": ServiceDef(prefix="A", name="Hộ tịch", name_en="Civil status"),
                                      "dat-dai": ServiceDef(prefix="B", name="Đất đai", name_en="Land")},
                            counters={c: CounterDef(services=["ho-tich", "dat-dai"]) for c in counters})
    services = {"qr": QrService(ctx("qr", QrConfig(camera="none", action="none"))),
                "pager": PagerService(ctx("pager", pager_cfg, clock=office_clock())),  # no day change mid-test
                "kiosk": KioskService(ctx("kiosk", replace(KioskConfig(), port=port, display_highlight_s=highlight_s,
                                                           **kiosk_config)))}

    async def build():
        peers.update(services, locker=FakeLocker({CODE: {"status": "waiting", "compartment": 4, "pin": "1357"}}))
        served = Served(loop_thread, list(services.values()))
        await served.start()
        return served

    return services, loop_thread.call(build(), timeout_s=60)


@pytest.fixture
def hall(loop_thread, store, tmp_path):
    services, served = _desk(loop_thread, store, tmp_path, cards=2, highlight_s=3.0)
    try:
        yield services
    finally:
        loop_thread.call(served.stop())


@pytest.fixture
def hall_short_voice(loop_thread, store, tmp_path):
    """The hall with a short voice call ("Số A001", about 1 s instead of 3 s): the calls queue behind
    each other's voice just the same, the test waits less for them."""
    services, served = _desk(loop_thread, store, tmp_path, cards=2, highlight_s=3.0, display_voice_text="Số {ticket}")
    try:
        yield services
    finally:
        loop_thread.call(served.stop())


def _font_px(page, selector):
    return page.eval_on_selector(selector, "el => parseFloat(getComputedStyle(el).fontSize)")


def test_every_device_screen_says_connection_lost_and_recovers_by_itself(loop_thread, store, tmp_path, chromium):
    """Stop the device's web service: each screen shows the banner within 5 s and greys its buttons;
    start it again on the same port: the banner goes and the buttons work again, with no reload."""
    from edge.kiosk.service import KioskService
    services, served = _desk(loop_thread, store, tmp_path)
    kiosk = services["kiosk"]
    url, port = kiosk.url, int(kiosk.url.rsplit(":", 1)[1])
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, locale="vi-VN")
    again = None
    try:
        pages = {}
        for path in ("/counter?c=1", "/display", "/reception", "/loading", "/status", "/kiosk", "/"):
            pages[path] = context.new_page()
            pages[path].goto(url + path)
            pages[path].wait_for_selector("body[data-ready='1']")
        # (a ping a busy machine answered after 2 s greys the buttons until the next one: wait it out)
        from playwright.sync_api import expect
        expect(pages["/counter?c=1"].locator("#call_next")).to_be_enabled(timeout=10_000)

        loop_thread.call(kiosk.stop())  # the device service stops answering
        for path, pg in pages.items():
            pg.wait_for_selector("#conn-banner:not([hidden])", timeout=5_000)
            assert pg.inner_text("#conn-banner") == "Mất kết nối – đang thử lại", path
        counter = pages["/counter?c=1"]
        assert counter.is_disabled("#call_next") and counter.is_disabled("#pause")
        assert pages["/loading"].is_disabled("#load")
        shot(pages["/display"], tmp_path, "display-connection-lost")

        async def restart():
            fresh = KioskService(replace_ctx(kiosk.ctx, port))
            await fresh.start()
            return fresh
        again = loop_thread.call(restart())
        for path, pg in pages.items():
            pg.wait_for_selector("#conn-banner", state="hidden", timeout=5_000)
        counter.wait_for_function("!document.querySelector('#call_next').disabled")
        counter.click("#call_next")  # the stream and the buttons work again: nobody waits, it says so
        counter.wait_for_function("document.querySelector('#answer').textContent === 'Không có ai đang chờ'")
    finally:
        context.close()
        if again is not None:
            loop_thread.call(again.stop())
        served.services = [services["qr"], services["pager"]]
        served.tasks = served.tasks[:2]
        loop_thread.call(served.stop())


def replace_ctx(ctx, port):
    return replace(ctx, config=replace(ctx.config, port=port))


def test_the_issue_s_raw_errors_reach_the_desk_as_sentences_beside_their_field(hall, page, loop_thread, tmp_path):
    kiosk, pager = hall["kiosk"], hall["pager"]
    # counter paused: "counter 1 is paused: resume it first" becomes what to press
    page.goto(kiosk.url + "/counter?c=1")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#pause")
    page.wait_for_function("document.querySelector('#answer').textContent === 'Quầy đã tạm nghỉ: không nhận số mới'")
    page.wait_for_selector("#paused-badge:not([hidden])")
    page.click("#call_next")
    page.wait_for_function("""document.querySelector('#answer').textContent ===
                              'Quầy 1 đang tạm nghỉ. Bấm "Tiếp tục phục vụ" trước khi gọi số.'""")
    shot(page, tmp_path, "counter-paused-error")
    page.click("#lang")
    page.wait_for_function("document.querySelector('#call_next').textContent === 'Call next'")
    page.click("#call_next")
    page.wait_for_function("document.querySelector('#answer').textContent.startsWith('Counter 1 is paused. Press')")
    page.click("#lang")
    page.click("#pause")  # resume
    page.wait_for_selector("#paused-badge", state="hidden")

    # reception: both cards out ("all 2 cards are out…") — say to collect cards, beside the button
    for _ in range(2):
        loop_thread.call(pager.issue("ho-tich", priority=None, source="desk"))
    page.goto(kiosk.url + "/reception")
    page.wait_for_selector("body[data-ready='1']")
    # the header warned before it came to this: cards left, from the pager's live view
    page.wait_for_function("document.querySelector('#cards').textContent === 'Chỉ còn 0 thẻ rung: thu lại thẻ ở các quầy'")
    # a procedure whose queue this office's pager does not have ("unknown service 'cu-tru'"): said
    # before anyone presses the button, which is greyed
    page.fill("#scan", "1.004222")  # Đăng ký thường trú, queue cu-tru
    page.press("#scan", "Enter")
    page.wait_for_selector("#procedure:not([hidden])")
    assert page.inner_text("#issue-error") == ("Lĩnh vực cu-tru chưa có hàng chờ tại điểm này. "
                                               "Hướng dẫn công dân đến quầy phụ trách hoặc báo cán bộ kỹ thuật.")
    assert page.is_disabled("#issue")
    page.evaluate("""() => { document.querySelector('#procedure').hidden = false; }""")
    page.evaluate("""() => fetch('/api/reception/issue', {method: 'POST', headers: {'Content-Type': 'application/json'},
                      body: JSON.stringify({service: 'ho-tich'})}).then(r => r.json()).then(r => Edge.showError(r, Edge.$('issue-error')))""")
    page.wait_for_function("document.querySelector('#issue-error').textContent.length > 0")
    assert page.inner_text("#issue-error") == "Đã phát hết 2 thẻ rung. Thu lại thẻ ở các quầy rồi cấp tiếp."

    # loading: wrong staff PIN and a bad citizen PIN, each beside its field, on a 1024×768 screen
    page.goto(kiosk.url + "/loading")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#staff_pin", "1111")
    page.fill("#receipt", CODE)
    page.click("#load")
    page.wait_for_selector("#staff_pin-error")
    assert page.inner_text("#staff_pin-error") == "Mã PIN cán bộ không đúng. Nhập lại mã PIN cán bộ của bạn."
    box = page.locator("#staff_pin-error").bounding_box()
    assert box["y"] + box["height"] <= 768
    page.fill("#staff_pin", "9999")
    page.fill("#pin", "12")
    page.route("**/api/loading", lambda route: route.fulfill(  # the real locker's answer to a 2-digit PIN
        status=400, content_type="application/json",
        body='{"ok": false, "error": "bad_input: PIN must be 4-8 digits", "code": "citizen_pin_format", "params": {}, "field": "pin"}'))
    page.click("#load")
    page.wait_for_selector("#pin-error")
    assert page.locator("#staff_pin-error").count() == 0  # the earlier message is gone
    assert page.inner_text("#pin-error") == "Mã PIN cho công dân phải gồm 4 đến 8 chữ số (hoặc để trống)."
    button, note = page.locator("#load").bounding_box(), page.locator("#pin-error").bounding_box()
    assert button["y"] + button["height"] <= 768 and note["y"] + note["height"] <= 768, "below the fold on 1024×768"
    assert page.evaluate("document.documentElement.scrollHeight") <= 768
    shot(page, tmp_path, "loading-error")


def test_the_wall_display_highlights_the_newest_call_large_enough_for_a_hall(hall_short_voice, chromium, loop_thread,
                                                                           tmp_path):
    kiosk, pager = hall_short_voice["kiosk"], hall_short_voice["pager"]
    context = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="vi-VN")
    page = context.new_page()
    try:
        loop_thread.call(pager.issue("ho-tich", priority=None, source="desk"))
        loop_thread.call(pager.issue("dat-dai", priority=None, source="desk"))
        page.goto(kiosk.url + "/display")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_function("document.querySelector('#waits').textContent.includes('1 người chờ')")
        assert "0 phút" not in page.inner_text("#waits")  # an honest estimate while people wait
        assert "khoảng 5 phút" in page.inner_text("#waits")  # default service time 300 s, one ahead

        loop_thread.call(pager.call_next("1"))
        # highlighted and fresh, seen in one look: the highlight lasts 3 s here, which a busy browser
        # could have passed by a second, separate look
        page.wait_for_selector("body[data-highlight='A001'] #latest.fresh", timeout=5_000)
        assert page.inner_text("#latest-ticket") == "A001" and page.inner_text("#latest-counter") == "1"
        assert page.evaluate("Number(document.body.dataset.chimes || 0)") == 1
        assert _font_px(page, "#latest-ticket") >= 0.12 * 1080
        shot(page, tmp_path, "display-call")

        loop_thread.call(pager.call_next("2"))  # the newest on top, the previous one in the history
        page.wait_for_selector("body[data-highlight='B001']", timeout=5_000)
        assert page.locator("#history td.num").all_inner_texts()[:2] == ["A001", "1"]
        assert _font_px(page, "#history td.num") >= 0.12 * 1080
        page.wait_for_selector("#latest:not(.fresh)", timeout=6_000)  # the highlight lasts display_highlight_s
        assert page.evaluate("document.body.dataset.highlight") is None
        loop_thread.call(pager.recall("1"))  # A001 called again: back on top, highlighted, chimed again
        page.wait_for_selector("body[data-highlight='A001']", timeout=5_000)
        assert page.inner_text("#latest-ticket") == "A001"
        # after the previous calls' voices, each a WAV espeak-ng renders on the device (real work, and
        # up to 8 s each when a clip never ends): the third chime is given their time
        page.wait_for_function("Number(document.body.dataset.chimes) === 3", timeout=30_000)
        assert page.locator("#history td.num").all_inner_texts()[:2] == ["B001", "2"]
        assert page.evaluate("document.documentElement.scrollHeight") <= 1080
    finally:
        context.close()


def test_the_voice_call_is_a_wav_rendered_on_the_device(hall, page):
    import shutil
    import urllib.request
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make setup installs it)")
    kiosk = hall["kiosk"]
    with urllib.request.urlopen(kiosk.url + "/api/display/voice?ticket=A012&counter=2", timeout=20) as r:
        assert r.headers["Content-Type"] == "audio/wav"
        data = r.read()
    import io
    import wave
    with wave.open(io.BytesIO(data)) as clip:  # a real header: the browser knows how long it is
        seconds = clip.getnframes() / clip.getframerate()
    assert 1.0 < seconds < 6.0, seconds
    page.goto(kiosk.url + "/display")  # and Chromium can load it as the display does
    page.wait_for_selector("body[data-ready='1']")
    duration = page.evaluate("""() => new Promise(done => {
        const clip = new Audio('/api/display/voice?ticket=A012&counter=2');
        clip.onloadedmetadata = () => done(clip.duration); clip.onerror = () => done(-1); })""")
    assert abs(duration - seconds) < 0.1, duration
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(kiosk.url + "/api/display/voice?ticket=A012;rm&counter=2", timeout=20)
    assert err.value.code == 400


def test_the_index_lists_every_counter(hall, page):
    page.goto(hall["kiosk"].url + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("a[data-counter]").all_inner_texts() == ["Quầy 1", "Quầy 2"]


SIZES = {"1024x768": (1024, 768), "1280x800": (1280, 800), "1920x1080": (1920, 1080), "390x844": (390, 844)}
SETTLED = "document.fonts.ready.then(() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done))))"


def test_screens_at_every_size_fit_without_sideways_scrolling(loop_thread, store, tmp_path, chromium):
    """Full-page screenshots of each desk screen at the issue's sizes (kept in $EDGE_SCREENSHOT_DIR,
    e.g. docs/screenshots), each checked for sideways scrolling; the display must fit one screen."""
    import os
    import shutil
    services, served = _desk(loop_thread, store, tmp_path, counters=("1", "2", "3"))
    kiosk, pager = services["kiosk"], services["pager"]
    try:
        for i in range(9):
            loop_thread.call(pager.issue("ho-tich" if i % 3 else "dat-dai", priority=None, source="desk"))
        for counter in ("1", "2", "3"):
            loop_thread.call(pager.call_next(counter))
        export = os.environ.get("EDGE_SCREENSHOT_DIR")
        for size, (w, h) in SIZES.items():
            context = chromium.new_context(viewport={"width": w, "height": h}, locale="vi-VN")
            page = context.new_page()
            page.set_default_timeout(10_000)
            try:
                screens = ["/display"] if size == "1920x1080" else ["/", "/counter?c=2", "/reception", "/loading", "/status", "/display"]
                for path in screens:
                    page.goto(kiosk.url + path)
                    page.wait_for_selector("body[data-ready='1']")
                    if path == "/reception":
                        page.fill("#scan", "1.001193")
                        page.press("#scan", "Enter")
                        page.wait_for_selector("#procedure:not([hidden])")
                        if size == "1024x768":  # the button staff press next is above the fold
                            box = page.locator("#issue").bounding_box()
                            assert box["y"] + box["height"] <= h, f"#issue ends at {box['y'] + box['height']} px"
                    if path == "/counter?c=2":
                        page.wait_for_selector("#waiting tr[data-service]")
                    if path == "/display":
                        page.wait_for_function("document.querySelector('#latest-ticket').textContent !== '—'")
                    page.evaluate(SETTLED)  # fonts in and the data just drawn laid out, not a fixed 200 ms
                    name = {"/": "index", "/counter?c=2": "counter"}.get(path, path.strip("/"))
                    out = tmp_path / f"kiosk-{name}-{size}.png"
                    page.screenshot(path=str(out), full_page=True)
                    if export:
                        shutil.copy(out, os.path.join(export, out.name))
                    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    widest = page.evaluate("""() => [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                        .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(-3)""")
                    assert overflow <= 0, f"{path} at {size} scrolls sideways by {overflow} px: {widest}"
                    if path == "/counter?c=2" and size in ("1024x768", "1280x800"):  # all of it, no scrolling
                        assert page.evaluate("document.documentElement.scrollHeight") <= h
                    if path == "/display" and size != "390x844":
                        assert page.evaluate("document.documentElement.scrollHeight") <= h, f"the display at {size} scrolls"
            finally:
                context.close()
    finally:
        loop_thread.call(served.stop())
