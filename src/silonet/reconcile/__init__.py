"""Level-triggered reconciliation: intent is committed first, devices follow."""

from silonet.reconcile.reconciler import Reconciler

__all__ = ["Reconciler"]
