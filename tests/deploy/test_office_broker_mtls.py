"""The office broker's documented mutual-TLS option (require_certificate +
use_identity_as_username): a device logs in with its certificate from make-certs.py --client, the
certificate's CN is its user name for the ACL, and a client without a certificate is refused."""

from __future__ import annotations

import ssl

import pytest

SITE = "hn-test"


def test_device_with_its_certificate_is_its_cn_for_the_acl(mtls_broker, mtls_peers):
    certs = mtls_broker.dir
    device = mtls_peers(None, certfile=str(certs / "kiosk-a.crt"), keyfile=str(certs / "kiosk-a.key"))
    assert device.connect() == 0
    central = mtls_peers("central", tls=False)  # central on the loopback listener, with its password
    assert central.connect() == 0
    central.subscribe("motcua/v1/#")
    device.publish(f"motcua/v1/{SITE}/kiosk-b/locker/event", "forged")
    device.publish(f"motcua/v1/{SITE}/kiosk-a/locker/event", "own")
    before = central.wait_for("own")
    assert not [m for m in before if m[1] == b"forged"], before


def test_client_without_a_certificate_is_refused(mtls_peers):
    peer = mtls_peers("kiosk-a")  # the right password, but no certificate
    try:
        reason = peer.connect(timeout_s=3)
    except (ssl.SSLError, OSError):
        return  # refused during the TLS handshake (TLS 1.2)
    # TLS 1.3 finishes the client's side of the handshake first; the broker then drops it.
    assert reason is None or reason.is_failure, reason
