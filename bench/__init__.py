"""Benchmarks for sdi, run as ``python -m bench`` (``make bench``).

A benchmark *suite* (``bench.suites``) measures one concern against a baseline
tool and returns :class:`bench.timing.Measurement` rows; the harness handles
options, the data sets (``bench/data``, generated, gitignored), a throwaway
PostGIS cluster, the table on stdout and the JSON in ``bench/results``.
"""
