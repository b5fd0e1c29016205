"""docs/configuration.md is written from `Settings`: a setting added or changed without regenerating
the page fails here, with the command that fixes it."""

from fixtures import ROOT
from logpulse.config import Settings
from logpulse.config_docs import DOC, render


def test_configuration_page_is_generated_from_the_settings() -> None:
    assert (ROOT / DOC).read_text() == render(), (
        "docs/configuration.md is stale: python -m logpulse.config_docs --write"
    )


def test_every_setting_has_a_description_and_a_row_with_its_default() -> None:
    page = render()
    for name, field in Settings.model_fields.items():
        assert field.description, f"Settings.{name} needs Field(description=...)"
        assert f"| `{name.upper()}` | " in page, name
    assert "| `STORE_RAW` | `true` | true/false |" in page
    assert "| `INFLUXDB_RETENTION_POLICY` | (empty) | text |" in page
    assert "| `LOG_FORMAT` | `logpulse` | `logpulse` \\| `nginx` \\| `apache` \\| `json` |" in page
