-- One row per order date and category (the ALL rows left out, so that categories add up to the day).
SELECT order_date, product_category, orders, units, net_revenue
FROM {catalog}.analytics.sales_metrics
WHERE product_category <> 'ALL'
