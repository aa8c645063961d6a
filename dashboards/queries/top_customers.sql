-- The 20 customers with the highest lifetime net revenue in the reporting currency (every shop on one scale), with their
-- RFM cell and predicted 12-month value
-- (null until `ecom-pipeline score-customers` has run).
SELECT customer_id, lifetime_net_revenue, lifetime_orders, avg_order_value, first_order_date, last_order_date,
       rfm_cell, predicted_clv_12m, reporting_currency
FROM {catalog}.analytics.customer_lifetime_value
ORDER BY lifetime_net_revenue DESC, customer_id
LIMIT 20
