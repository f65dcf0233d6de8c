"""Bearer token on mutating calls, TLS with a self-signed certificate, and mutual TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from riffle_client import Client, RiffleError, TlsConfig, riffle_pb2
from streams import separable

TOKEN = "s3cret-token"


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    with pytest.raises(RiffleError) as e:
        call(*args, **kwargs)
    return e.value.code


def test_bearer_token_guards_mutating_calls(start_server, tmp_path: Path) -> None:
    # The token comes from the YAML config: --auth-token-file is broken (test_server_bugs.py).
    config = tmp_path / "riffle.yaml"
    config.write_text(f"security:\n  auth_token: {TOKEN}\n")
    server = start_server("--config", str(config), "--model", "m=logreg")

    with server.client(token=TOKEN) as right:
        right.create_model("created", "logreg", classes=["0", "1"])
        right.learn("m", {"x": 1.0}, "1")
        right.predict("m", {"x": 1.0}, id="p1")
        right.learn_by_id("m", "p1", "1")
        assert right.learn_stream("m", separable(10, seed=1)).learned == 10
        right.checkpoint("m")
        right.restore("m")

    unauthenticated = grpc.StatusCode.UNAUTHENTICATED
    with server.client() as none, server.client(token="wrong") as wrong:
        for client, expected in ((none, unauthenticated), (wrong, grpc.StatusCode.PERMISSION_DENIED)):
            assert code_of(client.create_model, "x", "logreg") == expected
            assert code_of(client.learn, "m", {"x": 1.0}, "1") == expected
            assert code_of(client.learn_by_id, "m", "p1", "1") == expected
            assert code_of(client.learn_stream, "m", separable(3, seed=2)) == expected
            assert code_of(client.checkpoint, "m") == expected
            assert code_of(client.restore, "m") == expected
            assert code_of(client.delete_model, "created") == expected
            # Reading needs no token.
            assert client.predict("m", {"x": 1.0}).predicted_class == "1"
            assert list(client.predict_stream("m", [{"x": 1.0}]))[0].model == "m"
            assert {m.name for m in client.list_models()} == {"m", "created"}
            assert client.get_model("m").labeled == 12
            assert client.metrics("m").labeled == 12
            assert client.list_checkpoints("m")
            assert client.health("m") == "SERVING"

    # A malformed authorization header ("Bearer " missing) is UNAUTHENTICATED too.
    with Client(server.target) as raw:
        with pytest.raises(grpc.RpcError) as e:
            raw.models.DeleteModel(riffle_pb2.DeleteModelRequest(model="created"),
                                   metadata=(("authorization", TOKEN),))
        assert e.value.code() == unauthenticated

    with server.client(token=TOKEN) as right:
        right.delete_model("created")


# ---------------------------------------------------------------------------------------------
# TLS


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """A self-signed server certificate for 127.0.0.1/localhost, and a client CA with one client
    certificate (EC P-256 keys, valid one day)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make test certificates")
    d = tmp_path / "certs"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "server.key", "-out", "server.pem", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=riffle test client CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=riffle test client", cwd=d)
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.pem", "-days", "1", "-extfile", "client.ext",
            cwd=d)
    return d


def test_tls_with_a_self_signed_certificate(start_server, certs: Path) -> None:
    server = start_server("--tls-cert", str(certs / "server.pem"),
                          "--tls-key", str(certs / "server.key"), "--model", "m=logreg")
    with server.client(tls=TlsConfig(root_certificates=certs / "server.pem")) as c:
        c.learn("m", {"x": 1.0}, "1")
        assert c.predict("m", {"x": 1.0}).predicted_class == "1"
        assert c.health() == "SERVING"
    # PEM bytes work as well as paths; server_name checks the certificate's DNS name.
    pem = (certs / "server.pem").read_bytes()
    with Client(server.target, tls=TlsConfig(root_certificates=pem, server_name="localhost")) as c:
        assert c.get_model("m").labeled == 1
    # A plaintext client cannot talk to a TLS server,
    with server.client(timeout=5) as plain:
        assert code_of(plain.list_models) == grpc.StatusCode.UNAVAILABLE
    # nor a TLS client that does not trust the certificate (system roots only).
    with server.client(tls=True, timeout=5) as untrusting:
        assert code_of(untrusting.list_models) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_rejects_clients_without_a_certificate(start_server, certs: Path) -> None:
    server = start_server("--tls-cert", str(certs / "server.pem"),
                          "--tls-key", str(certs / "server.key"),
                          "--tls-client-ca", str(certs / "ca.pem"), "--model", "m=logreg")
    without = TlsConfig(root_certificates=certs / "server.pem")
    with server.client(tls=without, timeout=5) as c:
        assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
        assert code_of(c.predict, "m", {"x": 1.0}) == grpc.StatusCode.UNAVAILABLE
    # A certificate the client CA did not sign is refused too (the server's own, self-signed).
    stranger = TlsConfig(root_certificates=certs / "server.pem",
                         certificate_chain=certs / "server.pem", private_key=certs / "server.key")
    with server.client(tls=stranger, timeout=5) as c:
        assert code_of(c.list_models) == grpc.StatusCode.UNAVAILABLE
    with_cert = TlsConfig(root_certificates=certs / "server.pem",
                          certificate_chain=certs / "client.pem", private_key=certs / "client.key")
    with server.client(tls=with_cert) as c:
        assert [m.name for m in c.list_models()] == ["m"]
        c.learn("m", {"x": 1.0}, "1")
        assert c.predict("m", {"x": 1.0}).predicted_class == "1"
