-- One row per order date and category (the all-categories rows left out, so that categories add up to the day).
SELECT order_date, product_category, orders, units, net_revenue
FROM {catalog}.analytics.sales_metrics
WHERE NOT is_all_categories
