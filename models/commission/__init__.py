"""Commissioning: a model for ONE machine from that machine's own telemetry in InfluxDB.

``renkei models commission`` (:mod:`renkei.models.commission.cli`) reads the machine's rows
as the cloud ingest stored them (:mod:`~renkei.models.commission.query`), checks the period
with the gateway's baseline check and decides to refuse, ask, or go
(:mod:`~renkei.models.commission.decision`), fits a Mahalanobis model (on 5-row trailing
means of the stored fields, which the gateway computes itself) on the first 75 % and sets
the threshold from a target false-alarm rate per day on the held-back 25 %
(:mod:`~renkei.models.commission.fit`, :mod:`~renkei.models.commission.threshold`), writes
and signs the artifact (:mod:`~renkei.models.commission.export`) and, with ``--deploy``,
hands it to the canary rollout.
"""
