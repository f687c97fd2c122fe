#!/usr/bin/env python3
"""Kept for the old name: the reader (and writer) is examples/tensorstream.py.

    python3 examples/read_tensor_stream.py < emb.tsr          # prints names, dtypes, shapes
    from read_tensor_stream import read; arrays = read(open("emb.tsr", "rb"))
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tensorstream import StreamError, main, read, read_with_info, write  # noqa: E402,F401

if __name__ == "__main__":
    main("read_tensor_stream")
