#!/usr/bin/env python3
"""Calls a Guestloop RPC with a JSON body, finding the API through server reflection (what
grpcurl does), for machines without grpcurl. Needs grpcio-reflection and protobuf: the test
venv has them (~/.cache/guestloop/pyenv/bin/python).

    grpc_call.py HOST:PORT package.Service/Method '{"json": "body"}'   (token from $TOKEN)
"""

import json
import os
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    addr, method, body = sys.argv[1:]
    service_name, method_name = method.rsplit("/", 1)
    with grpc.insecure_channel(addr) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(service_name)
        m = service.methods_by_name[method_name]
        request_cls = message_factory.GetMessageClass(m.input_type)
        response_cls = message_factory.GetMessageClass(m.output_type)
        request = json_format.Parse(body, request_cls())
        call = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        metadata = [("authorization", f"Bearer {os.environ['TOKEN']}")] if os.environ.get("TOKEN") else []
        try:
            response = call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            sys.exit(f"{e.code().name}: {e.details()}")
        print(json.dumps(json_format.MessageToDict(response), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
