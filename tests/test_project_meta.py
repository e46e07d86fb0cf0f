"""Project-wide promises: every variable read once, by the settings, and documented; every
management command tested."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import ROOT

SETTING = re.compile(r'env_[a-z]+\(\s*"([A-Z0-9_]+)"')
PRODUCT = ("events", "listeners", "tasks", "ingestor_project")
SETTINGS = "ingestor_project/settings.py"
PROCFILE_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)")


def documented() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def setting_reads() -> dict[str, list[str]]:
    """Every env_*("NAME") call in the product code: {module path: [NAME, ...]}."""
    return {
        str(path.relative_to(ROOT)): SETTING.findall(path.read_text())
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_every_setting_is_listed_in_env_example():
    used = {name for names in setting_reads().values() for name in names}
    used |= set(PROCFILE_VARIABLE.findall((ROOT / "Procfile").read_text()))
    assert used, "the pattern found no settings at all"
    assert sorted(used - documented()) == []


def test_every_variable_is_read_once_by_the_settings():
    reads = setting_reads()
    elsewhere = {module: names for module, names in reads.items() if names and module != SETTINGS}
    assert elsewhere == {}, "read the environment in ingestor_project/settings.py only"
    names = reads[SETTINGS]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_only_the_settings_helpers_read_the_environment():
    # settings.py exports PROMETHEUS_MULTIPROC_DIR; celery.py, wsgi.py and gunicorn_logging.py
    # (gunicorn's master) default DJANGO_SETTINGS_MODULE: writes, not reads.
    allowed = {
        "ingestor_project/env.py",
        SETTINGS,
        "ingestor_project/celery.py",
        "ingestor_project/wsgi.py",
        "ingestor_project/gunicorn_logging.py",
    }
    readers = sorted(
        module
        for module in setting_reads()
        if module not in allowed and _touches_environment((ROOT / module).read_text())
    )
    assert readers == [], "add a setting (ingestor_project/settings.py) and read that instead"


def _touches_environment(source: str) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv", "environb")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        for node in ast.walk(ast.parse(source))
    )


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
