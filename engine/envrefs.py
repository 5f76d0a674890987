"""`${ENV_VAR}` references in deployment settings, resolved in one place with one rule.

Secrets are written as `${VAR}` under `config/` and read from the environment only when they
are needed (a message is sent, the daemon starts), so a replay needs none of them. A
reference to a variable that is unset or empty is an error (`MissingEnv`); each caller
decides what that means (a write key is left out; a delivery fails for good).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingEnv(LookupError):
    """A `${VAR}` reference names a variable that is unset or empty."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"environment variable {name} is not set")


def resolve(value: str, environ: Mapping[str, str] | None = None) -> str:
    """`value` with every `${VAR}` replaced by the variable's value; raises `MissingEnv`."""
    env = os.environ if environ is None else environ

    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if not env.get(name):
            raise MissingEnv(name)
        return env[name]

    return ENV_REF.sub(one, value)
