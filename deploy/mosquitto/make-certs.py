#!/usr/bin/env python3
"""Make a private CA and a broker certificate for an office broker (needs `cryptography`).

    make-certs.py --out /etc/mosquitto/edge --host broker.hn-badinh.example [--ip 10.1.2.3]
    make-certs.py --out DIR --client kiosk-01      # a client certificate (CN = device id) for mutual TLS

Writes ca.crt/ca.key (kept; reused on later runs), server.crt/server.key, or CLIENT.crt/CLIENT.key.
Devices get ca.crt (the `[provision] ca_cert` key of their edge.toml). Keep ca.key offline.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825  # the longest that common TLS clients accept for a leaf certificate


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def load_or_make_ca(out: Path, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = out / "ca.crt", out / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(_name(name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def make_leaf(out: Path, stem: str, cn: str, ca_cert, ca_key, *, server: bool,
              hosts: list[str], ips: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                              else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        names = [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(out / f"{stem}.key", key)
    _write_cert(out / f"{stem}.crt", cert)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory for the files")
    parser.add_argument("--ca-name", default="edge office CA")
    parser.add_argument("--host", action="append", default=[], help="broker DNS name (repeat for more)")
    parser.add_argument("--ip", action="append", default=[], help="broker IP address (repeat for more)")
    parser.add_argument("--client", help="make a client certificate with this CN (device id) instead")
    args = parser.parse_args(argv)
    if not args.client and not (args.host or args.ip):
        parser.error("give the broker's --host and/or --ip (devices check the name), or --client ID")
    for ip in args.ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            parser.error(f"--ip {ip!r} is not an IP address")
    args.out.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = load_or_make_ca(args.out, args.ca_name)
    if args.client:
        make_leaf(args.out, args.client, args.client, ca_cert, ca_key, server=False, hosts=[], ips=[])
        print(f"wrote {args.out}/{args.client}.crt and .key", file=sys.stderr)
    else:
        cn = (args.host or args.ip)[0]
        make_leaf(args.out, "server", cn, ca_cert, ca_key, server=True, hosts=args.host, ips=args.ip)
        print(f"wrote {args.out}/ca.crt, server.crt, server.key for {', '.join(args.host + args.ip)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
