
/* The experimental API too (custom allocators, for a test that counts what zstd frees); the
 * programs call only the stable one. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
