"""Test kit shipped with the product: fakes of our own seams and real-part launchers.

Nothing under ``src/clawfleet`` imports this package (import-linter checks).
"""
