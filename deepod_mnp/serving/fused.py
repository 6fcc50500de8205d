"""Fused fast scoring: a fitted MNP ensemble as one module of batched matrix products.

The implementation is :mod:`deepod_mnp.method.fused` (the detectors' scoring
hot path uses it, and detectors may import only ``method/``); this is its
public, serving-side name.
"""
from __future__ import annotations

from deepod_mnp.method.fused import (
    Components,
    FusedMNP,
    affine_scaling,
    flops_per_row,
    fused_for,
    fused_scores,
)

__all__ = ["Components", "FusedMNP", "affine_scaling", "flops_per_row", "fused_for", "fused_scores"]
