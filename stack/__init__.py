"""The embedded stack (`python -m stack`, what `make run` runs): the whole suite on
one machine, for development and the end-to-end tests.

    topology.py    what runs, in which order, on which ports, with which environment
    processes.py   start the processes, wait for them, watch them, stop them in reverse
    lock.py        one stack per var/ directory
    __main__.py    start it all, say when it is ready, stop it on Ctrl-C / SIGTERM"""
