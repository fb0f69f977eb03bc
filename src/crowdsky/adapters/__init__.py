"""Adapters: the in-memory Seestar, the network Seestar, the CrowdSky server client."""
