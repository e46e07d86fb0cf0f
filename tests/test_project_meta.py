"""Project-wide promises: every variable documented, every management command tested."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

SETTING = re.compile(r'env_[a-z]+\(\s*"([A-Z0-9_]+)"')
PROCFILE_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)")


def documented() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def test_every_setting_is_listed_in_env_example():
    used = set()
    for module in ("ingestor_project/settings.py", "tasks/schema_config.py"):
        used |= set(SETTING.findall((ROOT / module).read_text()))
    used |= set(PROCFILE_VARIABLE.findall((ROOT / "Procfile").read_text()))
    assert used, "the pattern found no settings at all"
    assert sorted(used - documented()) == []


def test_every_management_command_has_a_test():
    commands = {
        path.stem
        for app in ("listeners", "tasks", "ingestor_project", "hasim")
        for path in (ROOT / app / "management" / "commands").glob("*.py")
        if not path.name.startswith("_")
    }
    assert commands, "no management commands found"
    tests = "\n".join(p.read_text() for p in Path(ROOT / "tests").rglob("test_*.py"))
    untested = sorted(c for c in commands if f'"{c}"' not in tests)
    assert untested == [], f"commands without a test calling them by name: {untested}"
