"""Generated riffle.v1 stubs (riffle_pb2, riffle_pb2_grpc), written at build time by setup.py
from proto/riffle/v1/riffle.proto. Not in the source tree: import them from an installed
riffle-client."""
