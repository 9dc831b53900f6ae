"""Generated protobuf and gRPC code for simulatord.v1: do not edit; run scripts/gen_protos.py."""
