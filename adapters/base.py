"""The one small interface every delivery channel implements.

An adapter turns a rendered `Message` into one delivery attempt. It raises `DeliveryError`
(`retryable=True` for a receiver that is down or busy, `False` for a message that can never
be delivered, such as a missing e-mail address); the dispatcher owns retries and dead letters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from leadrules.engine.envrefs import MissingEnv, resolve
from leadrules.engine.errors import DeliveryError


@dataclass(frozen=True)
class Message:
    """What an adapter delivers: a decision record with its rendered template."""

    key: str  # idempotency key: the same on every attempt of this decision
    channel: str
    audience: Literal["sales", "prospect"]  # `notify` goes to sales, `send` to the prospect
    record: dict[str, Any]  # the decision record, exactly as in a replay's output
    subject: str
    text: str  # the rendered template (Markdown or plain text)
    html: str | None = None
    to: str | None = None  # the prospect's e-mail address for `send`, when known
    context: dict[str, Any] = field(default_factory=dict)  # the template variables


@dataclass(frozen=True)
class Receipt:
    adapter: str
    detail: str = ""


class AdapterSettings(BaseModel):
    """Base of each adapter's settings model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


def resolve_env(value: str, *, setting: str) -> str:
    """Replace `${VAR}` with the environment's value; a missing variable is a final error."""
    try:
        return resolve(value)
    except MissingEnv as exc:
        raise DeliveryError(
            f"setting {setting!r} needs environment variable {exc.name}, which is not set",
            retryable=False,
        ) from None


class Adapter(ABC):
    """A delivery channel. Subclasses set `settings_model` and implement `send`."""

    settings_model: ClassVar[type[AdapterSettings]] = AdapterSettings

    def __init__(self, channel: str, settings: dict[str, Any]) -> None:
        self.channel = channel
        self.settings = self.settings_model.model_validate(settings)

    def setting(self, name: str) -> Any:
        """A setting with `${ENV}` references resolved now, at send time."""
        value = getattr(self.settings, name)
        if isinstance(value, str):
            return resolve_env(value, setting=name)
        return value

    @abstractmethod
    def send(self, message: Message) -> Receipt:
        """Deliver one message, or raise `DeliveryError`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called when the daemon stops or reloads channels."""
