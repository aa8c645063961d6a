-- The pipeline's transformations in DuckDB SQL, for the benchmark's DuckDB ratio only (not a second implementation
-- of the product). One landing day's files ({files}) -> quarantine, silver, gold, in a DuckDB database file.
-- The same contract as the pipeline and tests/oracle.py: M/D/YYYY or ISO dates, H:MM:SS times, the error rules in
-- their order, money as DECIMAL(18,2) rounded half up, the latest copy of each order line (customer, timestamp,
-- product) by file and line number, gold per order date and category with an ALL row.
CREATE OR REPLACE TABLE lines AS
SELECT row_number() OVER () AS line_number, *
FROM read_csv({files}, header = true, all_varchar = true, filename = true, auto_detect = false,
              columns = {'Order_Date': 'VARCHAR', 'Time': 'VARCHAR', 'Aging': 'VARCHAR', 'Customer_Id': 'VARCHAR',
                         'Gender': 'VARCHAR', 'Device_Type': 'VARCHAR', 'Customer_Login_type': 'VARCHAR',
                         'Product_Category': 'VARCHAR', 'Product': 'VARCHAR', 'Sales': 'VARCHAR', 'Quantity': 'VARCHAR',
                         'Discount': 'VARCHAR', 'Profit': 'VARCHAR', 'Shipping_Cost': 'VARCHAR',
                         'Order_Priority': 'VARCHAR', 'Payment_method': 'VARCHAR'});

CREATE OR REPLACE TABLE staged AS
SELECT filename, line_number,
       coalesce(try_strptime(trim(Order_Date), '%m/%d/%Y'), try_strptime(trim(Order_Date), '%Y-%m-%d'))::DATE AS order_date,
       try_strptime(trim("Time"), '%H:%M:%S')::TIME AS order_time,
       nullif(regexp_replace(trim(Customer_Id), '^(\d+)\.0+$', '\1'), '') AS customer_id,
       CASE WHEN regexp_matches(trim(Quantity), '^[+-]?\d+(\.0+)?$') THEN split_part(trim(Quantity), '.', 1)::BIGINT END AS quantity,
       CASE WHEN regexp_matches(trim(Sales), '^[+-]?(\d+\.?\d*|\.\d+)$') THEN try_cast(trim(Sales) AS DECIMAL(18, 2)) END AS unit_price,
       CASE WHEN nullif(trim(Discount), '') IS NULL THEN 0::DECIMAL(18, 6)
            WHEN regexp_matches(trim(Discount), '^[+-]?(\d+\.?\d*|\.\d+)$') THEN try_cast(trim(Discount) AS DECIMAL(18, 6)) END AS discount_rate,
       coalesce(CASE WHEN regexp_matches(trim(Profit), '^[+-]?(\d+\.?\d*|\.\d+)$') THEN try_cast(trim(Profit) AS DECIMAL(18, 2)) END,
                0::DECIMAL(18, 2)) AS profit_amount,
       coalesce(nullif(trim(Product_Category), ''), 'unknown') AS product_category,
       coalesce(nullif(trim(Product), ''), 'unknown') AS product_name
FROM lines;

CREATE OR REPLACE TABLE checked AS
SELECT *, CASE WHEN order_date IS NULL THEN 'order_date_invalid'
               WHEN order_time IS NULL THEN 'order_time_invalid'
               WHEN customer_id IS NULL THEN 'customer_id_missing'
               WHEN quantity IS NULL OR quantity <= 0 THEN 'quantity_invalid'
               WHEN unit_price IS NULL OR unit_price < 0 THEN 'unit_price_invalid'
               WHEN discount_rate IS NULL OR discount_rate < 0 OR discount_rate > 1 THEN 'discount_out_of_range' END AS rule
FROM staged;

CREATE OR REPLACE TABLE etl_errors AS SELECT filename, line_number, rule FROM checked WHERE rule IS NOT NULL;

CREATE OR REPLACE TABLE orders_cleaned AS
SELECT customer_id, order_date + order_time AS order_ts, order_date, product_category, product_name, quantity, unit_price,
       gross_amount, discount_amount, gross_amount - discount_amount AS net_amount, profit_amount
FROM (
  SELECT *, round(unit_price * quantity, 2)::DECIMAL(18, 2) AS gross_amount,
         round(round(unit_price * quantity, 2) * discount_rate, 2)::DECIMAL(18, 2) AS discount_amount,
         row_number() OVER (PARTITION BY customer_id, order_date + order_time, product_name
                            ORDER BY filename DESC, line_number DESC) AS newest
  FROM checked WHERE rule IS NULL
) WHERE newest = 1;

CREATE OR REPLACE TABLE sales_metrics AS
SELECT order_date, coalesce(product_category, 'ALL') AS product_category,
       count(DISTINCT (customer_id, order_ts)) AS orders, sum(quantity) AS units, count(DISTINCT customer_id) AS customers,
       sum(gross_amount)::DECIMAL(18, 2) AS gross_revenue, sum(discount_amount)::DECIMAL(18, 2) AS discount_amount,
       sum(net_amount)::DECIMAL(18, 2) AS net_revenue, sum(profit_amount)::DECIMAL(18, 2) AS profit_amount,
       round(sum(net_amount) / count(DISTINCT (customer_id, order_ts)), 2)::DECIMAL(18, 2) AS avg_order_value
FROM orders_cleaned
GROUP BY GROUPING SETS ((order_date, product_category), (order_date));

CREATE OR REPLACE TABLE daily_customer_sales AS
SELECT order_date, customer_id, count(DISTINCT order_ts) AS orders, sum(net_amount)::DECIMAL(18, 2) AS net_revenue
FROM orders_cleaned GROUP BY order_date, customer_id;

CREATE OR REPLACE TABLE customer_lifetime_value AS
SELECT customer_id, min(order_date) AS first_order_date, max(order_date) AS last_order_date,
       count(DISTINCT order_ts) AS lifetime_orders, sum(quantity) AS lifetime_units,
       sum(net_amount)::DECIMAL(18, 2) AS lifetime_net_revenue
FROM orders_cleaned GROUP BY customer_id;
