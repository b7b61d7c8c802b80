/* streamk_plan: the stream-K GEMM's work split (streamk_plan.h). */
#include "kernels/streamk_plan.h"

int streamk_plan_max_split(int64_t cb_count, int64_t KC, int64_t B) {
  if (cb_count < 1 || KC < 1 || B < 1 || B > cb_count * KC) return 0;
  const int64_t U = cb_count * KC;
  int64_t most = 0;
  for (int64_t cb = 0; cb < cb_count; cb++) {
    const int64_t n = streamk_plan_last(cb, KC, U, B) - streamk_plan_first(cb, KC, U, B) + 1;
    if (n > most) most = n;
  }
  return (int)most;
}
