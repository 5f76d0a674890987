"""The memory channel: keeps every delivered message in a list, for tests."""

from __future__ import annotations

from typing import ClassVar

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt
from leadrules.engine.errors import DeliveryError


class MemorySettings(AdapterSettings):
    fail_times: int = 0  # raise a retryable DeliveryError on the first N sends


class MemoryAdapter(Adapter):
    settings_model = MemorySettings
    settings: MemorySettings
    _sent: ClassVar[dict[str, list[Message]]] = {}
    _attempts: ClassVar[dict[str, int]] = {}

    def send(self, message: Message) -> Receipt:
        count = self._attempts.get(self.channel, 0) + 1
        self._attempts[self.channel] = count
        if count <= self.settings.fail_times:
            raise DeliveryError(
                f"memory channel {self.channel!r}: failing on purpose ({count})", retryable=True
            )
        self._sent.setdefault(self.channel, []).append(message)
        return Receipt("memory", message.key)

    @classmethod
    def sent(cls, channel: str) -> list[Message]:
        return list(cls._sent.get(channel, []))

    @classmethod
    def clear(cls) -> None:
        cls._sent.clear()
        cls._attempts.clear()
