"""``python -m bench``: see :mod:`bench.cli`."""

from bench.cli import run_and_exit

if __name__ == "__main__":
    run_and_exit()
