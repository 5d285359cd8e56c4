"""The request side: HTTP routes, admission, live episodes, transports, observability and the command line.

Flow: ``routes/`` take a request, ``admission/`` decides if it may start,
``episodes/`` run it on the runtime in ``pipelines/``, ``transport/`` sends its
playout buffer to viewers; ``observability/`` reads spans and live state.
"""
