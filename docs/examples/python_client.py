"""A Python (grpcio) client of dipledger: records a source and a party, reads the party back
through QueryService (reading its own write), lists the services through server reflection
(v1alpha, what grpcio-reflection speaks), reads the log's first events (ReadAll) and replays the
log through a subscription until it has caught up: the same calls as the grpcurl lines of
docs/api.md.

    pip install grpcio grpcio-tools grpcio-reflection
    python -m grpc_tools.protoc -I proto --python_out=/tmp/dl --grpc_python_out=/tmp/dl proto/dipledger/v1/*.proto
    PYTHONPATH=/tmp/dl python docs/examples/python_client.py 127.0.0.1:50051
    # with tokens: DIPLEDGER_TOKEN=dpl_... ; with TLS: DIPLEDGER_CA_CERT=ca.pem and the host name
"""
import os
import sys
import uuid

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dipledger.v1 import commands_pb2, commands_pb2_grpc, common_pb2
from dipledger.v1 import event_store_pb2, event_store_pb2_grpc
from dipledger.v1 import query_pb2, query_pb2_grpc

class BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to every call (a server with tokens asks for it)."""

    def __init__(self, token):
        self.metadata = [("authorization", "Bearer " + token)]

    def _with_token(self, details):
        return details._replace(metadata=list(details.metadata or []) + self.metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
# TLS when DIPLEDGER_CA_CERT names the CA the server's certificate chains to; a bearer token
# (from `dipledger token create`) when DIPLEDGER_TOKEN holds one.
ca_cert = os.environ.get("DIPLEDGER_CA_CERT")
if ca_cert:
    with open(ca_cert, "rb") as pem:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=pem.read()))
else:
    channel = grpc.insecure_channel(target)
if os.environ.get("DIPLEDGER_TOKEN"):
    channel = grpc.intercept_channel(channel, BearerToken(os.environ["DIPLEDGER_TOKEN"]))
commands = commands_pb2_grpc.CommandServiceStub(channel)
queries = query_pb2_grpc.QueryServiceStub(channel)
store = event_store_pb2_grpc.EventStoreServiceStub(channel)

reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
answer = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
print("services:", sorted(service.name for service in answer.list_services_response.service))

retrieved = Timestamp()
retrieved.FromJsonString("2025-01-16T08:00:00Z")
source = commands.RegisterSource(commands_pb2.RegisterSourceRequest(
    header=commands_pb2.CommandHeader(command_id=str(uuid.uuid4())),
    details=common_pb2.SourceDetails(url="https://example.org/news/1", retrieved_at=retrieved, language="en")))

wednesday = Timestamp()
wednesday.FromJsonString("2025-01-15T00:00:00Z")
code = "PY" + uuid.uuid4().hex[:6].upper()
party = commands.RegisterParty(commands_pb2.RegisterPartyRequest(
    header=commands_pb2.CommandHeader(
        command_id=str(uuid.uuid4()),
        occurred_at=common_pb2.OccurredAt(at=wednesday, precision=common_pb2.PRECISION_DAY),
        sources=[common_pb2.SourceCitation(source_id=source.source_id)]),
    code=code,
    details=common_pb2.PartyDetails(kind=common_pb2.PARTY_KIND_STATE, name="Python Land")))
print("recorded", code, "at position", party.result.positions[-1])

read = queries.GetParty(query_pb2.GetPartyRequest(
    code=code, options=query_pb2.ReadOptions(min_position=party.result.positions[-1])))
print("read back", read.party.details.name, "based on position", read.based_on_position)

try:
    commands.RegisterParty(commands_pb2.RegisterPartyRequest(
        header=commands_pb2.CommandHeader(command_id=str(uuid.uuid4())), code="lower case"))
except grpc.RpcError as error:
    print("rejected:", error.code())  # StatusCode.INVALID_ARGUMENT

page = store.ReadAll(event_store_pb2.ReadAllRequest(limit=10))
print("read", len(page.events), "events, the first", page.events[0].event_type)

for message in store.Subscribe(event_store_pb2.SubscribeRequest(from_start=event_store_pb2.SubscribeFromStart())):
    kind = message.WhichOneof("message")
    if kind == "caught_up":
        print("caught up at", message.caught_up.position)
        break
