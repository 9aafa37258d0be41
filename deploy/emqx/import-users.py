#!/usr/bin/env python3
"""Put device (and central) credentials into the EMQX cluster's built-in database.

    import-users.py --api https://emqx-admin.example:18083 --secrets /etc/mosquitto/edge/secrets
    import-users.py --api ... --user kiosk-01 --password-file kiosk-01.password

The secrets folder is the one make-passwd.sh keeps (USER.password files), so a city that moves
from one office mosquitto to the cluster keeps every device's password. Users that exist get their
password replaced. API key and secret (EMQX dashboard > System > API keys) come from
EMQX_API_KEY and EMQX_API_SECRET. Names must be [a-z0-9-]: EMQX would accept `+`, `#` or `/`
and the ACL's placeholders would then match other devices' topics.

    import-users.py --api ... --secrets DIR --devices DEVICES

With the provisioning list (`SITE DEVICE` per line, as deploy/mosquitto/make-acl.sh and
`edge central devices import` read it), each device's account is named SITE.DEVICE: emqx.conf
turns that name into the client attributes the ACL binds to, so the device can publish under its
own site only. A device password without a line in DEVICES is refused (it would have no rights).
Set the same SITE.DEVICE as `broker.username` in the device's config.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

USER_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}(\.[a-z0-9][a-z0-9-]{0,62})?")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
AUTHENTICATOR = "password_based:built_in_database"
TIMEOUT_S = 15


class ApiError(Exception):
    """Error raised when the EMQX HTTP API refuses a request."""


def collect_users(secrets: Path | None, user: str | None, password_file: Path | None) -> dict[str, str]:
    users: dict[str, str] = {}
    if secrets is not None:
        for path in sorted(secrets.glob("*.password")):
            users[path.stem] = path.read_text().strip()
        if not users:
            raise SystemExit(f"no *.password files in {secrets}")
    if user is not None:
        if password_file is None:
            raise SystemExit("--user needs --password-file")
        users[user] = password_file.read_text().strip()
    bad = [name for name in users if not USER_PATTERN.fullmatch(name)]
    if bad:
        raise SystemExit(f"bad user name(s) {bad}: expected [a-z0-9-], 1-63 characters")
    empty = [name for name, pw in users.items() if not pw]
    if empty:
        raise SystemExit(f"empty password for {empty}")
    return users


def read_devices(path: Path) -> dict[str, str]:
    """device -> site from the provisioning list (`SITE DEVICE` per line, # comments)."""
    sites: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not all(NAME_PATTERN.fullmatch(f) for f in fields):
            raise SystemExit(f"{path}:{number}: expected 'SITE DEVICE' of [a-z0-9-], found {line.strip()!r}")
        site, device = fields
        if sites.setdefault(device, site) != site:
            raise SystemExit(f"{path}:{number}: device {device!r} listed twice (a device account has one site)")
    return sites


def site_bound(users: dict[str, str], sites: dict[str, str]) -> dict[str, str]:
    """USER -> SITE.USER for every device; `central` keeps its name."""
    unknown = sorted(u for u in users if u != "central" and u not in sites)
    if unknown:
        raise SystemExit(f"no site for {unknown} in the devices list: add 'SITE DEVICE' lines")
    return {(u if u == "central" else f"{sites[u]}.{u}"): pw for u, pw in users.items()}


class Api:
    def __init__(self, base: str, key: str, secret: str):
        self.base = base.rstrip("/")
        token = base64.b64encode(f"{key}:{secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: dict) -> int:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method=method,
                                     headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code
        except urllib.error.URLError as err:
            raise ApiError(f"{self.base}: {err.reason}") from err


def upsert(api: Api, user: str, password: str) -> str:
    users = f"/api/v5/authentication/{urllib.parse.quote(AUTHENTICATOR, safe='')}/users"
    status = api.request("POST", users, {"user_id": user, "password": password, "is_superuser": False})
    if status in (200, 201):
        return "added"
    if status == 409:  # already there: set the password again
        status = api.request("PUT", f"{users}/{urllib.parse.quote(user, safe='')}",
                             {"password": password, "is_superuser": False})
        if status in (200, 204):
            return "updated"
    raise ApiError(f"user {user}: HTTP {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", required=True, help="EMQX dashboard/API base URL, e.g. http://127.0.0.1:18083")
    parser.add_argument("--secrets", type=Path, help="folder of USER.password files (from make-passwd.sh)")
    parser.add_argument("--user")
    parser.add_argument("--password-file", type=Path)
    parser.add_argument("--devices", type=Path,
                        help="provisioning list (SITE DEVICE per line): name each device's account SITE.DEVICE")
    parser.add_argument("--dry-run", action="store_true", help="list the users, change nothing")
    args = parser.parse_args(argv)
    if args.secrets is None and args.user is None:
        parser.error("give --secrets DIR and/or --user NAME --password-file FILE")
    users = collect_users(args.secrets, args.user, args.password_file)
    if args.devices is not None:
        users = site_bound(users, read_devices(args.devices))
    if args.dry_run:
        for name in users:
            print(f"would add or update {name}")
        return 0
    key, secret = os.environ.get("EMQX_API_KEY"), os.environ.get("EMQX_API_SECRET")
    if not key or not secret:
        parser.error("set EMQX_API_KEY and EMQX_API_SECRET (an API key from the EMQX dashboard)")
    api = Api(args.api, key, secret)
    failed = 0
    for name, password in users.items():
        try:
            print(f"{name}: {upsert(api, name, password)}")
        except ApiError as err:
            print(f"{name}: FAILED: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
