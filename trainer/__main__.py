"""`python -m trainer --config X.yaml [--set k=v ...] [--resume [--override]]`: torchrun's entry.

    torchrun --standalone --nproc_per_node=2 -m trainer --config configs/esc50_small.yaml

(`clapsearch train` is the same for one process.)
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from clapsearch.errors import ClapsearchError
    from trainer import load_train_config, train

    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--override", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = train(
            load_train_config(args.config, args.overrides),
            resume=args.resume,
            override=args.override,
        )
    except ClapsearchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    import os

    if os.environ.get("RANK", "0") == "0":
        from dataclasses import asdict

        print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
