-- Rows each quality rule failed, per landing day, from the latest run of the day that checked rows.
SELECT q.run_date, q.rule, q.criticality, q.rows_checked, q.rows_failed
FROM {catalog}.logs.data_quality_results AS q
JOIN (
  SELECT run_id, ROW_NUMBER() OVER (PARTITION BY run_date ORDER BY started_at DESC) AS newest
  FROM {catalog}.logs.pipeline_runs
  WHERE run_id IN (SELECT run_id FROM {catalog}.logs.data_quality_results)
) AS r ON r.run_id = q.run_id AND r.newest = 1
