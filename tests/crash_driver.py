"""Run one landing day in this process and SIGKILL it at a chosen point (used by test_crash_and_timezone.py).

usage: python crash_driver.py WAREHOUSE ROOT DATE[,DATE...] POINT
POINT: during_bronze_write | before_silver | during_merge | during_gold | none
"""
import os, signal, sys, threading
from ecom_pipeline import pipeline as p
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.spark import get_spark

def die(): os.kill(os.getpid(), signal.SIGKILL)
def die_in(seconds): threading.Timer(seconds, die).start()

def before(name, action):
    orig = getattr(p, name)
    def wrapped(*a, **k):
        action(); return orig(*a, **k)
    setattr(p, name, wrapped)

if __name__ == "__main__":
    warehouse, root, dates, point = sys.argv[1:5]
    if point == "during_bronze_write": before("append_bronze", lambda: die_in(0.5))   # while the first file's append runs
    elif point == "before_silver": before("build_silver", die)                      # bronze and ledger written
    elif point == "during_merge": before("merge_silver", lambda: die_in(1.0))         # while the silver MERGE runs
    elif point == "during_gold": before("refresh_customer_lifetime_value", die)      # sales_metrics already replaced
    elif point != "none": sys.exit(f"unknown point {point}")
    spark = get_spark(warehouse, master="local[2]", shuffle_partitions=2, ui=False)
    cfg = PipelineConfig(source_root=root, warehouse=warehouse)
    for d in dates.split(","):
        print(p.run_daily(spark, cfg, d, log=lambda m: None), flush=True)
