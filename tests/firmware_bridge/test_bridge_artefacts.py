"""PROTOCOL.md and the C header carry exactly what the protocol table generates."""

from helpers.scripts import run_script

from firmware_bridge import artefacts
from firmware_bridge import protocol as P


def test_generated_blocks_are_up_to_date():
    assert artefacts.stale_artefacts() == [], "run scripts/generate_protocol_artefacts.py"


def test_the_check_notices_a_changed_table(monkeypatch):
    monkeypatch.setattr(P, "MAX_MUSCLES", P.MAX_MUSCLES + 1)
    assert set(artefacts.stale_artefacts()) == {artefacts.PROTOCOL_MD, artefacts.C_HEADER}


def test_every_field_and_flag_appears_in_both_artefacts():
    markdown = artefacts.PROTOCOL_MD.read_text(encoding="utf-8")
    header = artefacts.C_HEADER.read_text(encoding="utf-8")
    for layout in P.MESSAGES:
        assert f"### {layout.name} (0x{layout.type_id:02X}" in markdown
        assert f"}} mjb_{artefacts.snake(layout.name)};" in header
        for f in layout.fields:
            assert f"`{f.name}`" in markdown
    for flag in P.ESTIMATE_STATUS_FLAGS:
        assert f"#define MJB_STATUS_{flag.name} (1u << {flag.bit})" in header


def test_check_script_exits_zero_when_current():
    result = run_script("generate_protocol_artefacts", "--check")
    assert result.returncode == 0, result.stderr
