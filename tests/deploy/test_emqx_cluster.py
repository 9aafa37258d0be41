"""The EMQX cluster files in deploy/emqx: the ACL grants exactly what the mosquitto ACL grants
(evaluated with EMQX's first-match rules and topic matching), deny is the default, the three
nodes agree on their seeds, and import-users.py speaks the EMQX user API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

EMQX = Path(__file__).resolve().parents[2] / "deploy" / "emqx"

# (username, action, topic or filter, allowed): shared with the live mosquitto test.
POLICY = [(r["user"], r["action"], r["topic"], r["allowed"])
          for r in json.loads((Path(__file__).parent / "acl_policy.json").read_text())["rules"]]


# -- a small evaluator of EMQX's file ACL (emqx_authz_file / emqx_authz_rule) -----------------

def parse_acl(text: str) -> list[tuple]:
    """Erlang terms -> Python tuples/lists/strings/atoms (the subset acl.conf uses)."""
    text = "\n".join(line.split("%%")[0] for line in text.splitlines())
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\],.]|[a-z_][a-zA-Z0-9_]*', text)
    pos = 0

    def term():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok in "{[":
            close = "}" if tok == "{" else "]"
            items = []
            while tokens[pos] != close:
                items.append(term())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return tuple(items) if close == "}" else list(items)
        if tok.startswith('"'):
            return ("str", tok[1:-1])
        return tok

    rules = []
    while pos < len(tokens):
        rules.append(term())
        assert tokens[pos] == ".", f"rule not ended by '.': {rules[-1]}"
        pos += 1
    return rules


def topic_matches(name: str, rule_filter: str) -> bool:
    """emqx_topic:match/2: a wildcard in `name` (a subscription) only matches the same wildcard."""
    n, f = name.split("/"), rule_filter.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(n):
            return False
        if level == "+":
            if n[i] == "#":
                return False
            continue
        if level != n[i]:
            return False
    return len(n) == len(f)


def who_matches(who, username: str) -> bool:
    if who == "all":
        return True
    kind, value = who
    assert kind in ("username", "user"), who
    return value == ("str", username)


# Device accounts on the cluster are SITE.DEVICE (emqx.conf's client_attrs_init splits them);
# the policy table names the device, whose site in the table is `hn`.
EMQX_USERNAME = {"kiosk-a": "hn.kiosk-a"}


def client_attrs(username: str) -> dict[str, str]:
    """What emqx.conf's mqtt.client_attrs_init sets: nth(1|2, tokens(username, '.'))."""
    parts = username.split(".")
    return {"site": parts[0], **({"device": parts[1]} if len(parts) > 1 else {})}


def render(rule_filter: str, username: str) -> str:
    """Placeholders as EMQX fills them; one it cannot fill stays as text and matches nothing."""
    rule_filter = rule_filter.replace("${username}", username)
    for name, value in client_attrs(username).items():
        rule_filter = rule_filter.replace("${client_attrs.%s}" % name, value)
    return rule_filter


def decide(rules: list, username: str, action: str, topic: str, no_match: str) -> bool:
    if action == "subscribe" and topic.startswith("$share/"):
        topic = topic.split("/", 2)[2]  # EMQX authorizes `$share/<group>/t` as `t`
    for rule in rules:
        if rule == ("deny", "all") or rule == ("allow", "all"):
            return rule[0] == "allow"
        permission, who, rule_action, filters = rule
        if not who_matches(who, username) or rule_action not in (action, "all"):
            continue
        for flt in filters:
            if isinstance(flt, tuple) and flt[0] == "eq":
                hit = flt[1][1] == topic
            else:
                hit = topic_matches(topic, render(flt[1], username))
            if hit:
                return permission == "allow"
    return no_match == "allow"


def test_acl_ends_with_deny_all():
    rules = parse_acl((EMQX / "acl.conf").read_text())
    assert rules[-1] == ("deny", "all")


@pytest.mark.parametrize("username,action,topic,allowed", POLICY)
def test_acl_grants_exactly_the_policy(username, action, topic, allowed):
    rules = parse_acl((EMQX / "acl.conf").read_text())
    assert decide(rules, EMQX_USERNAME.get(username, username), action, topic, no_match="deny") is allowed


@pytest.mark.parametrize("username,action,topic", [
    ("hn.kiosk-a", "publish", "motcua/v1/any-site/kiosk-a/status"),        # the phantom office
    ("hn.kiosk-a", "publish", "motcua/v1/any-site/kiosk-a/locker/event"),
    ("hn.kiosk-a", "subscribe", "motcua/v1/any-site/kiosk-a/+/cmd"),
    ("kiosk-a", "publish", "motcua/v1/kiosk-a/kiosk-a/status"),          # no site in the name: no rights
    ("kiosk-a", "publish", "motcua/v1/hn/kiosk-a/status"),
])
def test_acl_binds_a_device_to_its_site(username, action, topic):
    rules = parse_acl((EMQX / "acl.conf").read_text())
    assert decide(rules, username, action, topic, no_match="deny") is False


def test_emqx_conf_takes_site_and_device_from_the_authenticated_username():
    text = (EMQX / "emqx.conf").read_text()
    assert """{expression = "nth(1, tokens(username, '.'))", set_as_attr = "site"}""" in text
    assert """{expression = "nth(2, tokens(username, '.'))", set_as_attr = "device"}""" in text


def emqx_conf():
    pyhocon = pytest.importorskip("pyhocon", reason="pyhocon (dev extra) parses the HOCON file")
    return pyhocon.ConfigFactory.parse_file(str(EMQX / "emqx.conf"))


def test_emqx_conf_denies_by_default_and_refuses_unknown_users():
    conf = emqx_conf()
    assert conf["authorization"]["no_match"] == "deny"
    (source,) = conf["authorization"]["sources"]
    assert (source["type"], source["enable"], source["path"]) == ("file", True, "${EMQX_ETC_DIR}/acl.conf")
    (authn,) = conf["authentication"]
    assert (authn["mechanism"], authn["backend"], authn["user_id_type"]) == ("password_based", "built_in_database", "username")
    assert "{allow, all}" not in (EMQX / "acl.conf").read_text()


def test_emqx_conf_listens_with_tls_only():
    conf = emqx_conf()
    for name in ("tcp", "ws", "wss"):
        assert conf["listeners"][name]["default"]["enable"] is False, name
    ssl = conf["listeners"]["ssl"]["default"]
    assert ssl["bind"].endswith(":8883")
    assert set(ssl["ssl_options"]["versions"]) <= {"tlsv1.3", "tlsv1.2"}
    assert conf["dashboard"]["listeners"]["http"]["bind"].startswith("127.0.0.1:")


def test_three_nodes_agree_on_names_seeds_and_image():
    conf = emqx_conf()
    assert conf["cluster"]["discovery_strategy"] == "static"
    assert conf["node"]["name"] in conf["cluster"]["static"]["seeds"]
    seeds = [s.split("@", 1)[1] for s in conf["cluster"]["static"]["seeds"]]
    assert len(seeds) == 3 and len(set(seeds)) == 3
    compose = (EMQX / "docker-compose.yml").read_text()
    assert "image: emqx/emqx:5.8.6" in compose
    for host in seeds:
        assert f"EMQX_NODE__NAME: emqx@{host}" in compose
        assert f"server {host.split('.')[0]} {host}:8883" in (EMQX / "haproxy.cfg").read_text()
    env = (EMQX / "node1.env.example").read_text()
    assert all(f'"emqx@{h}"' in env for h in seeds)


# -- import-users.py against a stand-in for the EMQX user API ---------------------------------

class FakeEmqxApi(BaseHTTPRequestHandler):
    users: dict[str, str] = {}
    calls: list[tuple[str, str, dict, str]] = []

    def _handle(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append((self.command, self.path, body, self.headers["Authorization"]))
        base = "/api/v5/authentication/password_based%3Abuilt_in_database/users"
        if self.command == "POST" and self.path == base:
            status = 409 if body["user_id"] in self.users else 201
            self.users.setdefault(body["user_id"], body["password"])
        elif self.command == "PUT" and self.path.startswith(base + "/"):
            self.users[self.path.rsplit("/", 1)[1]] = body["password"]
            status = 200
        else:
            status = 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    FakeEmqxApi.users, FakeEmqxApi.calls = {"central": "old"}, []
    server = HTTPServer(("127.0.0.1", 0), FakeEmqxApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def run_import(*args, env_key=True):
    env = {"PATH": "/usr/bin:/bin"}
    if env_key:
        env |= {"EMQX_API_KEY": "k", "EMQX_API_SECRET": "s"}
    return subprocess.run([sys.executable, str(EMQX / "import-users.py"), *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_import_adds_new_users_and_updates_existing_ones(fake_api, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "central.password").write_text("new-central\n")
    (secrets / "kiosk-a.password").write_text("pw-a")
    result = run_import("--api", fake_api, "--secrets", str(secrets))
    assert result.returncode == 0, result.stderr
    assert FakeEmqxApi.users == {"central": "new-central", "kiosk-a": "pw-a"}
    assert "central: updated" in result.stdout and "kiosk-a: added" in result.stdout
    assert {c[3] for c in FakeEmqxApi.calls} == {"Basic " + base64.b64encode(b"k:s").decode()}


def test_import_refuses_a_username_with_wildcards(fake_api, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "kiosk+a.password").write_text("pw")
    result = run_import("--api", fake_api, "--secrets", str(secrets))
    assert result.returncode != 0 and "kiosk+a" in result.stderr
    assert FakeEmqxApi.calls == []


def test_import_needs_an_api_key(fake_api, tmp_path):
    (tmp_path / "x.password").write_text("pw")
    result = run_import("--api", fake_api, "--secrets", str(tmp_path), env_key=False)
    assert result.returncode != 0 and "EMQX_API_KEY" in result.stderr


def test_no_erlang_cookie_is_shipped():
    """A cookie in an example is shared by every copy: whoever reaches the distribution port with
    it controls the node. The files leave it empty, and compose refuses to start without one."""
    conf = (EMQX / "emqx.conf").read_text()
    assert not re.search(r"^\s*cookie\s*=", conf, re.M)
    env = dict(line.split("=", 1) for line in (EMQX / "node1.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["EMQX_NODE__COOKIE"] == ""
    assert "${EMQX_COOKIE:?" in (EMQX / "docker-compose.yml").read_text()


def test_import_names_each_device_account_site_dot_device(fake_api, tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "central.password").write_text("c")
    (secrets / "kiosk-a.password").write_text("pw-a")
    devices = tmp_path / "devices.txt"
    devices.write_text("# office Hoan Kiem\nhn kiosk-a\n")
    result = run_import("--api", fake_api, "--secrets", str(secrets), "--devices", str(devices))
    assert result.returncode == 0, result.stderr
    assert FakeEmqxApi.users == {"central": "c", "hn.kiosk-a": "pw-a"}
    (secrets / "kiosk-b.password").write_text("pw-b")             # a device nobody placed at a site
    result = run_import("--api", fake_api, "--secrets", str(secrets), "--devices", str(devices))
    assert result.returncode != 0 and "no site for ['kiosk-b']" in result.stderr
