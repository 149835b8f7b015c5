"""The one severity definition: the three levels, their order, and the contract's use of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.base import Severity as PipelineSeverity
from shaobing import contract, taxonomy
from shaobing.severity import SEVERITIES, Severity, as_severity, max_severity, severity_rank


def test_levels_and_order() -> None:
    assert SEVERITIES == ("normal", "urgent", "emergency")
    assert [severity_rank(s) for s in SEVERITIES] == [0, 1, 2]
    assert max_severity("urgent", "normal") == "urgent"
    assert max_severity("normal", "emergency", "urgent") == "emergency"
    assert max_severity("normal") == "normal"
    with pytest.raises(ValueError):
        severity_rank("critical")


def test_as_severity_accepts_only_the_three_levels() -> None:
    for s in SEVERITIES:
        assert as_severity(s) == s
    for bad in ("Emergency", "high", ""):
        with pytest.raises(ValueError, match="expected normal, urgent or emergency"):
            as_severity(bad)


def test_every_layer_names_the_same_type() -> None:
    assert contract.Severity is Severity and PipelineSeverity is Severity
    assert taxonomy.SEVERITIES is SEVERITIES and taxonomy.max_severity is max_severity
    # the wire refuses what as_severity refuses
    event = contract.Event.model_json_schema()["properties"]["severity"]
    assert tuple(event["enum"]) == SEVERITIES


def test_the_wire_refuses_an_unknown_severity() -> None:
    with pytest.raises(ValidationError) as info:
        contract.DispatchNotice.model_validate({"severity": "critical"})
    bad = {err["loc"][0]: err["type"] for err in info.value.errors()}
    assert bad["severity"] == "literal_error"
