# The scripts are run as subprocesses by the tests; importing them (doctest collection) would run them.
collect_ignore_glob = ["scripts/*"]
