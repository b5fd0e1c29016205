"""The README is the user's manual: its configuration table lists every setting with its default."""

from fixtures import ROOT
from logpulse.config import Settings

README = (ROOT / "README.md").read_text()


def test_configuration_table_lists_every_setting_with_its_default() -> None:
    for name, field in Settings.model_fields.items():
        default = str(field.default).lower() if isinstance(field.default, bool) else str(field.default)
        cell = "(empty)" if default == "" else f"`{default}`"
        assert f"| `{name.upper()}` | {cell} |" in README, name


def test_readme_has_the_manual_sections() -> None:
    for heading in (
        "## Quickstart",
        "## Configuration",
        "## API",
        "### Definitions",
        "## Anomaly scoring",
        "## Delivery guarantees",
        "## Architecture",
        "## Scaling out",
        "## Performance",
        "## Troubleshooting",
        "```mermaid",
    ):
        assert heading in README, heading
