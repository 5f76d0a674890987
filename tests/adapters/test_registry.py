"""A third-party channel registered by entry point, from a separate package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadrules.adapters import registry
from leadrules.adapters.base import Message

PLUGIN = """
from leadrules.adapters.base import Adapter, AdapterSettings, Receipt

class PigeonSettings(AdapterSettings):
    loft: str

class PigeonAdapter(Adapter):
    settings_model = PigeonSettings
    sent = []

    def send(self, message):
        PigeonAdapter.sent.append((self.settings.loft, message.key))
        return Receipt("pigeon", message.key)
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "pigeon_channel.py").write_text(PLUGIN)
    dist = tmp_path / "pigeon_channel-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pigeon-channel\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[leadrules.adapters]\npigeon = pigeon_channel:PigeonAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    yield
    sys.modules.pop("pigeon_channel", None)
    monkeypatch.undo()
    registry.refresh()


def test_an_adapter_from_another_package_is_found_by_entry_point(
    plugin: None, tmp_path: Path
) -> None:
    assert "pigeon" in registry.adapter_names()
    cls = registry.adapter_class("pigeon")
    record = {"prospect": "u1", "action": "notify"}
    cls("coop", {"loft": "north"}).send(Message("k/0", "coop", "sales", record, "s", "t"))
    assert cls.sent == [("north", "k/0")]  # type: ignore[attr-defined]


def test_channels_can_use_the_plugin_and_check_validates_its_settings(
    plugin: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadrules.engine.language.channels import load_channels

    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.yaml").write_text(
        "channels:\n  coop: {adapter: pigeon, loft: north}\n  bad: {adapter: pigeon}\n"
    )
    monkeypatch.chdir(tmp_path)
    channels, problems = load_channels(Path("config"))
    assert list(channels) == ["coop"]
    assert [str(p) for p in problems] == ["config/channels.yaml:3:8: missing setting 'loft'"]
