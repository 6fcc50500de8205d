"""Serving and scale: fused fast scoring, ONNX export, streaming and distributed scoring, sampled fit.

Modules (each imports its optional engine lazily and names the extra to install):

* :mod:`~deepod_mnp.serving.fused` - a fitted MNP ensemble as one module of batched products
  (:class:`~deepod_mnp.serving.fused.FusedMNP`), the input scaling folded in; torch only.
* :mod:`~deepod_mnp.serving.onnx` - ``export_onnx`` and ``OnnxScorer`` (extra ``onnx``).
* :mod:`~deepod_mnp.serving.stream` - chunked Parquet/CSV scoring, the ``deepod-mnp score``
  command (extra ``parquet``).
* :mod:`~deepod_mnp.serving.dask` - score a Dask DataFrame, the model shipped once per worker
  (extra ``dask``).
* :mod:`~deepod_mnp.serving.spark` - score a Spark DataFrame with ``mapInPandas`` (extra ``spark``).
* :mod:`~deepod_mnp.serving.sampling` - fit from a Parquet table bigger than memory: all labeled
  anomalies and a uniform sample of the unlabeled rows (extra ``parquet``).

The package imports the detectors, never the CLI or the benchmark; importing it imports nothing
heavy (the CLI's ``score`` subcommand registers through :mod:`deepod_mnp.serving.cli`).
"""
