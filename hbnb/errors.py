"""The errors hbnb raises for bad input: each message names the file, key or value and the fix."""

from __future__ import annotations


class HbnbError(Exception):
    """Base class of every error hbnb raises on purpose."""


class DataFileError(HbnbError, FileNotFoundError):
    """A data file is missing or cannot be fetched."""


class ChecksumError(HbnbError, ValueError):
    """A data file's SHA-256 differs from the shipped checksum list; the file is never used."""


class MalformedDataError(HbnbError, ValueError):
    """A record in a data file does not have the expected shape."""


class UnknownNameError(HbnbError, KeyError):
    """An unknown data-set name, language code or model spec."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(HbnbError, OSError):
    """A model spec that is neither built in, a local folder, nor reachable on a hub."""


class ParamsError(HbnbError, ValueError):
    """A parameter file or value that fails validation."""


class NonFiniteError(HbnbError, ArithmeticError):
    """A training loss, gradient or embedding that is NaN or infinite: the run diverged."""


class WriteError(HbnbError, OSError):
    """A result could not be written (a full disk, a read-only folder); nothing earlier was lost."""


class FolderBusyError(HbnbError):
    """Another process is writing the same run or experiment folder."""


class UntrustedCodeError(HbnbError):
    """A model folder would run its own Python, and the user did not allow remote code."""
