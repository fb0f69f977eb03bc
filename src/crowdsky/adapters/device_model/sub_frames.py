"""Raw sub-frames as a Seestar writes them: names in device local time, headers per §6.

A sub is ``MyWorks/<target>_sub/Light_<target>_<exp>s_<filter>_<YYYYMMDD-HHMMSS>.fit`` with
``.jpg`` and ``_thn.jpg`` companions. The name carries the device's *local* wall-clock time at
save time, ``exposure + save_delay`` after the exposure started; ``DATE-OBS`` in the header is the
UTC start (protocol reference §3.5: a 10 s sub is named about 14 s after its ``DATE-OBS``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER, FitsImage
from crowdsky.domain import format_exposure
from crowdsky.domain.device_paths import device_path, sub_folder_of
from crowdsky.errors import PlanError

__all__ = [
    "DEMO_TARGETS",
    "SAVE_DELAY_S",
    "VIENNA",
    "Site",
    "Target",
    "add_sub",
    "sub_image",
    "sub_name",
]

#: Seconds from the end of an exposure to the save that stamps the file name.
SAVE_DELAY_S = 4.0


@attrs.frozen
class Target:
    """Something to observe: its name as the device writes it and its ICRS position in degrees."""

    name: str
    ra_deg: float
    dec_deg: float


@attrs.frozen
class Site:
    """Where the telescope stands (``SITELAT`` / ``SITELONG``, degrees, east positive)."""

    lat: float
    lon: float


VIENNA = Site(48.2082, 16.3738)
#: The spec's targets (shared README, decision 1: their reference pixels).
DEMO_TARGETS = (
    Target("IC 434", 85.25, -2.46),
    Target("M 42", 83.82, -5.39),
    Target("M 81", 148.89, 69.07),
)


def sub_image(
    device: FakeSeestar,
    target: Target,
    exposure_s: float,
    filter: str,
    date_obs: datetime,
    site: Site,
    ccd_temp: float,
) -> FitsImage:
    """Header cards of a raw S50 light sub (protocol reference §6.1), in the device's order."""
    cards = {
        "CREATOR": f"ZWO {device.instrument}",
        "PRODUCER": "ZWO",
        "FOCALLEN": 250,
        "EQMODE": 0,
        "PROGRAM": device.firmware,
        "XBINNING": 1,
        "YBINNING": 1,
        "XPIXSZ": 2.9,
        "YPIXSZ": 2.9,
        "IMAGETYP": "Light",
        "EXPOSURE": float(exposure_s),
        "EXPTIME": float(exposure_s),
        "CCD-TEMP": round(ccd_temp, 4),
        "RA": target.ra_deg,
        "DEC": target.dec_deg,
        "SITELONG": site.lon,
        "SITELAT": site.lat,
        "DATE-OBS": date_obs.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "FILTER": filter,
        "INSTRUME": device.instrument,
        "BAYERPAT": "GRBG",
        "GAIN": 80,
        "TELESCOP": device.telescope,
        "OBJECT": target.name,
        "TOTALEXP": float(exposure_s),
    }
    return FitsImage(cards)


def sub_name(
    device: FakeSeestar, target: str, exposure_s: float, filter: str, saved: datetime
) -> str:
    """The raw sub name the device gives a frame saved at the aware moment ``saved``."""
    local = device.local_time(saved)
    return f"Light_{target}_{format_exposure(exposure_s)}_{filter}_{local:%Y%m%d-%H%M%S}.fit"


def add_sub(
    device: FakeSeestar,
    target: str | Target,
    exposure_s: float,
    filter: str,
    date_obs_utc: datetime,
    ra: float | None = None,
    dec: float | None = None,
    *,
    site: Site = VIENNA,
    save_delay_s: float = SAVE_DELAY_S,
    companions: bool = True,
    ccd_temp: float = 24.0,
) -> str:
    """Write one raw sub-frame (and its JPEG companions) as the device would.

    Parameters
    ----------
    device : FakeSeestar
        The device; its zone names the file.
    target : str or Target
        Target name, or a :class:`Target` (then ``ra``/``dec`` default to its position).
    exposure_s : float
        Exposure in seconds.
    filter : str
        ``"LP"`` or ``"IRCUT"``.
    date_obs_utc : datetime
        Aware start of the exposure (the header's ``DATE-OBS``).
    ra, dec : float, optional
        Pointing in degrees.
    site : Site
        Observing site for ``SITELAT`` / ``SITELONG``.
    save_delay_s : float
        Seconds from the end of the exposure to the save, which stamps the name.
    companions : bool
        Also write the ``.jpg`` and ``_thn.jpg`` companions.
    ccd_temp : float
        ``CCD-TEMP`` in °C.

    Returns
    -------
    str
        The ``MyWorks/<target>_sub/<name>`` path (an existing file of that name is replaced).
    """
    if isinstance(target, str):
        target = Target(target, ra if ra is not None else 0.0, dec if dec is not None else 0.0)
    elif ra is not None and dec is not None:
        target = Target(target.name, ra, dec)
    if date_obs_utc.tzinfo is None:
        raise PlanError("date_obs_utc must be time-zone aware (UTC).")
    saved = date_obs_utc + timedelta(seconds=exposure_s + save_delay_s)
    name = sub_name(device, target.name, exposure_s, filter, saved)
    folder = sub_folder_of(target.name)
    image = sub_image(device, target, exposure_s, filter, date_obs_utc, site, ccd_temp)
    device.storage.put(device_path(folder, name), image)
    if companions:
        stem = name.removesuffix(".fit")
        device.storage.put(device_path(folder, f"{stem}.jpg"), JPEG_PLACEHOLDER)
        device.storage.put(device_path(folder, f"{stem}_thn.jpg"), JPEG_PLACEHOLDER)
    return device_path(folder, name)
