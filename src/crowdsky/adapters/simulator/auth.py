"""The device side of the firmware 7.18+ handshake: checking signatures, making test keys.

The simulator plays the Seestar, so it verifies what a client signed with the public half of a
key pair that the tests or ``crowdsky simulate --key-out`` generate on the spot. No key of the
real Seestar app is ever shipped or used here.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["generate_test_keypair", "verify_signature"]


def verify_signature(public_pem: bytes, challenge: str, sign: str) -> bool:
    """Whether ``sign`` is a valid signature of ``challenge`` (what the device checks).

    Parameters
    ----------
    public_pem : bytes
        The public key, PEM (SubjectPublicKeyInfo or PKCS#1).
    challenge : str
        The challenge that was sent.
    sign : str
        The base64 signature received in ``verify_client``.

    Returns
    -------
    bool
        False for a wrong signature, bad base64 or a non-RSA key.
    """
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        public = load_pem_public_key(public_pem)
        raw = base64.b64decode(sign.encode("ascii"), validate=True)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return False
    if not isinstance(public, RSAPublicKey):
        return False
    try:
        public.verify(raw, challenge.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def generate_test_keypair(key_size: int = 2048) -> tuple[bytes, bytes]:
    """A fresh RSA key pair for tests and the simulator (never the app's key).

    Parameters
    ----------
    key_size : int, optional
        Modulus size in bits.

    Returns
    -------
    private_pem, public_pem : bytes
        PKCS#8 private key and SubjectPublicKeyInfo public key, both PEM, unencrypted.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem
