"""guest-profile through a client nobody here wrote: Python grpcio.

Nothing is generated from our .proto files. The client learns the API the way a hotel's
own system or a support engineer with a generic tool would: it asks the server's
reflection service for the descriptors, builds message classes from them at run time, and
checks grpc.health.v1 before it calls.

Run by tests/tests/python_client.rs, which starts guest-profile as its own process and
sets:
  GUESTLOOP_GUEST_PROFILE_ADDR       host:port of guest-profile's gRPC listener
  GUESTLOOP_TOKEN_HEAD_OFFICE        a head-office bearer token
  GUESTLOOP_TOKEN_OTHER_PROPERTY     a staff token of a property other than sh-bund
  GUESTLOOP_TOKEN_SAME_PROPERTY      (optional) a staff token of sh-bund, the control case
"""

import os
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

SERVICE = "guestloop.guestprofile.v1.GuestProfileService"
TIMEOUT = 10.0
PROPERTY = "sh-bund"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this through `cargo test -p guestloop-e2e`")
    return value


@pytest.fixture(scope="module")
def channel():
    with grpc.insecure_channel(env("GUESTLOOP_GUEST_PROFILE_ADDR")) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        yield ch


@pytest.fixture(scope="module")
def reflection(channel):
    return ProtoReflectionDescriptorDatabase(channel)


class Api:
    """GuestProfileService as reflection describes it: callables and message classes."""

    def __init__(self, channel, reflection):
        self.pool = descriptor_pool.DescriptorPool(reflection)
        self.service = self.pool.FindServiceByName(SERVICE)
        self.channel = channel

    def request(self, method, fields):
        """A request message for `method`, from a dict in the proto JSON mapping."""
        desc = self.service.methods_by_name[method]
        return json_format.ParseDict(fields, message_factory.GetMessageClass(desc.input_type)())

    def call(self, method, request, token=None):
        desc = self.service.methods_by_name[method]
        rpc = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(desc.output_type).FromString,
        )
        metadata = [("authorization", f"Bearer {token}")] if token else None
        return rpc(request, metadata=metadata, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def api(channel, reflection):
    return Api(channel, reflection)


def rpc_error(fn):
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def unique():
    return uuid.uuid4().hex[:10]


def create_guest(api, token, **guest):
    guest.setdefault("givenName", "Mei")
    guest.setdefault("familyName", f"Lin-{unique()}")
    request = api.request("CreateGuest", {"guest": guest, "propertyId": PROPERTY})
    return api.call("CreateGuest", request, token).guest


# --- grpc.health.v1 --------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_is_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    err = rpc_error(
        lambda: stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


# --- reflection ----------------------------------------------------------------------------


def test_reflection_lists_the_service(reflection):
    services = set(reflection.get_services())
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_reflection_describes_the_api(api):
    methods = set(api.service.methods_by_name)
    assert {"CreateGuest", "GetGuest", "UpdateGuest", "SearchGuests", "EraseGuest"} <= methods
    guest = api.pool.FindMessageTypeByName("guestloop.guestprofile.v1.Guest")
    # Imports resolve too: the Timestamp and the common Date came over reflection.
    assert guest.fields_by_name["create_time"].message_type.full_name == "google.protobuf.Timestamp"
    assert guest.fields_by_name["birthday"].message_type.full_name == "guestloop.common.v1.Date"


# --- calls ---------------------------------------------------------------------------------


def test_create_then_get_round_trips(api):
    token = env("GUESTLOOP_TOKEN_HEAD_OFFICE")
    family = f"Zhang-{unique()}"
    sent = {
        "givenName": "Wei",
        "familyName": family,
        "contacts": {"email": f"wei.{unique()}@example.com", "phone": "+8613800138000"},
        "language": "zh-CN",
        "birthday": {"year": 1985, "month": 4, "day": 12},
        "segment": "SEGMENT_BUSINESS",
        "tier": "TIER_VIP_GOLD",
        "preferences": {"pillow": "buckwheat", "dietary": ["vegetarian"], "allergies": ["peanuts"]},
        "specialNeeds": [{"kind": "SPECIAL_NEED_KIND_ACCESSIBILITY", "description": "step-free room"}],
        "notes": "Prefers a quiet room away from the lift.",
    }
    created = create_guest(api, token, **sent)
    assert created.guest_id
    assert created.home_property_id == PROPERTY
    assert created.create_time.seconds > 0

    got = api.call("GetGuest", api.request("GetGuest", {"guestId": created.guest_id}), token)
    assert got.guest.guest_id == created.guest_id
    assert not got.merged_from_guest_id
    as_dict = json_format.MessageToDict(got.guest)
    for key, value in sent.items():
        assert as_dict.get(key) == value, key
    assert got.guest.home_property_id == PROPERTY
    assert got.guest.completeness_score > 0


def test_a_call_without_a_token_is_unauthenticated(api):
    request = api.request("GetGuest", {"guestId": str(uuid.uuid4())})
    err = rpc_error(lambda: api.call("GetGuest", request))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    err = rpc_error(lambda: api.call("GetGuest", request, token="not-a-jwt"))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_bad_email_is_invalid_argument_naming_the_field(api):
    token = env("GUESTLOOP_TOKEN_HEAD_OFFICE")
    family = f"Bad-{unique()}"
    err = rpc_error(
        lambda: create_guest(api, token, familyName=family, contacts={"email": "not-an-email"})
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in grpc-status-details-bin"
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
    assert [v.field for v in violations] == ["guest.contacts.email"], violations
    assert violations[0].description

    # Nothing half-written: no guest of that name exists.
    found = api.call("SearchGuests", api.request("SearchGuests", {"name": family}), token)
    assert list(found.guests) == []


def test_another_propertys_staff_gets_not_found(api):
    created = create_guest(
        api,
        env("GUESTLOOP_TOKEN_HEAD_OFFICE"),
        givenName="Hidden",
        contacts={"email": f"hidden.{unique()}@example.com"},
    )
    request = api.request("GetGuest", {"guestId": created.guest_id})

    err = rpc_error(lambda: api.call("GetGuest", request, env("GUESTLOOP_TOKEN_OTHER_PROPERTY")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # The answer says nothing about the guest.
    leaked = [created.given_name, created.family_name, created.contacts.email]
    assert not any(v in (err.details() or "") for v in leaked), err.details()
    assert rpc_status.from_call(err) is None or not rpc_status.from_call(err).details

    # Control: the same call with sh-bund's own staff token sees the guest, so the
    # NOT_FOUND above is the scope check and not a broken staff token.
    same = os.environ.get("GUESTLOOP_TOKEN_SAME_PROPERTY")
    if same:
        assert api.call("GetGuest", request, same).guest.guest_id == created.guest_id
