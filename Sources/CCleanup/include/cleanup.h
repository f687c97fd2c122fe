// Files to remove when a program fails or is killed by a signal, kept where a signal handler
// can read them safely: a fixed-size table of pointers, set up (zeroed, in static storage)
// before any handler is installed. Nothing in the handler allocates, locks or touches Swift.
#ifndef TOOLKIT_CLEANUP_H
#define TOOLKIT_CLEANUP_H

#include <stddef.h>

/// Registers `path` for removal; returns its slot, or -1 when the table is full.
int cleanup_register(const char *path);
/// Creates a new file (mode 0600, O_CLOEXEC) from `path_template`, whose last six characters are
/// XXXXXX and are replaced with random ones, as mkstemp does; but the name is registered for
/// removal before the file exists, so that a signal at any moment leaves no file behind (mkstemp
/// then registering leaves a window where the file exists and the handler does not know it).
/// Returns the descriptor and sets `*slot`; -1 with errno when the file cannot be created, -2 when
/// the table is full.
int cleanup_create_temp(char *path_template, int *slot);
/// Forgets a slot (the file was renamed into place, or removed).
void cleanup_unregister(int slot);
/// Removes every registered file (async-signal-safe).
void cleanup_remove_all(void);
/// Installs handlers for SIGINT, SIGTERM and SIGHUP, and for the signals of a crash (SIGABRT,
/// SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE), that remove the registered files and then die of
/// the same signal; ignores SIGPIPE (a closed pipe is seen as EPIPE).
void cleanup_install_signal_handlers(void);
/// How many slots the table has.
int cleanup_capacity(void);
/// Ends the program for lack of memory: removes every registered file, writes one line,
/// "program: out of memory: <what> <MB> (<the ulimit -v, if any>): <advice>", and
/// exits with status 71. Allocates nothing; a second thread that calls it meanwhile waits for the
/// exit. The programs' malloc, calloc, realloc and aligned allocations (memory.c) end this way
/// when the system refuses them.
_Noreturn void cleanup_exit_refused(size_t bytes, const char *what, const char *advice);

#endif
