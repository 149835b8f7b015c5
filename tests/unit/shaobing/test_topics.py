"""Topic strings (ARCHITECTURE §4) are built in one place and refuse wildcards in names."""

from __future__ import annotations

import pytest

from shaobing import topics


def test_topics_match_the_contract() -> None:
    assert topics.event_topic("riverside-01") == "shaobing/v1/riverside-01/event"
    assert topics.evidence_topic("n1", "abc") == "shaobing/v1/n1/evidence/abc"
    assert topics.status_topic("n1") == "shaobing/v1/n1/status"
    assert topics.ack_topic("n1") == "shaobing/v1/n1/ack"
    assert topics.sensor_topic("n1", "hr-01") == "shaobing/v1/n1/sensor/hr-01"
    assert topics.dispatch_topic("w-tianfu-03") == "shaobing/v1/hub/dispatch/w-tianfu-03"
    assert topics.event_subscription() == "shaobing/v1/+/event"
    assert topics.event_subscription("hub") == "$share/hub/shaobing/v1/+/event"
    assert topics.parse_node("shaobing/v1/n7/event") == "n7"
    assert topics.parse_node("other/v1/n7/event") is None
    assert topics.parse_evidence_id("shaobing/v1/n7/evidence/e1") == "e1"


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "x" * 200])
def test_wildcards_and_separators_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="node_id"):
        topics.event_topic(bad)
