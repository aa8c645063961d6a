-- Distribution of lifetime net revenue: customers per band.
SELECT band_order, lifetime_value_band, COUNT(*) AS customers
FROM (
  SELECT
    CASE WHEN lifetime_net_revenue < 100 THEN 1 WHEN lifetime_net_revenue < 250 THEN 2
         WHEN lifetime_net_revenue < 500 THEN 3 WHEN lifetime_net_revenue < 1000 THEN 4
         WHEN lifetime_net_revenue < 2500 THEN 5 WHEN lifetime_net_revenue < 5000 THEN 6 ELSE 7 END AS band_order,
    CASE WHEN lifetime_net_revenue < 100 THEN 'under 100' WHEN lifetime_net_revenue < 250 THEN '100-250'
         WHEN lifetime_net_revenue < 500 THEN '250-500' WHEN lifetime_net_revenue < 1000 THEN '500-1,000'
         WHEN lifetime_net_revenue < 2500 THEN '1,000-2,500' WHEN lifetime_net_revenue < 5000 THEN '2,500-5,000'
         ELSE '5,000 and more' END AS lifetime_value_band
  FROM {catalog}.analytics.customer_lifetime_value
) AS banded
GROUP BY band_order, lifetime_value_band
