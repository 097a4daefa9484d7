"""guest-profile over mutual TLS, through Python grpcio (a TLS stack nobody here wrote).

Run by tests/tests/python_client.rs, which starts a second guest-profile with
`grpc.tls.*` set (a server certificate and a client CA made for the run) and sets:
  GUESTLOOP_TLS_ADDR          host:port of that TLS listener
  GUESTLOOP_TLS_CA            PEM file of the CA that signed the server's certificate
  GUESTLOOP_TLS_CLIENT_CERT   PEM file of a client certificate the listener's CA signed
  GUESTLOOP_TLS_CLIENT_KEY    its private key
"""

import os

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "guestloop.guestprofile.v1.GuestProfileService"
TIMEOUT = 15.0
# The server certificate names localhost; the client dials 127.0.0.1.
OPTIONS = [("grpc.ssl_target_name_override", "localhost")]


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this through `cargo test -p guestloop-e2e`")
    return value


def read(name):
    with open(env(name), "rb") as f:
        return f.read()


def check(channel, timeout=TIMEOUT):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=timeout).status


def test_a_client_with_a_certificate_from_the_ca_is_served():
    creds = grpc.ssl_channel_credentials(
        root_certificates=read("GUESTLOOP_TLS_CA"),
        private_key=read("GUESTLOOP_TLS_CLIENT_KEY"),
        certificate_chain=read("GUESTLOOP_TLS_CLIENT_CERT"),
    )
    with grpc.secure_channel(env("GUESTLOOP_TLS_ADDR"), creds, options=OPTIONS) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        assert check(ch) == health_pb2.HealthCheckResponse.SERVING
        # A real exchange of the API over the TLS connection: reflection describes it.
        assert SERVICE in set(ProtoReflectionDescriptorDatabase(ch).get_services())


def test_a_client_without_a_certificate_is_refused():
    creds = grpc.ssl_channel_credentials(root_certificates=read("GUESTLOOP_TLS_CA"))
    with grpc.secure_channel(env("GUESTLOOP_TLS_ADDR"), creds, options=OPTIONS) as ch:
        with pytest.raises(grpc.RpcError) as refused:
            check(ch, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused():
    with grpc.insecure_channel(env("GUESTLOOP_TLS_ADDR")) as ch:
        with pytest.raises(grpc.RpcError) as refused:
            check(ch, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
