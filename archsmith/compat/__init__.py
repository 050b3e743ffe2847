"""Compatibility layers for code written for other NAS frameworks.

``archsmith.compat.nni`` runs NNI Retiarii (2.x) and NNI 3.0 NAS scripts with
their imports changed from ``nni`` to ``archsmith.compat.nni``; see
docs/migration.md for what still differs.
"""
