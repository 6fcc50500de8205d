"""What goes into DeepOD's pull request: one table of our modules, the edits the upstream copy needs.

Adapting the tool to a move in ``deepod_mnp`` is a one-line change in
:data:`MODULES` (and in the ``module`` of an :data:`EDITS` entry that names it).
"""
from __future__ import annotations

from dataclasses import dataclass

# The subpackage DeepOD receives, and how our modules land in it.
TARGET_PACKAGE = "deepod.models.tabular.mnp"
TARGET_DIR = "deepod/models/tabular/mnp"

# Our module -> file in TARGET_DIR. Each is copied as it is, with its imports of
# deepod_mnp made relative; ``__init__.py`` comes from templates/ and exports MNP only.
MODULES = {
    "deepod_mnp.models.mnp": "model.py",
    "deepod_mnp.base": "_base.py",
    "deepod_mnp.persistence": "_persistence.py",
    "deepod_mnp._params": "_params.py",
    "deepod_mnp._validation": "_validation.py",
    "deepod_mnp.method.networks": "networks.py",
    "deepod_mnp.method.similarity": "similarity.py",
    "deepod_mnp.method.losses": "losses.py",
    "deepod_mnp.method.prototype_losses": "prototype_losses.py",
    "deepod_mnp.method.prototypes": "prototypes.py",
    "deepod_mnp.method.sampling": "sampling.py",
    "deepod_mnp.method.dwa": "dwa.py",
    "deepod_mnp.method.scaling": "scaling.py",
    "deepod_mnp.preprocessing": "preprocessing.py",  # the text-column encoding fitted with the model
    "deepod_mnp.method.fused": "fused.py",  # the scoring hot path
}
# The module that defines the MNP class.
MODEL_MODULE = "deepod_mnp.models.mnp"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur exactly once in ``module``) by ``new`` in the upstream copy."""

    module: str
    old: str
    new: str
    why: str


@dataclass(frozen=True)
class DropMethod:
    """Leave ``Class.method`` out of the upstream copy of ``module``."""

    module: str
    qualname: str
    why: str


@dataclass(frozen=True)
class ReplaceMethod:
    """Put the method in ``templates/<template>`` in place of ``Class.method`` in the upstream copy."""

    module: str
    qualname: str
    template: str
    why: str


# Upstream copies differ from ours only here; each entry says why.
EDITS = (
    Edit("deepod_mnp._validation", "ensure_all_finite=True, ", "",
         "check_array's default already rejects NaN and inf, and the keyword needs scikit-learn >= 1.6 "
         "(DeepOD declares >= 0.20)"),
    Edit("deepod_mnp.persistence",
         '    return torch.load(source, map_location="cpu", weights_only=True)\n',
         '    try:\n'
         '        return torch.load(source, map_location="cpu", weights_only=True)\n'
         '    except TypeError:  # torch < 1.13 has no weights_only\n'
         '        return torch.load(source, map_location="cpu")\n',
         "torch.load(weights_only=...) needs torch >= 1.13 (DeepOD declares >= 1.10)"),
    Edit("deepod_mnp.models.mnp",
         " Chunks this size stay in the CPU's cache;\n"
         "        on a CPU with several torch threads they are scored in parallel.\n",
         " Chunks this size stay in the CPU's cache.\n",
         "the upstream _base.py scores chunks one after another (see _score_chunks below)"),
    Edit("deepod_mnp.base", "chunked (threaded)\n", "chunked\n",
         "the upstream _base.py scores chunks one after another (see _score_chunks below)"),
)
DROPS: tuple[DropMethod | ReplaceMethod, ...] = (
    ReplaceMethod("deepod_mnp.base", "BaseDetector._score_chunks", "score_chunks.py.in",
                  "ours scores chunks in Python threads and sets torch's process-wide thread count while "
                  "they run; the upstream copy scores them one after another, with the same numbers"),
    ReplaceMethod("deepod_mnp.base", "BaseDetector._fit_threads", "fit_threads.py.in",
                  "ours sets torch's process-wide thread count to one while fit trains (read from our "
                  "environment variable); the upstream copy leaves the thread count to the user, as DeepOD "
                  "does"),
)
# Mentions of our documents in docstrings, reworded for a reader of DeepOD.
TEXT_REPLACEMENTS = {"BENCHMARKS.md": "deepod-mnp's BENCHMARKS.md",
                     "CONTRIBUTING.md": "deepod-mnp's CONTRIBUTING.md"}

# Top-level modules the upstream code may import besides the standard library:
# DeepOD's install requirements that a tabular model may use, and DeepOD itself.
DEEPOD_RUNTIME_MODULES = frozenset({"numpy", "scipy", "sklearn", "pandas", "torch", "tqdm", "deepod"})

# Other files of the pull request.
TABULAR_INIT = "deepod/models/tabular/__init__.py"
MODELS_INIT = "deepod/models/__init__.py"
TEST_PATH = "deepod/test/test_mnp.py"
README = "README.rst"
DOCS_API = "docs/api_reference.tabular.rst"
DOCS_BIB = "docs/zreferences.bib"
PATCH_NAME = "deepod-mnp.patch"
PIN_FIX_DIR = "pin-fix"
PIN_FIX_PATCH = "pin-fix.patch"

# Budget of the generated DeepOD unit test (fits a few small detectors).
TEST_PARAMS = {"epochs": 10, "epoch_steps": 8, "pretrain_epochs": 1, "n_prototypes": 2, "n_ensemble": 1}
# DeepOD's own tests run for EVIDENCE.md: two weakly supervised tabular models, and MNP's.
EVIDENCE_TESTS = ("deepod.test.test_rosas", "deepod.test.test_feawad", "deepod.test.test_mnp")

PAPER_TITLE = "Multi-Normal Prototypes Learning for Weakly Supervised Anomaly Detection"
PAPER_KEY = "Dong2024MNP"
PAPER_ROW = f"MNP, arXiv, 2024, weakly-supervised, {PAPER_TITLE} [#{PAPER_KEY}]_"
PAPER_REFERENCE = f'.. [#{PAPER_KEY}] Dong, Zhijin, et al. "{PAPER_TITLE}". arXiv:2408.14498. 2024.'
PAPER_BIBTEX = """@article{dong2024multi,
  title={Multi-Normal Prototypes Learning for Weakly Supervised Anomaly Detection},
  author={Dong, Zhijin and Liu, Hongzhi and Ren, Boyuan and Xiong, Weimin and Wu, Zhonghai},
  journal={arXiv preprint arXiv:2408.14498},
  year={2024}
}
"""


class UpstreamError(RuntimeError):
    """The pull request cannot be generated faithfully from the current source."""
