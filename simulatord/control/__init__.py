"""The gRPC control plane: a thin servicer over the domain, with proto conversion and error mapping."""
