"""Run landing days in this process and SIGKILL it at a chosen point (used by test_crash_and_timezone.py).

usage: python crash_driver.py WAREHOUSE ROOT DATE[,DATE...] POINT [catch-up]
POINT: during_bronze_write | before_silver | during_merge | during_gold | none
catch-up: the dates as one catch-up (pipeline.catch_up), not one run each
"""
import os, signal, sys, threading, time
from ecom_pipeline import bronze_stage, gold, silver_stage, pipeline as p
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.spark import get_spark

def die(): os.kill(os.getpid(), signal.SIGKILL)
def die_in(seconds): threading.Timer(seconds, die).start()

def before(module, name, action):
    orig = getattr(module, name)
    def wrapped(*a, **k):
        action(); return orig(*a, **k)
    setattr(module, name, wrapped)

if __name__ == "__main__":
    warehouse, root, dates, point = sys.argv[1:5]
    if point == "during_bronze_write": before(bronze_stage, "append_bronze", lambda: die_in(0.5))   # while the bronze append runs
    elif point == "before_silver": before(p, "build_silver", die)                                  # bronze and ledger written
    elif point == "during_merge": before(silver_stage, "merge_silver", lambda: die_in(1.0))         # while the silver MERGE runs
    elif point == "during_gold": before(gold, "refresh_customer_lifetime_value", die)              # sales_metrics already replaced
    elif point != "none": sys.exit(f"unknown point {point}")
    spark = get_spark(warehouse, master="local[2]", shuffle_partitions=2, ui=False)
    print(f"os time zone {'/'.join(time.tzname)}", flush=True) # the test checks that its TZ reached this process
    cfg = PipelineConfig(source_root=root, warehouse=warehouse)
    if sys.argv[5:] == ["catch-up"]:
        for s in p.catch_up(spark, cfg, dates.split(","), log=lambda m: None, max_lines_per_batch=10**9): print(s, flush=True)
    else:
        for d in dates.split(","):
            print(p.run_daily(spark, cfg, d, log=lambda m: None), flush=True)
