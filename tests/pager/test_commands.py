"""The pager's action table: every command the schema accepts has a handler, and nothing else does."""

from edge.pager.commands import HANDLERS, SPEC
from edge.pager.service import PagerService


def test_every_command_has_exactly_one_handler():
    assert set(HANDLERS) == set(SPEC)
    assert PagerService.commands is SPEC  # what MQTT, the screens and the panels are checked against
