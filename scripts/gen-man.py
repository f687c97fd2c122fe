#!/usr/bin/env python3
"""Man pages from the programs' own option definitions, with every character kept.

swift-argument-parser's generate-manual tool writes the mdoc pages but drops every non-ASCII
character (formulas like "μ_s / sqrt(1 + β(π/8)σ²_s)" came out as "_s / sqrt(1 + (/8)_s)") and puts
"subcommand" in the synopsis of programs whose only subcommand is the automatic `help`. So this
script hands it the program's help dump with
  - the automatic `help` subcommand removed (no `tool.help.1` page; no "subcommand" in SYNOPSIS
    of a program without real subcommands),
  - every non-ASCII character replaced by an ASCII placeholder,
and then turns the placeholders into roff's Unicode escapes (\\[u03BC]), keeps "Examples:" blocks
as literal displays (so a long command is not re-filled), and turns blank lines (which mdoc warns about) into paragraph macros.

    python3 scripts/gen-man.py GENERATOR BINDIR DATE OUTDIR TOOL...
"""
import json, os, re, stat, subprocess, sys, tempfile

PH = re.compile(r"@@u([0-9A-F]{4,6})@@")
SENTENCE = re.compile(r"(?<=[A-Za-z0-9)'][.!?]) +(?=[A-Z0-9'(])")


def encode(s: str) -> str:
    return "".join(c if ord(c) < 128 else "@@u%04X@@" % ord(c) for c in s)


def clean(cmd: dict) -> dict:
    subs = [clean(s) for s in cmd.get("subcommands") or [] if s.get("commandName") != "help"]
    if subs:
        cmd["subcommands"] = subs
    else:
        cmd.pop("subcommands", None)
    return cmd


def walk(o):
    if isinstance(o, dict):
        return {k: walk(v) for k, v in o.items()}
    if isinstance(o, list):
        return [walk(v) for v in o]
    if isinstance(o, str):
        return encode(o)
    return o


def postprocess(text: str) -> str:
    out, literal = [], False
    for line in text.split("\n"):
        if literal:
            # Inside an examples display: lines indented by two spaces are commands; the first line
            # that is not ends it.
            if line.startswith("  ") and not line.startswith("."):
                out.append(line[2:])
                continue
            out.append(".Ed")
            literal = False
        if line.strip() == "":
            # A blank line between paragraphs is a paragraph macro in mdoc (a blank input line
            # is what mandoc warns about).
            if out and not out[-1].startswith("."):
                out.append(".Pp")
            continue
        if line.rstrip() in ("Examples:", "Example:"):
            out.append(line.rstrip())
            out.append(".Bd -literal -offset indent")
            literal = True
            continue
        if not line.startswith("."):
            # mdoc wants each sentence on a line of its own.
            # A text line must not start with roff's control characters ' and .
            out.extend("\\&" + l if l.startswith(("'", ".")) else l for l in SENTENCE.split(line))
            continue
        out.append(line)
    if literal:
        out.append(".Ed")
    # A paragraph macro right before a section, list or display is redundant.
    out = [l for i, l in enumerate(out)
           if not (l == ".Pp" and i + 1 < len(out) and out[i + 1].startswith((".Sh", ".Bl", ".Bd", ".Ss", ".It", ".El")))]
    text = "\n".join(out)
    return PH.sub(lambda m: "\\[u%s]" % m.group(1), text)


# Every page gets an ENVIRONMENT section; programs that compute with OpenBLAS, the BLAS items too.
BLAS_TOOLS = {"emb-encode", "emb-laplace", "emb-sim", "sve-decompose", "sve-train", "sve-predict"}
HUGEPAGES_ITEM = """.It Ev UNCERTAINTY_TOOLBOX_HUGEPAGES
Set to 0, large buffers are not advised onto transparent huge pages.
By default the program advises the kernel (madvise, as numpy does for its arrays) to back its buffers of 2 MiB or more with 2 MiB pages where the kernel's transparent huge pages are in
.Dq madvise
mode: memory touched for the first time then costs several times less than in 4 KiB pages.
On virtual machines whose kernel hands free memory back to the hypervisor (free page reporting), a huge page of memory left idle for a few seconds costs more to touch than small pages, and a first run can take longer instead; 0 turns the advice off.
"""
BLAS_ENVIRONMENT = """.Sh ENVIRONMENT
.Bl -tag -width Ds
.It Ev OPENBLAS_CORETYPE
The OpenBLAS kernel to use.
When it is not set, the program reads the CPU's flags and, if OpenBLAS picked a weaker kernel than the CPU supports (OpenBLAS falls back to SSE kernels on CPUs newer than itself), restarts itself once with the best kernel the library has for this CPU.
A value set by the user is always used.
.Fl v
names the kernel in use, where the program has it.
.It Ev UNCERTAINTY_TOOLBOX_OPENBLAS
The OpenBLAS library to open, a file name or path (default
.Pa libopenblas.so.0 ,
found as the dynamic loader finds libraries).
OpenBLAS and LAPACKE are opened when the program first needs them, not when it starts, so that
.Fl -help
and errors in the command line cost no more than in programs without BLAS; when they cannot be opened the program says so and exits with status 71.
.It Ev OPENBLAS_NUM_THREADS
Not used:
.Fl -threads
sets the threads (default: all cores).
.It Ev OPENBLAS_THREAD_TIMEOUT
How long an idle OpenBLAS worker thread spins before it sleeps, as a power of two of CPU cycles (4 to 30).
When it is not set, the program uses 20 (about half a millisecond) instead of OpenBLAS's 28 (about a tenth of a second): most products run on the program's own threads, and a worker spinning in between burns a core for nothing.
A value set by the user is always used.
""" + HUGEPAGES_ITEM + """.El
"""
ENVIRONMENT = """.Sh ENVIRONMENT
.Bl -tag -width Ds
""" + HUGEPAGES_ITEM + """.El
"""


def add_environment(text: str, section: str) -> str:
    marker = '.Sh "EXIT STATUS"'
    return text.replace(marker, section + marker, 1) if marker in text else text + section


def main():
    gen, bindir, date, outdir, *tools = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        for tool in tools:
            dump = subprocess.run([os.path.join(bindir, tool), "--experimental-dump-help"],
                                  check=True, capture_output=True).stdout
            info = json.loads(dump)
            info["command"] = walk(clean(info["command"]))
            jpath = os.path.join(tmp, tool + ".json")
            with open(jpath, "w") as f:
                json.dump(info, f, ensure_ascii=True)
            # The generator runs "TOOL --experimental-dump-help": a stand-in named like the tool.
            stand_in = os.path.join(tmp, tool)
            with open(stand_in, "w") as f:
                f.write("#!/bin/sh\nexec cat '%s'\n" % jpath)
            os.chmod(stand_in, stat.S_IRWXU)
            pages = os.path.join(tmp, tool + ".pages")
            os.mkdir(pages)
            subprocess.run([gen, stand_in, "--multi-page", "--date", date, "--output-directory", pages],
                           check=True)
            for name in sorted(os.listdir(pages)):
                with open(os.path.join(pages, name)) as f:
                    text = postprocess(f.read())
                text = add_environment(text, BLAS_ENVIRONMENT if tool in BLAS_TOOLS else ENVIRONMENT)
                with open(os.path.join(outdir, name), "w") as f:
                    f.write(text if text.endswith("\n") else text + "\n")


if __name__ == "__main__":
    main()
