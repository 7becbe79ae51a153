"""Password hashing for console sign-in: argon2id with argon2-cffi's current defaults; a hash
made with older parameters is replaced at the next good sign-in."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pbxctl.core.errors import InputError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer is refused unhashed: no one makes the server hash megabytes
_HASHER = PasswordHasher()
# Verified against when the login does not exist, so that an unknown login costs the same
# time as a wrong password (no way to list logins by timing).
_DUMMY = _HASHER.hash("pbxctl-no-such-login")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InputError(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InputError(f"password: at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise InputError("password: no leading or trailing blanks (a pasted newline?)")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
