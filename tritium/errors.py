"""Typed exceptions for errors a user can cause.

Every error a user can trigger (bad config, missing tool, malformed checkpoint, corrupted
link, failing simulation) derives from :class:`TritiumError`. Its message says what went
wrong *and what to do*; the CLI prints it as one line and exits non-zero, no traceback.
"""


class TritiumError(Exception):
    """Base class of all user-facing tritium errors."""

    #: process exit status the CLI uses for this kind of error
    exit_code = 2


class ConfigError(TritiumError, ValueError):
    """An engine/SoC configuration is invalid or impossible (e.g. a width out of range)."""


class ToolchainError(TritiumError):
    """A required external tool (Verilator, g++, make, perl, yosys…) is missing or broken."""

    exit_code = 3


class SimulationError(TritiumError):
    """A simulation failed: a mismatch against the golden model, a stall, or a crash."""

    exit_code = 1


class ShapeError(TritiumError, ValueError):
    """Operands have a shape the configured hardware cannot take."""


# --- command-line input ----------------------------------------------------------------------

class UsageError(TritiumError, ValueError):
    """A command-line value is malformed or out of range (argparse's own errors included)."""


class DeviceError(TritiumError):
    """The device refused a request or reported an engine error."""


class DeviceConfigError(TritiumError):
    """The device's configuration does not fit what the host wants to do (an engine it does
    not hold, a model its memories cannot take, another protocol version)."""
