"""Monitoring: reference profiles, drift and data-quality checks, reports.

>>> from loopml.monitoring import profile, drift_report
>>> reference = profile(training_frame)
>>> report = drift_report(reference, profile(recent_frame, reference))
>>> report["drift"]["message"]
"""

from loopml.monitoring.drift import DriftOptions, DriftReport, compare
from loopml.monitoring.profile import Profile, profile
from loopml.monitoring.quality import QualityFinding, QualityLimits, quality
from loopml.monitoring.report import drift_report

__all__ = [
    "DriftOptions",
    "DriftReport",
    "Profile",
    "QualityFinding",
    "QualityLimits",
    "compare",
    "drift_report",
    "profile",
    "quality",
]
