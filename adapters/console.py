"""The console channel: prints each message; the default channel on a fresh machine."""

from __future__ import annotations

import sys
from typing import Literal

from leadrules.adapters.base import Adapter, AdapterSettings, Message, Receipt


class ConsoleSettings(AdapterSettings):
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleAdapter(Adapter):
    settings_model = ConsoleSettings
    settings: ConsoleSettings

    def send(self, message: Message) -> Receipt:
        stream = sys.stdout if self.settings.stream == "stdout" else sys.stderr
        record = message.record
        head = f"[{message.channel}] {record.get('action')} {record.get('prospect')} — {message.subject}"
        print(head, file=stream)
        for line in message.text.rstrip().splitlines():
            print(f"    {line}", file=stream)
        stream.flush()
        return Receipt("console", head)
