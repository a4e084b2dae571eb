"""python -m testbed build [--seed N] [--out DIR] [--force]"""

from testbed.cli import main

if __name__ == "__main__":
    main()
