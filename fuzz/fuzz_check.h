#ifndef RIFFLE_FUZZ_FUZZ_CHECK_H_
#define RIFFLE_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

// An assert that stays on in every build: a violation aborts with a message, and libFuzzer
// reports (and saves) the input as a crash.
#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (false)

#endif  // RIFFLE_FUZZ_FUZZ_CHECK_H_
