#!/usr/bin/env python3
"""Regenerate .env.local from the Settings fields (defaults and descriptions): run after adding one.
tests/test_compose.py fails when .env.local and the settings disagree."""

from pathlib import Path

from logpulse.config import Settings

lines = [
    "# logpulse configuration. Every value can be overridden by an environment variable of the same name.",
    "# Read from .env.local in the working directory (or the file named by LOGPULSE_ENV_FILE).",
]
for name, f in Settings.model_fields.items():
    value = str(f.default).lower() if isinstance(f.default, bool) else f.default
    lines += ["", f"# {f.description}", f"{name.upper()}={value}"]
Path(__file__).resolve().parent.parent.joinpath(".env.local").write_text("\n".join(lines) + "\n")
