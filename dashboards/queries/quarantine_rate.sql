-- Share of the bronze rows quarantined, per landing day, from the latest run of the day that checked rows.
SELECT run_date, bronze_rows, quarantined,
       CAST(quarantined / bronze_rows AS DOUBLE) AS quarantine_rate
FROM (
  SELECT run_date, bronze_rows, quarantined,
         ROW_NUMBER() OVER (PARTITION BY run_date ORDER BY started_at DESC) AS newest
  FROM {catalog}.logs.pipeline_runs
  WHERE bronze_rows > 0
) AS runs
WHERE newest = 1
