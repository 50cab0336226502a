"""Learning from finished pods: observations, the posterior, and the energy of every pod.

Pure (no I/O, no clock, no randomness but a seeded one): the operator feeds it what the
API server shows (pod status timestamps, the monitor's published watts), the lab's
learning experiment feeds it the same from the simulator. Modules, each one concern:

- :mod:`~energysched.learning.observe`: a finished pod + the node's readings -> an
  observation, or the counted reason why not (never a guess);
- :mod:`~energysched.learning.estimate`: per profile x workload type, a log-normal
  posterior for performance and working power, the profile's figures as the prior;
- :mod:`~energysched.learning.knowledge`: the learned figures as a knowledge base every
  scoring mode reads (``knowledge: learned``), with optional seeded exploration;
- :mod:`~energysched.learning.attribute`: a finished pod's energy (dynamic + idle share).
"""
