"""Parameter constraints declared per class and the one function that checks them.

A detector declares ``_parameter_constraints``, a class-level dict from a
parameter name to a list of constraints (in the style of scikit-learn's), and a
subclass extends its parent's dict: ``{**Parent._parameter_constraints, ...}``.
:func:`validate_params` checks every declared parameter at ``fit`` and raises a
``ValueError`` naming the parameter, its value and what is allowed.

A constraint is an :class:`Interval`, an :class:`Options`, a :class:`Predicate`
or a string literal (``'auto'``) that the value may equal.

It also holds the forms of DeepOD's shared network parameters, which every
detector declares through :class:`~deepod_mnp.base.BaseDetector`:
``hidden_dims`` (:func:`parse_hidden_dims`), ``act`` (:data:`ACTIVATION_NAMES`) and
``epoch_steps=-1`` (:data:`FULL_PASS_STEPS`).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch


@dataclass(frozen=True)
class Interval:
    """An integer (``kind=numbers.Integral``) or finite real number in ``[low, high]``.

    Bools never count, and NaN or an infinity is never accepted, even without
    bounds: a real parameter is always a finite number.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True

    def accepts(self, value: Any) -> bool:
        return self._of_kind(value) and not self._outside(value)

    def _of_kind(self, value: Any) -> bool:
        return not isinstance(value, (bool, np.bool_)) and isinstance(value, self.kind)

    @staticmethod
    def _finite(value: Any) -> bool:
        return isinstance(value, numbers.Integral) or math.isfinite(value)

    def _outside(self, value: Any) -> bool:
        if not self._finite(value):
            return True
        too_low = self.low is not None and (value < self.low if self.low_inclusive else value <= self.low)
        return too_low or (self.high is not None and value > self.high)

    def describe(self) -> str:
        integer = self.kind is numbers.Integral
        if integer and self.high is None and self.low in (0, 1):
            return "a positive integer" if self.low == 1 else "a non-negative integer"
        return f"{'an integer' if integer else 'a number'} in {self._brackets()}"

    def _brackets(self) -> str:
        low = f"{'[' if self.low_inclusive else '('}{self.low}" if self.low is not None else "(-inf"
        return f"{low}, {self.high}]" if self.high is not None else f"{low}, inf)"

    def error(self, name: str, value: Any) -> str | None:
        """The specific message when ``value`` is a number (of the wrong kind or out of range)."""
        if isinstance(value, str) or not isinstance(value, (numbers.Number, np.bool_)):
            return None
        if not self._of_kind(value):
            kind = "an integer" if self.kind is numbers.Integral else "a number"
            return f"{name} must be {kind}, got {value!r}."
        if not self._finite(value):
            return f"{name} must be a finite number, got {value!r}."
        return f"{name}={value!r} is outside {self._brackets()}."


@dataclass(frozen=True)
class Options:
    """One of a fixed tuple of values."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return isinstance(value, type(self.values[0])) and value in self.values

    def describe(self) -> str:
        return f"one of {self.values}"

    def error(self, name: str, value: Any) -> str | None:
        return f"{name} must be one of {self.values}, got {value!r}."


@dataclass(frozen=True)
class Predicate:
    """Any value for which ``check(value)`` is true; ``description`` says what that means."""

    check: Callable[[Any], bool]
    description: str

    def accepts(self, value: Any) -> bool:
        return bool(self.check(value))

    def describe(self) -> str:
        return self.description

    def error(self, name: str, value: Any) -> str | None:
        return None


Constraint = Union[Interval, Options, Predicate, str]

#: Shorthands for the constraints most parameters use.
POSITIVE_INT = Interval(numbers.Integral, 1)
NON_NEGATIVE_INT = Interval(numbers.Integral, 0)
POSITIVE_REAL = Interval(numbers.Real, 0, low_inclusive=False)
NON_NEGATIVE_REAL = Interval(numbers.Real, 0)
BOOLEAN = Predicate(lambda v: isinstance(v, (bool, np.bool_)), "True or False")
NONE = Predicate(lambda v: v is None, "None")
#: ``random_state`` as scikit-learn takes it (``check_random_state``), plus a NumPy ``Generator``.
RANDOM_STATE = [NONE, Interval(numbers.Integral, 0, 2**32 - 1),
                Predicate(lambda v: isinstance(v, (np.random.RandomState, np.random.Generator)),
                          "a numpy.random.RandomState or numpy.random.Generator")]

#: ``epoch_steps=-1``: DeepOD's "all the batches", one full pass over the unlabeled samples per epoch
#: (its batches: :func:`deepod_mnp.method.sampling.full_pass_batches`).
FULL_PASS_STEPS = Predicate(
    lambda v: isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v == -1,
    "-1 (one full pass over the unlabeled samples per epoch)")

#: Every ``act`` accepted: the element-wise activations of ``torch.nn`` that need no argument (DeepOD's
#: MLPs instantiate ``torch.nn.modules.activation.<act>()``). ``Threshold`` (needs arguments),
#: ``GLU`` (halves the width), ``MultiheadAttention`` and the softmaxes are not element-wise; ``Module``
#: (which that module also holds) is no activation.
ACTIVATION_NAMES = tuple(name for name in torch.nn.modules.activation.__all__ if name not in (
    "Threshold", "GLU", "MultiheadAttention", "Softmin", "Softmax", "Softmax2d", "LogSoftmax"))


def parse_hidden_dims(hidden_dims: Any) -> list[int]:
    """``'100,50'``, ``100`` or ``[100, 50]`` as a non-empty list of positive ints (DeepOD's forms)."""
    if isinstance(hidden_dims, str):
        try:
            dims = [int(d) for d in hidden_dims.split(",") if d.strip()]
        except ValueError:
            dims = None
    elif isinstance(hidden_dims, numbers.Integral) and not isinstance(hidden_dims, (bool, np.bool_)):
        dims = [int(hidden_dims)]
    elif isinstance(hidden_dims, (list, tuple)) and all(
            isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) for d in hidden_dims):
        dims = [int(d) for d in hidden_dims]
    else:
        dims = None
    if not dims or min(dims) < 1:
        raise ValueError(f"hidden_dims must be a comma-separated string, an int or a list of positive "
                         f"ints with at least one layer, e.g. '100,50'; got {hidden_dims!r}.")
    return dims


def _is_hidden_dims(hidden_dims: Any) -> bool:
    try:
        parse_hidden_dims(hidden_dims)
    except ValueError:
        return False
    return True


HIDDEN_DIMS = Predicate(_is_hidden_dims, "a comma-separated string, an int or a list of positive ints "
                                         "with at least one layer, e.g. '100,50'")
ACTIVATION = Options(ACTIVATION_NAMES)


def _accepts(constraint: Constraint, value: Any) -> bool:
    if isinstance(constraint, str):
        return isinstance(value, str) and value == constraint
    return constraint.accepts(value)


def _describe(constraint: Constraint) -> str:
    return repr(constraint) if isinstance(constraint, str) else constraint.describe()


def check_param(name: str, value: Any, constraints: list[Constraint]) -> None:
    """Raise ``ValueError`` unless ``value`` meets one of ``constraints``.

    When exactly one constraint is not a literal and it has a specific message
    for the value (a number out of range, an integer that is a float), that
    message is used; otherwise the message lists every allowed form.
    """
    if any(_accepts(c, value) for c in constraints):
        return
    specific = [c for c in constraints if not isinstance(c, str)]
    if len(specific) == 1:
        message = specific[0].error(name, value)
        if message is not None:
            raise ValueError(message)
    allowed = " or ".join(_describe(c) for c in constraints)
    raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def validate_params(estimator: Any) -> None:
    """Check every parameter that ``type(estimator)._parameter_constraints`` declares."""
    for name, constraints in type(estimator)._parameter_constraints.items():
        check_param(name, getattr(estimator, name), constraints)
