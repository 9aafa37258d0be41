"""The demo's quiet terminal: one line per kind per period, and the held-back lines are counted."""

import logging

from edge.demo_quiet import Quiet, QuietLogFilter, mqtt_kind


def test_one_line_per_kind_per_period_with_the_held_ones_counted():
    now, out = [0.0], []
    quiet = Quiet(out.append, period_s=10, clock=lambda: now[0])
    for i in range(262):  # the 262 "all 99 cards" lines
        now[0] = i * 0.5
        quiet.line("pager.refused", f"refused {i}")
        quiet.line("locker.door", f"door {i}")
    assert len(out) == 2 * 14  # 131 s of lines: one per kind every 10 s
    assert out[:2] == ["refused 0", "door 0"]
    assert out[2] == "refused 20  (+19 more)"
    assert quiet.held_total() == 2 * 262 - len(out)  # every line not printed is counted


def test_mqtt_lines_are_kinded_by_service_and_event_type():
    assert mqtt_kind("demo-office/demo-01 pager: #11 ticket_called card=1 counter=3") == "mqtt.pager.ticket_called"
    assert mqtt_kind("demo-office/demo-01 is online (v0.1.0) kiosk=ok") == "mqtt.is online"


def test_the_log_filter_lets_errors_through_and_one_info_line_per_logger():
    now = [0.0]
    quiet = Quiet(lambda line: None, period_s=10, clock=lambda: now[0])
    flt = QuietLogFilter(quiet)

    def record(level, msg, name="edge.pager"):
        return logging.LogRecord(name, level, __file__, 1, msg, None, None)
    assert flt.filter(record(logging.INFO, "pager: counter 1 calls A001"))
    assert not flt.filter(record(logging.INFO, "pager: issued B002"))  # same logger within the period
    assert flt.filter(record(logging.INFO, "locker: door 2 closed", name="edge.locker"))
    assert flt.filter(record(logging.ERROR, "pager: transmitter gone"))
    assert flt.filter(record(logging.ERROR, "pager: transmitter gone"))
    now[0] = 11.0
    later = record(logging.INFO, "pager: counter 2 calls A002")
    assert flt.filter(later) and later.getMessage() == "pager: counter 2 calls A002  (+1 more)"
