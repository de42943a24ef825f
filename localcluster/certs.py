"""Locally generated PKI for the control plane (openssl, nothing fetched)."""

from __future__ import annotations

import pathlib
import subprocess

DAYS = "30"


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key(name: str, cwd: pathlib.Path) -> None:
    _openssl("genrsa", "-out", f"{name}.key", "2048", cwd=cwd)


def _signed(name: str, subject: str, cwd: pathlib.Path, extensions: str = "") -> None:
    """A key and a certificate for `subject`, signed by the CA in `cwd`."""
    _key(name, cwd)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    ext_file = cwd / f"{name}.ext"
    ext_file.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + extensions
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", DAYS, "-sha256", "-extfile", ext_file.name, "-out", f"{name}.crt", cwd=cwd,
    )


CLIENTS = {
    "admin": "/O=system:masters/CN=capliquify-admin",
    "controller-manager": "/CN=system:kube-controller-manager",
    "scheduler": "/CN=system:kube-scheduler",
    # The aggregation layer's client: the API server proxies metrics.k8s.io to metrics-server
    # with this certificate and the caller's identity in X-Remote-* headers.
    "front-proxy-client": "/CN=front-proxy-client",
}


def generate(directory: pathlib.Path) -> None:
    """CA, API server serving cert, client certs, and the service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    _key("ca", directory)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=capliquify-local-ca", "-days", DAYS,
        "-sha256", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.crt", cwd=directory,
    )
    _signed(
        "apiserver", "/CN=kube-apiserver", directory,
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
    )
    # The aggregator checks an APIService's serving certificate against the Service's DNS name,
    # whatever address it dials (localcluster/metrics_server.py).
    _signed(
        "metrics-server", "/CN=metrics-server", directory,
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:metrics-server.kube-system.svc\n",
    )
    for name, subject in CLIENTS.items():
        _signed(name, subject, directory, "extendedKeyUsage=clientAuth\n")
    _key("sa", directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
