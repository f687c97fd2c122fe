#!/usr/bin/env python3
"""Checks that examples/tensorstream.py classifies the conformance corpus: every valid/*.tsr
reads as its .json says, every invalid/<rule>[.<variant>].tsr is refused for <rule>.

    .venv/bin/python tests/conformance/check.py        (exit 0: all classified; 1: a list of misses)
"""
import io
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples"))
import tensorstream as ts  # noqa: E402


def main():
    misses, n = [], 0
    for name in sorted(os.listdir(os.path.join(HERE, "valid"))):
        if not name.endswith(".tsr"):
            continue
        n += 1
        path = os.path.join(HERE, "valid", name)
        with open(path[:-4] + ".json") as f:
            expect = json.load(f)["tensors"]
        try:
            with open(path, "rb") as f:
                arrays, infos = ts.read_with_info(f)
        except ts.StreamError as e:
            misses.append(f"valid/{name}: refused: {e}")
            continue
        got = [{"name": k, "dtype": infos[k].dtype, "shape": list(a.shape), "meta": infos[k].meta,
                "values": [int(v) if infos[k].dtype == "bool" else v for v in a.reshape(-1).tolist()]}
               for k, a in arrays.items()]
        if got != expect:
            misses.append(f"valid/{name}: read as {got}, expected {expect}")
    for name in sorted(os.listdir(os.path.join(HERE, "invalid"))):
        n += 1
        rule = name.split(".")[0]
        try:
            with open(os.path.join(HERE, "invalid", name), "rb") as f:
                ts.read(f)
            misses.append(f"invalid/{name}: accepted")
        except ts.StreamError as e:
            if e.rule != rule:
                misses.append(f"invalid/{name}: refused as {e.rule} ({e})")
    # Written by the module's writer, read back by its reader.
    buf = io.BytesIO()
    ts.write(buf, {"m": np.arange(6, dtype=np.float32).reshape(3, 2), "s": np.float64(2.5)})
    back = ts.read(io.BytesIO(buf.getvalue()))
    if not (np.array_equal(back["m"], np.arange(6).reshape(3, 2)) and back["s"] == 2.5):
        misses.append("round trip through the module's writer and reader changed the values")
    for m in misses:
        print(m)
    print(f"conformance: {n - len(misses)} of {n} files classified")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
