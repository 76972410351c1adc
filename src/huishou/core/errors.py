"""Every exception a user can see. The CLI prints them as `huishou <stage>: error: ...` and exits 2.

A leaf: imports nothing of the project. Each error's docstring says when it is raised.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error the user can fix (bad input, bad params, missing model); never a bug."""

    exit_code = 2


class ConfigError(UserError, ValueError):
    """params.yaml is missing a key, has an unknown one, or a value breaks a rule; or a stage read an
    undeclared param."""


class DataValidationError(UserError, ValueError):
    """A raw table or an input file breaks its contract; the message names file, column, rule and keys."""


class FeatureMismatchError(UserError, ValueError):
    """The features handed to a model do not match the ones it was trained on."""


class ModelNotFoundError(UserError, LookupError):
    """No model where one was asked for (registry alias, version or file)."""


class ModelIntegrityError(UserError):
    """A saved model is malformed or its files changed since they were saved; it is not loaded."""


class DriftFlaggedError(UserError):
    """`huishou score --fail-on-drift`: the scores were written, but a PSI crossed score.psi_flag."""

    exit_code = 3


class NothingToScoreError(UserError):
    """No loan is active at the snapshot: nothing was scored and nothing was written."""

    exit_code = 4


class BusyError(UserError):
    """Another run is writing the same output right now (its lock is held); nothing was written."""

    exit_code = 75  # EX_TEMPFAIL: try again later
