"""What the results say: the study's tables read and written, exports of a store, regimes,
statistics, comparisons, the dataset's baselines, LaTeX tables and figures."""
