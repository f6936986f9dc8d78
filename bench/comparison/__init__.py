"""The pieces of bench/compare.py: processes, servers, the load generator, workloads, the report."""
