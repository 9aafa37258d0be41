"""The office dashboard and JSON API (aiohttp), served by `edge central run` on the office LAN.

One module per screen (`fleet`, `queues`, `lockers`, `events`, `commands`, `login`) plus the JSON
API (`api`); each has `add_routes(app)`. Pages are Jinja2 templates with autoescape
(`edge/central/templates/`, all extending `base.html`), styles and the one script in
`edge/central/static/`: nothing from the internet. Vietnamese by default, `?lang=en` switches
(kept in a cookie). Every page and read API needs a login (see `guard` and `edge.central.auth`).

A new screen: a module with `add_routes(app)` and a template extending `base.html`, listed in
SCREENS (and `common.add_nav(key, path)` for a header link, with its text in `common.TEXT`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from edge.central.web import api, commands, events, fleet, lockers, login, queues, ratings
from edge.central.web.common import CENTRAL_KEY, MAX_BODY
from edge.central.web.db import AsyncDb
from edge.central.web.guard import guard

__all__ = ["AsyncDb", "make_app", "SCREENS"]

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
SCREENS = [api, login, fleet, queues, lockers, events, commands, ratings]


def make_app(central) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[CENTRAL_KEY] = central
    if not central.staff.tokens and not central.staff.logins:
        log.warning("central: no staff in --staff (or no --staff): nobody can sign in to the dashboard; "
                    "see docs/central.md 'Who may do what'")
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(ROOT / "templates"), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    for screen in SCREENS:
        screen.add_routes(app)
    app.router.add_static("/static/", ROOT / "static", append_version=False)
    return app
