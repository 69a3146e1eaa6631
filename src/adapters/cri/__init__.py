"""The CRI gRPC servers: protobuf in, domain calls, protobuf out."""
