"""Serving and scale: fused fast scoring, ONNX export, streaming and distributed scoring, sampled fit.

Modules (each imports its optional engine lazily and names the extra to install):

* :mod:`~deepod_mnp.serving.fused` - a fitted MNP ensemble as one module of batched products
  (:class:`~deepod_mnp.serving.fused.FusedMNP`), the input scaling folded in; torch only.
* :mod:`~deepod_mnp.serving.onnx` - ``export_onnx`` and ``OnnxScorer`` (extra ``onnx``).
* :mod:`~deepod_mnp.serving.stream` - chunked Parquet/CSV scoring, the ``deepod-mnp score``
  command, with bad-row policies and resume (pyarrow, a dependency).
* :mod:`~deepod_mnp.serving.rows` - rows checked as ``decision_function`` checks them, and a pandas
  frame scored under a bad-row policy (behind the stream, Dask, Spark and MLflow paths).
* :mod:`~deepod_mnp.serving.dask` - score a Dask DataFrame, the model scattered once per worker
  (extra ``dask``).
* :mod:`~deepod_mnp.serving.spark` - score a Spark DataFrame with ``mapInPandas`` (extra ``spark``).
* :mod:`~deepod_mnp.serving.mlflow_model` - a fitted detector as an MLflow pyfunc model for
  ``mlflow models serve`` and MLflow's registry (extra ``serve``).
* :mod:`~deepod_mnp.serving.sampling` - fit from a Parquet table bigger than memory: all labeled
  anomalies and a uniform sample of the unlabeled rows.

The package imports the detectors, never the CLI or the benchmark; importing it imports nothing
heavy (the CLI's ``score`` subcommand registers through :mod:`deepod_mnp.serving.cli`).
"""
