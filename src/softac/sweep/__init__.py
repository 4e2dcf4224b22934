"""Sweeps over environments × settings × seeds, and hyper-parameter searches, on Ray Tune.

``spec`` (what a sweep is, checked before Ray starts), ``trial`` (what a trial does to one run
directory; no Ray), ``runner`` (Ray Tune), ``summary`` (summary.csv/png), ``cli`` (``softac sweep``).
Only ``runner`` imports Ray, so everything else works without the optional ``ray`` extra.
"""
