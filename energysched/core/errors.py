"""The one error type of the core: bad input, named and explained.

The core never lets an exception escape to its callers for bad *input* (a
malformed quantity in a pod, a weight that is not a number, an unknown workload
type). Such problems come back as an :class:`InputError` value; the controller
turns it into a Warning event and keeps the pod Pending, ``energysched explain``
prints it. Bad *configuration* (our own :class:`~energysched.core.params.ScheduleParams`)
is a programming or deployment error and raises ``ValueError`` at construction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputError:
    """A value the core cannot use: where it was, what it was, what is allowed.

    ``message`` reads like ``annotation energy.thesis.io/performance-weight of pod
    default/train-1 is "1.5": a decimal number from 0.0 (energy only) to 1.0
    (performance only) is allowed``.
    """

    #: The object it came from, e.g. ``pod default/train-1`` or ``node wyse``.
    subject: str
    #: Where in the object, e.g. ``spec.containers[0].resources.requests[cpu]``.
    field: str
    #: The offending value, verbatim (``None`` is spelled ``<missing>``).
    value: str
    #: What would have been accepted.
    allowed: str

    @property
    def message(self) -> str:
        return f'{self.field} of {self.subject} is "{self.value}": {self.allowed}'

    def __str__(self) -> str:
        return self.message


class InputErrorSignal(Exception):
    """Internal: carries an :class:`InputError` out of a deep parser.

    Raised only inside :mod:`energysched.core`; every public entry point catches
    it and returns the :class:`InputError` value instead.
    """

    def __init__(self, error: InputError) -> None:
        super().__init__(error.message)
        self.error = error
