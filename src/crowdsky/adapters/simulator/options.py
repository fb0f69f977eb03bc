"""How the network simulator behaves: firmware profile, events and transport faults.

Every knob defaults to the behaviour the protocol reference (§7) calls faithful for a fw 7.75
Seestar, except the faults that would slow a client down (latency, idle drop, random drops),
which are off.
"""

from __future__ import annotations

import attrs

from crowdsky.domain.firmware import needs_verify_marker, version_int

__all__ = ["FIRMWARE_PROFILES", "SimulatorOptions", "firmware_version"]

#: The firmware profiles the simulator knows (protocol reference §7, item 10).
FIRMWARE_PROFILES = ("7.75", "7.32", "7.18", "7.06", "6.70", "2.x", "old")

#: Profile names that stand for a version: "old" is firmware from before the RSA handshake and
#: ``clear_batch_stack``; "2.x" the 2.25 of a recorded ``Version`` event (§1.5).
_NAMED = {"old": (4, 27), "2.x": (2, 25)}


def firmware_version(firmware: str) -> tuple[int, int]:
    """``(major, minor)`` of a profile name; ``"old"`` is 4.27, ``"2.x"`` is 2.25.

    Examples
    --------
    >>> firmware_version("7.32"), firmware_version("old"), firmware_version("2.x")
    ((7, 32), (4, 27), (2, 25))
    """
    if firmware in _NAMED:
        return _NAMED[firmware]
    major, _, minor = firmware.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        raise ValueError(
            f"Unknown firmware profile {firmware!r}; use one of {', '.join(FIRMWARE_PROFILES)}"
        ) from None


def _check_latency(
    instance: SimulatorOptions, attribute: attrs.Attribute[tuple[float, float]], value: object
) -> None:
    if not (isinstance(value, tuple) and len(value) == 2 and 0.0 <= value[0] <= value[1]):
        raise ValueError(f"latency must be (min, max) seconds with 0 <= min <= max, not {value!r}")


def _check_probability(
    instance: SimulatorOptions, attribute: attrs.Attribute[float], value: float
) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"drop_probability must be within [0, 1], not {value!r}")


def _check_firmware(
    instance: SimulatorOptions, attribute: attrs.Attribute[str], value: str
) -> None:
    firmware_version(value)


@attrs.frozen
class SimulatorOptions:
    """Behaviour of a :class:`~crowdsky.adapters.simulator.SimulatorServer`.

    Parameters
    ----------
    auth_public_key : bytes or None
        PEM public key that ``verify_client`` checks signatures with. With a key and a firmware
        profile of 7.32 or later, an unverified connection gets no reply at all except to the
        handshake methods (§2.2). Without a key, ``verify_client`` accepts any signature.
    firmware : str
        ``"7.75"`` (default; batch stacks by full paths), ``"7.32"`` (authentication mandatory
        with a key), ``"7.18"`` (optional), ``"7.06"`` and ``"6.70"`` (no handshake; every
        request without the verify marker goes unanswered, and a marker in the wrong form for
        its method is refused with 107/109), ``"old"`` (4.27: no marker, no handshake, 103 for
        ``clear_batch_stack``) or ``"2.x"`` (2.25, likewise). Before 7.75 batch stacks select
        frames by bare names.
    push_batch_events : bool
        Push ``BatchStack`` events on every state change of the device's batch stack.
    coalesce_and_split : bool
        Randomly join queued frames into one write and split large writes (§1.2).
    side_effect_events_first : bool
        Events caused by ``start_batch_stack`` / ``stop_batch_stack`` go out before the reply.
    pistatus_interval : float or None
        Seconds between the periodic events to every connection (``PiStatus``, or events of any
        kind with ``event_variety``); ``None`` for none.
    idle_drop_seconds : float or None
        Close a connection after this long without client traffic (the firmware: ~16 s).
    latency : tuple of float
        ``(min, max)`` seconds to wait before each reply: the device's own time per request.
        The connection answers one request at a time (FIFO, §1.6), so a request sent before
        the previous reply came back waits for it: requests sent back to back gain nothing.
    wire_delay : float
        Seconds every frame the device sends (replies and events) spends on the way to the
        client: the link's round trip, all put on the way back. Unlike ``latency`` it holds up
        nothing behind it, as a network does not, so requests sent back to back overlap it.
    drop_probability : float
        Chance to close a connection instead of replying to a request.
    honour_range : bool
        HTTP answers ``Range`` requests with 206; when False it ignores them (200, full body).
    seed : int
        Seed of every random choice (challenges excepted).
    max_clients : int
        Connections beyond this many are closed at once.
    verify_fail_code, verify_fail_error : int, str
        The error of ``verify_client`` for a bad signature (unknown on real devices).
    missing_folder_pages : int
        ``get_img_file_page_number`` result for a folder that does not exist.
    batch_poll_interval : float
        Longest time the device's worker waits before it looks at the batch stack again; it
        also looks when the stack starts and when its next frame is due or it ends (by the
        device's clock), so events and the finish come at once on a real-time clock.
    silent_methods : frozenset of str
        Methods never answered (a busy scope ignoring ``get_verify_str``, §2.2).
    half_open_after : int or None
        After this many requests a connection goes half-open: it stays up, keeps its events
        flowing, but never answers again (a Wi-Fi dropout seen from the client, §1.8).
    drop_page_requests : frozenset of int
        Close the connection instead of answering these ``get_img_file_page_name`` requests,
        numbered from 1 across all connections: a link lost while a folder is being paged. The
        client's new connection has no listing context (§3.3).
    event_variety : bool
        The periodic events are those of a working device (:class:`~.traffic.EventMix`): about
        half ``PiStatus`` with its several field sets, the rest ``View``, ``Stack``,
        ``Exposure``, ``FocuserMove``, ``PlateSolve``, ``DarkLibrary``, ... some carrying
        ``code``/``error`` or ``result``. When False only ``PiStatus`` (one field each).
    events_before_reply : int
        Send this many such events on a connection before each reply (events between a request
        and its reply, §1.5); 0 for none.
    app_state_stages : bool
        ``iscope_get_app_state`` also holds the entries of other stages (``View``,
        ``FocuserMove``, ``DarkLibrary``, ``PlateSolve``), as real replies do.
    """

    auth_public_key: bytes | None = None
    firmware: str = attrs.field(default="7.75", validator=_check_firmware)
    push_batch_events: bool = True
    coalesce_and_split: bool = True
    side_effect_events_first: bool = True
    pistatus_interval: float | None = 2.0
    idle_drop_seconds: float | None = None
    latency: tuple[float, float] = attrs.field(default=(0.0, 0.0), validator=_check_latency)
    wire_delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    drop_probability: float = attrs.field(default=0.0, validator=_check_probability)
    honour_range: bool = True
    seed: int = 0
    max_clients: int = 8
    verify_fail_code: int = 208
    verify_fail_error: str = "fail to verify"
    missing_folder_pages: int = 0
    batch_poll_interval: float = 0.2
    silent_methods: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)
    half_open_after: int | None = None
    drop_page_requests: frozenset[int] = attrs.field(default=frozenset(), converter=frozenset)
    event_variety: bool = True
    events_before_reply: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    app_state_stages: bool = True

    @property
    def version(self) -> tuple[int, int]:
        """The firmware profile as ``(major, minor)``."""
        return firmware_version(self.firmware)

    @property
    def ver_int(self) -> int:
        """``firmware_ver_int`` of the profile (``2000 + 100 * major + minor``)."""
        return version_int(*self.version)

    @property
    def needs_marker(self) -> bool:
        """Whether requests without the verify marker go unanswered (5.82 < fw < 7.18)."""
        return needs_verify_marker(self.ver_int)

    @property
    def has_handshake(self) -> bool:
        """Whether ``get_verify_str`` / ``verify_client`` exist (fw 7.18 and later)."""
        return self.version >= (7, 18)

    @property
    def auth_required(self) -> bool:
        """Whether unverified connections are ignored (a key is set and fw is 7.32 or later)."""
        return self.auth_public_key is not None and self.version >= (7, 32)

    @property
    def has_clear_batch_stack(self) -> bool:
        """Whether ``clear_batch_stack`` exists (not on the ``"old"`` and ``"2.x"`` profiles)."""
        return self.firmware not in _NAMED
