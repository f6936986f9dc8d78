"""Hypothesis settings profiles, chosen by HYPOTHESIS_PROFILE ("default" unless set).

tests/conftest.py imports this before any test module builds a settings object,
which copies the profile loaded then; scripts/check-property-tests runs "thorough".
"""

import os

from hypothesis import settings

# The same on a clean clone, a laptop and CI (where Hypothesis would load its
# derandomized "ci" profile): a new random seed each run, fixed with
# --hypothesis-seed=N; no example database carried between runs; a
# @reproduce_failure blob printed with any failure. No deadline: timing depends
# on the machine, so a fixed seed would not give the same result everywhere.
settings.register_profile(
    "default", settings.get_profile("default"), derandomize=False, database=None, print_blob=True, deadline=None
)
settings.register_profile("thorough", settings.get_profile("default"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
