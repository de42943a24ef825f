import sys

from controller import cli

# Guarded: the answer parser's process (adapters/answers.py, spawned) imports the main
# module again under another name, and must not start a second operator.
if __name__ == "__main__":
    sys.exit(cli.main())
