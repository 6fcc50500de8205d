"""Maintainer tools of deepod-mnp (not installed with the package)."""
