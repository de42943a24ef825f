"""`python -m localcluster up DIR`: start a control plane and keep it running until Ctrl-C."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys

from localcluster import cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start and wait for SIGINT/SIGTERM")
    up.add_argument("workdir", type=pathlib.Path)
    sub.add_parser("build", help="build (once) and print the binaries' directory")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(cluster.build())
        return 0
    local = cluster.LocalCluster(args.workdir)
    local.start()
    print(f"KUBECONFIG={local.kubeconfig}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        local.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
