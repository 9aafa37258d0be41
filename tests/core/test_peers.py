"""Every peer, real or fake, against its protocol in edge.peers: the same methods, the same
async-ness, callable with the same parameters and defaults. A fake that drifts from the class it
stands for (a renamed argument, a method made async) fails here, not in a test that trusts it."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from edge import peers, testing
from edge.locker.service import LockerService
from edge.pager.service import PagerService
from edge.qr.service import QrService
from edge.service import ServiceContext
from edge.vision.service import VisionService

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def protocol_methods(protocol: type) -> dict[str, object]:
    """The public methods a protocol asks for, its bases' included."""
    found: dict[str, object] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or klass is Protocol or not getattr(klass, "_is_protocol", False):
            continue
        found.update({n: v for n, v in vars(klass).items() if callable(v) and not n.startswith("_")})
    return found


def mismatches(protocol: type, cls: type) -> list[str]:
    """What in `cls` does not answer `protocol`, in words ([] when it does)."""
    problems = []
    for name, wanted in protocol_methods(protocol).items():
        have = getattr(cls, name, None)
        if not callable(have):
            problems.append(f"{cls.__name__}.{name} is missing")
            continue
        if inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(have):
            problems.append(f"{cls.__name__}.{name} must {'' if inspect.iscoroutinefunction(wanted) else 'not '}be async")
        problems += [f"{cls.__name__}.{name}: {p}" for p in _signature_mismatches(wanted, have)]
    return problems


def _signature_mismatches(wanted, have) -> list[str]:
    want = [p for p in inspect.signature(wanted).parameters.values() if p.name != "self"]
    got = {p.name: p for p in inspect.signature(have).parameters.values() if p.name != "self"}
    problems = []
    want_positional = [p.name for p in want if p.kind in POSITIONAL]
    got_positional = [p.name for p in got.values() if p.kind in POSITIONAL]
    if got_positional[:len(want_positional)] != want_positional:
        problems.append(f"positional parameters {got_positional}, expected {want_positional} first")
    for p in want:
        q = got.get(p.name)
        if q is None:
            problems.append(f"no parameter '{p.name}'")
        elif (p.kind == inspect.Parameter.KEYWORD_ONLY) != (q.kind == inspect.Parameter.KEYWORD_ONLY):
            problems.append(f"'{p.name}' is {q.kind.description}, expected {p.kind.description}")
        elif p.default is not inspect.Parameter.empty and q.default != p.default:
            problems.append(f"'{p.name}' defaults to {q.default!r}, expected {p.default!r}")
    wanted_names = {p.name for p in want}
    for q in got.values():
        if q.name not in wanted_names and q.kind not in VARIADIC and q.default is inspect.Parameter.empty:
            problems.append(f"extra parameter '{q.name}' has no default (callers do not pass it)")
    return problems


REAL = [(peers.LockerPeer, LockerService), (peers.PagerPeer, PagerService), (peers.VisionPeer, VisionService),
        (peers.QrPeer, QrService), (peers.VisionForLocker, VisionService), (peers.PagerForQr, PagerService)]
FAKES = [(peers.LockerPeer, testing.FakeLocker), (peers.PagerPeer, testing.FakePager),
         (peers.VisionPeer, testing.FakeVision), (peers.QrPeer, testing.FakeQr)]


@pytest.mark.parametrize("protocol, cls", REAL + FAKES, ids=lambda x: x.__name__)
def test_each_peer_answers_its_protocol(protocol, cls):
    assert mismatches(protocol, cls) == []


def test_a_drifted_fake_is_named():
    class DriftedVision(testing.FakeVision):
        def enrolled(self, receipt):  # made sync, argument renamed
            return False

    assert mismatches(peers.VisionPeer, DriftedVision) == [
        "DriftedVision.enrolled must be async",
        "DriftedVision.enrolled: positional parameters ['receipt'], expected ['dossier'] first",
        "DriftedVision.enrolled: no parameter 'dossier'",
        "DriftedVision.enrolled: extra parameter 'receipt' has no default (callers do not pass it)"]


def test_the_context_hands_each_peer_out_typed_by_name(tmp_path):
    pager, vision = testing.FakePager(), testing.FakeVision()
    ctx = ServiceContext(name="kiosk", site="s", device="d", store=None, config=None, data_dir=tmp_path,
                         peers={"pager": pager, "vision": vision})
    assert ctx.pager() is pager and ctx.vision() is vision
    assert ctx.locker() is None and ctx.qr() is None
    assert set(peers.BY_NAME) == {"locker", "pager", "vision", "qr"}


def test_the_qr_kinds_the_services_act_on_are_kinds_the_parser_gives():
    from edge.qr import codes

    assert set(codes.PROCEDURE_KINDS) | {codes.RECEIPT_KIND} <= set(codes.KINDS)
    assert codes.parse("000.00.01.H29-261207-0001").kind == codes.RECEIPT_KIND
    assert codes.parse("1.001193").kind in codes.PROCEDURE_KINDS
