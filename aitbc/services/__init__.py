"""gRPC services: thin translations between protos and the coordinator."""
