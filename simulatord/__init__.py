"""simulatord: simulated HTTP APIs per isolated session, programmed over a gRPC control service."""

__version__ = "0.1.0"
