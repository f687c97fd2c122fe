#!/usr/bin/env python3
"""Mutation check of the stream reader's rules: removes each check of Reader.swift and Bytes.swift
once (its condition made always true, or its throw made a no-op) and runs the conformance and
damage tests in a scratch package that holds only the codec; every mutant must make a test fail.

    python3 tests/conformance/mutate.py [SCRATCH_DIR]      (prints one line per check; exit 1 if one survives)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRATCH = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="tsr-mutate-")
PACKAGE = """// swift-tools-version:6.0
import PackageDescription
let package = Package(name: "mutate", targets: [
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd"),
    .target(name: "Failure"),
    .target(name: "TensorStream", dependencies: ["CZstd", "Failure"]),
    .testTarget(name: "TensorStreamTests", dependencies: ["TensorStream"]),
])
"""


def setup():
    os.makedirs(SCRATCH, exist_ok=True)
    for d in ("Sources/CZstd", "Sources/Failure", "Sources/TensorStream", "Tests/TensorStreamTests"):
        shutil.rmtree(os.path.join(SCRATCH, d), ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, d), os.path.join(SCRATCH, d))
    # The tests find the corpus at ../../tests/conformance from their own file.
    shutil.rmtree(os.path.join(SCRATCH, "tests"), ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "tests/conformance"), os.path.join(SCRATCH, "tests/conformance"))
    with open(os.path.join(SCRATCH, "Package.swift"), "w") as f:
        f.write(PACKAGE)


def mutants(path):
    """(line number, description, mutated text) for each throwing check in the file."""
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        if not re.search(r"throw (fail\(|StreamError\.broken\()", line):
            continue
        out = list(lines)
        j = i
        while j >= 0 and not re.search(r"\b(guard|if)\b", out[j]):
            j -= 1
        if j >= 0 and i - j <= 2 and re.search(r"\bguard let \w+ = DType\(", out[j]):
            out[j] = re.sub(r"= (DType\(rawValue: \w+\))", r"= Optional(\1 ?? DType.u8)", out[j])   # any code reads as u8
        elif j >= 0 and i - j <= 2 and re.search(r"\bguard let \w+ = String\(validating:", out[j]):
            out[j] = re.sub(r"= String\(validating: (\w+), as: UTF8.self\)", r"= Optional(String(decoding: \1, as: UTF8.self))", out[j])
        elif j >= 0 and i - j <= 2 and re.search(r"\bif let \w+ = [^,]+, .*\{", out[j]):
            out[j] = re.sub(r"(\bif let \w+ = [^,]+), .*\{", r"\1, false {", out[j])   # keep the binding
        elif j >= 0 and i - j <= 2 and re.search(r"\bguard\b.*\belse\b", out[j]):
            out[j] = re.sub(r"guard .* else \{", "guard true else {", out[j], count=1)
        elif j >= 0 and i - j <= 2 and re.search(r"\bif\b.*\{", out[j]):
            out[j] = re.sub(r"\bif .*\{", "if false {", out[j], count=1)
        else:   # a throw of its own (a switch case): make it return as if nothing was wrong
            f = i
            while f >= 0 and not re.search(r"\bfunc\b", out[f]):
                f -= 1
            ret = "return nil" if "->" in out[f] else "return"
            out[i] = re.sub(r"throw (fail|StreamError\.broken)\(.*\)$", ret, line)
        if out != lines:
            yield i + 1, line.strip()[:90], "\n".join(out)


def main():
    setup()
    survivors = 0
    for rel in ("Sources/TensorStream/Reader.swift", "Sources/TensorStream/Bytes.swift"):
        original = open(os.path.join(ROOT, rel)).read()
        target = os.path.join(SCRATCH, rel)
        for line, what, text in mutants(os.path.join(ROOT, rel)):
            with open(target, "w") as f:
                f.write(text)
            r = subprocess.run(["swift", "test", "--disable-swift-testing", "--filter", "ConformanceTests|DamageTests"],
                               cwd=SCRATCH, capture_output=True, text=True)
            out = r.stdout + r.stderr
            failing = sorted(set(re.findall(r"error: (\w+\.\w+) :", out)))
            crashed = "Fatal error" in out or "Crash" in out or "Backtrace" in out
            unbuilt = re.search(r"[^\n]*\.swift:\d+:\d+: error:[^\n]*", out)
            verdict = ("killed by " + ", ".join(failing) if failing else
                       "killed (the tests trap: " + (re.findall(r"Fatal error: ([^\n]*)", out) or ["crash"])[0][:60] + ")" if crashed else
                       "DOES NOT BUILD: " + unbuilt.group(0)[:120] if unbuilt else
                       "SURVIVED" if r.returncode == 0 else "killed (exit %d)" % r.returncode)
            if verdict == "SURVIVED":
                survivors += 1
            print(f"{rel}:{line}: {what}\n    -> {verdict}", flush=True)
        with open(target, "w") as f:
            f.write(original)
    print(f"{survivors} mutants survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
