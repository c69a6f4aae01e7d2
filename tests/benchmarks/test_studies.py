"""The study registry: every report section comes from a registered study, and a study outside the report order
is an error rather than a silently missing section."""

import pytest

from benchmarks.report import REPORT_ORDER, ReportError, studies
from benchmarks.studies import STUDIES, register_study


def test_every_placed_kind_has_its_study_with_required_fields_and_a_section() -> None:
    found = studies()
    assert [s.kind for s in found] == list(REPORT_ORDER)
    assert all(s.required and callable(s.section) for s in found)
    assert {s.kind for s in found if s.plots is not None} >= {"cifar_run", "specialise", "edge"}


def test_a_study_registered_twice_or_without_a_place_is_an_error(monkeypatch) -> None:
    studies()
    with pytest.raises(ValueError, match="registered twice"):
        register_study("eval_speed", ("x",), lambda results: [])
    monkeypatch.setitem(STUDIES, "new_study", STUDIES["eval_speed"])
    with pytest.raises(ReportError, match=r"\['new_study'\] are registered but have no place in REPORT_ORDER"):
        studies()
