"""Generated protobuf and gRPC code for the aitbc.v1 API (do not edit; run `make proto`)."""
