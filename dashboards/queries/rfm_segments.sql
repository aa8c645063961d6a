-- Customers and their predicted 12-month value by RFM segment (recency and frequency quintiles, 5 = best).
SELECT segment_order, rfm_segment, COUNT(*) AS customers, SUM(predicted_clv_12m) AS predicted_clv_12m
FROM (
  SELECT
    CASE WHEN recency_score IS NULL THEN 6
         WHEN recency_score >= 4 AND frequency_score >= 4 THEN 1 WHEN recency_score >= 4 AND frequency_score <= 2 THEN 2
         WHEN recency_score <= 2 AND frequency_score >= 4 THEN 4 WHEN recency_score <= 2 AND frequency_score <= 2 THEN 5
         ELSE 3 END AS segment_order,
    CASE WHEN recency_score IS NULL THEN 'not scored yet'
         WHEN recency_score >= 4 AND frequency_score >= 4 THEN 'champions' WHEN recency_score >= 4 AND frequency_score <= 2 THEN 'new or promising'
         WHEN recency_score <= 2 AND frequency_score >= 4 THEN 'at risk' WHEN recency_score <= 2 AND frequency_score <= 2 THEN 'hibernating'
         ELSE 'need attention' END AS rfm_segment,
    predicted_clv_12m
  FROM {catalog}.analytics.customer_lifetime_value
) AS segmented
GROUP BY segment_order, rfm_segment
