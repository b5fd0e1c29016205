"""docs/configuration.md, written from `Settings`: the fields are the one source of the reference.

    python -m logpulse.config_docs --write     # after adding or changing a setting

`tests/unit/test_configuration_doc.py` renders the page again and fails when the file differs, so
the reference cannot drift from the code. Each row takes the variable name, default, accepted values
and `Field(description=...)` of one field, in the order `Settings` declares them.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

from annotated_types import Ge, Gt
from pydantic.fields import FieldInfo

from logpulse.config import Settings

DOC = Path("docs") / "configuration.md"
"""Where the page lives, relative to the repository root."""

_INTRO = """\
# Configuration

<!-- Generated from logpulse.config.Settings by `python -m logpulse.config_docs --write`: edit the
     fields' descriptions there, not this file (tests/unit/test_configuration_doc.py compares). -->

Every setting is read from the environment, else from `.env.local` in the working directory (or the
file named by `LOGPULSE_ENV_FILE`), else the default. Names are case-insensitive.

Settings are checked when a command starts, and every problem is one line naming the variable and
where its value came from, without a traceback (unless `LOG_LEVEL=DEBUG`):

```
error: unknown setting POLL_INTERVL_S in .env.local, line 12; did you mean POLL_INTERVAL_S?
error: WORKERS=abc (from .env.local, line 14): Input should be a valid integer, unable to parse string as an integer
error: INFLUXDB_URL=localhost:8086 (from environment): expected an http:// or https:// URL such as http://127.0.0.1:8086
```

A key in `.env.local` that is no setting is an error (a typo would otherwise be ignored silently).
To add a check: a pydantic `field_validator` on `Settings` raising `ValueError("what is wrong")`, or a
function in `logpulse.config.CHECKS` raising `bad_setting(name, value, problem)`. To add a setting: a
field on `Settings` with `Field(default, description=...)`, then `python -m logpulse.config_docs --write`.

| variable | default | values | meaning |
| --- | --- | --- | --- |
"""


def default_text(field: FieldInfo) -> str:
    """The default as a user writes it in `.env.local`: booleans in lower case, nothing as (empty)."""
    value = field.default
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "(empty)" if text == "" else f"`{text}`"


def values_text(field: FieldInfo) -> str:
    """What the field accepts: the choices of a Literal, else its type with any lower bound."""
    if typing.get_origin(field.annotation) is typing.Literal:
        return " \\| ".join(f"`{choice}`" for choice in typing.get_args(field.annotation))
    kind = {bool: "true/false", int: "integer", float: "number", str: "text"}.get(
        field.annotation,  # type: ignore[arg-type]
        str(field.annotation),
    )
    for bound in field.metadata:
        if isinstance(bound, Ge):
            kind += f" ≥ {bound.ge}"
        elif isinstance(bound, Gt):
            kind += f" > {bound.gt}"
    return kind


def render() -> str:
    """The whole page."""
    rows = []
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{name.upper()}` | {default_text(field)} | {values_text(field)} | {meaning} |")
    return _INTRO + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC} (else print the page)")
    args = parser.parse_args(argv)
    if args.write:
        DOC.write_text(render())
        print(f"wrote {DOC}")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
