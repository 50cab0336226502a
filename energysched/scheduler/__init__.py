"""The scheduler's I/O shell: reflectors, queue, assume cache, binder, events,
leader election, metrics and config around the pure core in energysched.core."""
