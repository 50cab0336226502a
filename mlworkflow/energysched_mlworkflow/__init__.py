"""The ML workflow of the experiment: preprocessing → training → inference.

``pipeline`` describes the stages (workload type, amount of work, requests) and
builds their Jobs; ``stages`` holds the real numpy implementations that the
stage images run on a real cluster (``python -m energysched_mlworkflow STAGE``).
"""
