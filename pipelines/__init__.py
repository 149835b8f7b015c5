"""Scenario logic: pure, deterministic functions of (tracks | frames | readings | text, time) → findings.

No I/O here (no MQTT, HTTP, database or camera access). This package's ``__init__``
imports nothing heavy; each pipeline module imports what it needs.
"""
