"""Hypothesis runs derandomized (the same examples every run, so CI is reproducible) and
without per-example deadlines (2-core CI machines under load would make timing flaky).
Set HYPOTHESIS_PROFILE=explore for fresh random examples."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
