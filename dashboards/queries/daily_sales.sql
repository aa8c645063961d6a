-- Daily totals over all categories (the rows of sales_metrics with is_all_categories), with a 7-day moving average of net revenue:
-- the mean over the 7 calendar days ending that day, days without sales left out.
SELECT
  order_date,
  orders,
  customers,
  net_revenue,
  avg_order_value,
  CAST(AVG(net_revenue) OVER (ORDER BY order_date RANGE BETWEEN INTERVAL 6 DAYS PRECEDING AND CURRENT ROW)
       AS DECIMAL(18,2)) AS net_revenue_7d_avg
FROM {catalog}.analytics.sales_metrics
WHERE is_all_categories
