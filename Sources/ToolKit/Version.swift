/// The toolbox's version: every program's `--version`, the metadata it writes, and `make dist`'s
/// tarball name come from this one constant.
public let toolboxVersion = "1.1.0"
