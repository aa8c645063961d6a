-- Customers per month, new (first order in that month) or returning.
SELECT
  TRUNC(d.order_date, 'MM') AS order_month,
  CASE WHEN TRUNC(c.first_order_date, 'MM') = TRUNC(d.order_date, 'MM') THEN 'new' ELSE 'returning' END AS customer_type,
  COUNT(DISTINCT d.customer_id) AS customers
FROM {catalog}.analytics.daily_customer_sales AS d
JOIN {catalog}.analytics.customer_lifetime_value AS c ON c.customer_id = d.customer_id
GROUP BY 1, 2
