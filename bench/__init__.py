"""docchat benchmarks: ingestion throughput, retrieval recall and live-path latency.

    python -m bench [--corpus DIR] [--only ingestion|retrieval|live] [--quick]

See docs/benchmarks.md for what each number means and what bounds it.
"""
