"""Command-line benchmarks; each prints ratios against a baseline measured in the same run.

Benchmarks are not tests: some read the shared corpora beside a checkout when present
(``../shared/corpora``, see ``--corpora`` in each one's help) and run without them otherwise.
"""

from pathlib import Path

# The corpora folder beside this checkout (only the lead's machines have it).
SHARED_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
