"""metrics through Python grpcio, found by reflection like guest-profile's suite: events in
through guestloop.events.v1.EventIngestService (as another service's outbox would deliver
them), KPIs and the voice-of-customer page out, errors naming the field.

Run by tests/tests/python_client.rs, which sets GUESTLOOP_METRICS_ADDR,
GUESTLOOP_TOKEN_SERVICE, GUESTLOOP_TOKEN_HEAD_OFFICE and GUESTLOOP_TOKEN_OTHER_PROPERTY.
"""

import datetime
import os
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

METRICS = "guestloop.metrics.v1.MetricsService"
EVENTS = "guestloop.events.v1.EventIngestService"
TIMEOUT = 10.0
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this through `cargo test -p guestloop-e2e`")
    return value


@pytest.fixture(scope="module")
def channel():
    with grpc.insecure_channel(env("GUESTLOOP_METRICS_ADDR")) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        yield ch


class Api:
    def __init__(self, channel):
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.channel = channel

    def call(self, service, method, fields, token):
        desc = self.pool.FindServiceByName(service).methods_by_name[method]
        request = json_format.ParseDict(fields, message_factory.GetMessageClass(desc.input_type)())
        rpc = self.channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(desc.output_type).FromString,
        )
        return rpc(request, metadata=[("authorization", f"Bearer {token}")], timeout=TIMEOUT)


@pytest.fixture(scope="module")
def api(channel):
    return Api(channel)


def today():
    d = datetime.datetime.now(SHANGHAI).date()
    return {"year": d.year, "month": d.month, "day": d.day}


def survey(csat):
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    feedback = str(uuid.uuid4())
    return {
        "eventId": str(uuid.uuid4()),
        "source": "feedback-intake",
        "aggregateType": "feedback",
        "aggregateId": feedback,
        "propertyId": "sh-bund",
        "occurTime": now,
        "surveyAnswered": {
            "feedbackId": feedback,
            "propertyId": "sh-bund",
            "answerTime": now,
            "csat": csat,
        },
    }


def test_events_in_kpis_out(api):
    events = [survey(c) for c in (5, 5, 4, 2)]
    reply = api.call(EVENTS, "DeliverEvents", {"events": events}, env("GUESTLOOP_TOKEN_SERVICE"))
    assert sorted(reply.acknowledged_event_ids) == sorted(e["eventId"] for e in events)
    # Delivered again: acknowledged, counted once.
    api.call(EVENTS, "DeliverEvents", {"events": events}, env("GUESTLOOP_TOKEN_SERVICE"))
    kpis = api.call(
        METRICS,
        "GetKpis",
        {
            "scope": {"level": "SCOPE_LEVEL_PROPERTY", "id": "sh-bund"},
            "dateRange": {"startDate": today(), "endDate": today()},
            "kpis": ["KPI_CSAT"],
        },
        env("GUESTLOOP_TOKEN_HEAD_OFFICE"),
    )
    total = json_format.MessageToDict(kpis.series[0].total)
    assert (int(total["numerator"]), int(total["denominator"])) == (3, 4)
    assert total["value"] == 0.75
    assert total["confidenceLow"] < 0.75 < total["confidenceHigh"]


def test_a_missing_date_range_names_the_field(api):
    err = pytest.raises(
        grpc.RpcError,
        api.call,
        METRICS,
        "GetKpis",
        {"scope": {"level": "SCOPE_LEVEL_PROPERTY", "id": "sh-bund"}},
        env("GUESTLOOP_TOKEN_HEAD_OFFICE"),
    ).value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    assert fields == ["date_range"]


def test_only_services_deliver_events(api):
    err = pytest.raises(
        grpc.RpcError,
        api.call,
        EVENTS,
        "DeliverEvents",
        {"events": [survey(1)]},
        env("GUESTLOOP_TOKEN_HEAD_OFFICE"),
    ).value
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_another_property_sees_nothing_and_the_page_is_html(api):
    err = pytest.raises(
        grpc.RpcError,
        api.call,
        METRICS,
        "GetKpis",
        {
            "scope": {"level": "SCOPE_LEVEL_PROPERTY", "id": "sh-bund"},
            "dateRange": {"startDate": today(), "endDate": today()},
        },
        env("GUESTLOOP_TOKEN_OTHER_PROPERTY"),
    ).value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    page = api.call(
        METRICS,
        "RenderVoiceOfCustomerReport",
        {"scope": {"level": "SCOPE_LEVEL_PROPERTY", "id": "sh-bund"}, "reportDate": today()},
        env("GUESTLOOP_TOKEN_HEAD_OFFICE"),
    )
    assert page.html.startswith("<!DOCTYPE html>")
    assert "Shanghai Bund" in page.html
    assert page.file_name.startswith("voc-sh-bund-")
