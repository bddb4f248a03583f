"""A scripted raw-socket TLS peer for the prober's tests (see peer.py)."""

from .peer import ClientHello, PeerConfig, ScriptedPeer, parse_client_hello

__all__ = ["ClientHello", "PeerConfig", "ScriptedPeer", "parse_client_hello"]
