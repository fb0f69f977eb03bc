"""Adapters: everything that touches a device, a disk, a network or the clock.

Grouped by what they adapt:

* :mod:`~crowdsky.adapters.seestar` — the real telescope (JSON-RPC, HTTP files, SMB/share).
* :mod:`~crowdsky.adapters.jsonrpc` — the Seestar's JSON-RPC: sans-I/O codec, connection,
  client-side authentication.
* :mod:`~crowdsky.adapters.device_model` — the in-memory Seestar, also the simulator's engine.
* :mod:`~crowdsky.adapters.simulator` — the device model on the network.
* :mod:`~crowdsky.adapters.collab` — the CrowdSky server client and the loopback server.
* :mod:`~crowdsky.adapters.clock`, :mod:`~crowdsky.adapters.console` — clocks and progress.

Only :mod:`crowdsky.bootstrap` builds them for the library and the command line.
"""
