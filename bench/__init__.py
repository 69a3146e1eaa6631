"""`make bench`: pycrio measured side by side with containerd's CRI plugin, through the same CRI client.

The harness builds its images locally, serves them from a private registry on 127.0.0.1, starts each
runtime on private dirs with one shared CNI config, runs the same workloads against each in rounds that
alternate which runtime goes first, and prints p50/p90/p99, throughput, memory and CPU per runtime plus
pycrio/containerd ratios per round with their median and min-max. Nothing here asserts a speed: the
numbers are reported, never judged.
"""
