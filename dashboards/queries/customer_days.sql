-- One row per customer and order date: distinct customers over any date range.
SELECT order_date, customer_id, orders, net_revenue
FROM {catalog}.analytics.daily_customer_sales
