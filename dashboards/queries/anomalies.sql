-- Metrics outside their trailing baseline (median ± k × MAD), one row per run, metric and day.
SELECT metric_date, metric, direction, observed_value, baseline_median, lower_bound, upper_bound, history_days, message, run_id
FROM {catalog}.logs.anomalies
