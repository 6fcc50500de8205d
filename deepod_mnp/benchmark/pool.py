"""The development pool: which data sets choose MNP's defaults and which confirm them.

Fixed on 2026-12-01 before any result on the pool was looked at, by a rule that
reads only file names and row counts (never labels or scores):

1. sort the 24 sets of ``../shared/data/adbench_pool/`` by their number of rows;
2. pair them in that order (ranks 1-2, 3-4, ...);
3. in each pair, the set whose name (without the ADBench number, case-folded)
   comes first alphabetically goes to the choosing half, the other to the
   confirming half.

Defaults and design choices are made on *development splits* (carved from the
training split only; see ``scripts/select_defaults.py``) of the choosing half,
and may also use development splits of the nine main sets, as the earlier
choices of defaults did. They are confirmed on the test splits of the
confirming half and of the nine main sets. Both halves are published in
BENCHMARKS.md.
"""
from __future__ import annotations

CHOOSING: tuple[str, ...] = (
    "15_Hepatitis", "21_Lymphography", "14_glass", "37_Stamps", "18_Ionosphere", "4_breastw",
    "17_InternetAds", "25_musk", "1_ALOI", "8_celeba", "10_cover", "11_donors",
)
CONFIRMING: tuple[str, ...] = (
    "45_wine", "46_WPBC", "42_WBC", "39_vertebral", "43_WDBC", "40_vowels",
    "20_letter", "41_Waveform", "24_mnist", "34_smtp", "33_skin", "16_http",
)
POOL: tuple[str, ...] = CHOOSING + CONFIRMING
POOL_DIR = "adbench_pool"
