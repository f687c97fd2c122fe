import CBLAS

/// Sets how many threads OpenBLAS (and so LAPACK) may use.
public func setBLASThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
}
